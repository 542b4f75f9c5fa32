"""The eager optimizers compute exactly what torch's own compute on the CPU, and share
their checkpoints, schedulers and hooks, without importing ``torch._dynamo``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import torch
from torch import nn

from lepton_desktop.core.training.optim import EagerAdam, EagerSGD, eager_optimizer

Factory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]

#: (ours, torch's) for every optimizer the trainer offers, with weight decay on, so the
#: decay paths (L2 for Adam and SGD, decoupled for AdamW) are compared too.
PAIRS: dict[str, tuple[Factory, Factory]] = {
    "adam": (
        lambda p: eager_optimizer("adam", p, lr=0.01, weight_decay=1e-3, momentum=0.9),
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
    ),
    "adamw": (
        lambda p: eager_optimizer("adamw", p, lr=0.01, weight_decay=1e-2, momentum=0.9),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=1e-2),
    ),
    "sgd": (
        lambda p: eager_optimizer("sgd", p, lr=0.05, weight_decay=1e-3, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    ),
    "adam-no-decay": (
        lambda p: EagerAdam(p, lr=0.003),
        lambda p: torch.optim.Adam(p, lr=0.003),
    ),
    "sgd-no-momentum": (
        lambda p: EagerSGD(p, lr=0.1),
        lambda p: torch.optim.SGD(p, lr=0.1),
    ),
}


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(32, 6, generator=generator), torch.randint(0, 3, (32,), generator=generator))
        for _ in range(n)
    ]


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, batches, schedule=None) -> None:
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, mine), (_, theirs) in zip(
        a.state_dict().items(), b.state_dict().items(), strict=True
    ):
        assert torch.equal(mine, theirs), f"{name} differs: {(mine - theirs).abs().max()}"


@pytest.mark.parametrize("name", list(PAIRS))
def test_the_updates_equal_torchs_bit_for_bit(name: str) -> None:
    ours, theirs = PAIRS[name]
    a, b = _model(), _model()
    batches = _batches(40)
    _train(a, ours(list(a.parameters())), batches)
    _train(b, theirs(list(b.parameters())), batches)
    _same_weights(a, b)
    assert not torch.equal(a[0].weight, _model()[0].weight)  # training moved them


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_checkpoints_move_between_ours_and_torchs(name: str) -> None:
    ours, theirs = PAIRS[name]
    batches = _batches(30)
    # torch's optimizer for 15 steps, saved, resumed in ours for 15 more ...
    a = _model()
    first = theirs(list(a.parameters()))
    _train(a, first, batches[:15])
    resumed = ours(list(a.parameters()))
    resumed.load_state_dict(first.state_dict())
    _train(a, resumed, batches[15:])
    # ... equals ours for 15 steps resumed in torch's, equals torch's for all 30.
    b = _model()
    mine = ours(list(b.parameters()))
    _train(b, mine, batches[:15])
    back = theirs(list(b.parameters()))
    back.load_state_dict(mine.state_dict())
    _train(b, back, batches[15:])
    c = _model()
    _train(c, theirs(list(c.parameters())), batches)
    _same_weights(a, c)
    _same_weights(b, c)


def test_schedulers_drive_the_learning_rate_as_with_torchs() -> None:
    a, b = _model(), _model()
    ours = EagerAdam(a.parameters(), lr=0.05)
    theirs = torch.optim.Adam(b.parameters(), lr=0.05)
    batches = _batches(12)
    _train(a, ours, batches, torch.optim.lr_scheduler.CosineAnnealingLR(ours, T_max=12))
    _train(b, theirs, batches, torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=12))
    assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] < 0.05
    _same_weights(a, b)


def test_step_hooks_and_closures_work() -> None:
    model = _model()
    optimizer = EagerSGD(model.parameters(), lr=0.1)
    seen: list[str] = []
    optimizer.register_step_pre_hook(lambda *_: seen.append("pre"))
    optimizer.register_step_post_hook(lambda *_: seen.append("post"))
    x, y = _batches(1)[0]

    def closure() -> float:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return float(loss.detach())

    first = optimizer.step(closure)
    second = optimizer.step(closure)
    assert seen == ["pre", "post", "pre", "post"]
    assert first is not None and second is not None and second < first


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: EagerAdam(p, lr=-1.0), "lr=-1.0"),
        (lambda p: EagerAdam(p, betas=(0.9, 1.0)), "betas=(0.9, 1.0)"),
        (lambda p: EagerSGD(p, momentum=-0.5), "momentum=-0.5"),
        (lambda p: eager_optimizer("rmsprop", p, lr=0.1, weight_decay=0, momentum=0), "rmsprop"),
    ],
    ids=["negative-lr", "beta-one", "negative-momentum", "unknown"],
)
def test_impossible_settings_are_refused(make: Factory, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(list(_model().parameters()))


def test_training_with_them_never_imports_torch_dynamo() -> None:
    # A fresh interpreter: this test process may have imported dynamo for other tests.
    script = """
import sys, torch
from torch import nn
from lepton_desktop.core.training.optim import eager_optimizer
model = nn.Linear(4, 2)
for name in ("adam", "adamw", "sgd"):
    opt = eager_optimizer(name, model.parameters(), lr=0.1, weight_decay=0.01, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
    opt.load_state_dict(opt.state_dict())
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
sched.step(1.0)
print(sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
