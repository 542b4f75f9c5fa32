"""Differentially private training (DP-SGD with Opacus) through the real loop.

Small budgets (1-2 epochs on the bundled samples): what is checked is the privacy
machinery, not accuracy (bench/dp_training.py measures that).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer
from torch import nn

from lepton_desktop.core.errors import CancelledError, InvalidOptionError
from lepton_desktop.core.project import Project
from lepton_desktop.core.training import privacy
from lepton_desktop.core.training.config import TrainConfig
from tests.helpers import snapshot

SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "sample_data"


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dp") / "template.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
        project.import_dataset(SAMPLES / "digits", "digits")
        project.import_dataset(SAMPLES / "nile.csv", "nile", kind="timeseries")
    return path


@pytest.fixture
def project(_template: Path, tmp_path: Path):
    path = tmp_path / "p.lepton"
    path.write_bytes(_template.read_bytes())
    with Project.open(path) as p:
        yield p


FAST = {"strong_baseline": False, "seed": 0}


def test_spent_epsilon_is_within_target_and_agrees_with_opacus(project: Project) -> None:
    result = project.train("iris", arch="mlp", epochs=2, dp_epsilon=3.0, **FAST)
    spent = result.run.evaluation["privacy"]
    assert spent["accountant"] == "rdp" and spent["sampling"] == "poisson"
    assert 0 < spent["epsilon"] <= 3.0
    assert spent["delta"] == 1e-5  # 105 training rows: 1/n ~ 0.0095, capped at 1e-5
    # The field's reference: Opacus' own accountant, recomputed from what was stored.
    accountant = RDPAccountant()
    accountant.history = [(spent["noise_multiplier"], spent["sample_rate"], spent["steps"])]
    with privacy.quiet():
        recomputed = accountant.get_epsilon(spent["delta"])
    assert spent["epsilon"] == pytest.approx(recomputed, rel=1e-9)
    # The noise is the one Opacus chooses for this target, data size and epochs.
    with privacy.quiet():
        sigma = get_noise_multiplier(
            target_epsilon=3.0,
            target_delta=spent["delta"],
            sample_rate=spent["sample_rate"],
            epochs=2,
            accountant="rdp",
        )
    assert spent["noise_multiplier"] == pytest.approx(sigma)
    assert spent["noise_multiplier"] > 0.5 and spent["max_grad_norm"] == 1.0
    assert spent["steps"] == int(2 / spent["sample_rate"])
    # Stored with the model version, shown in its card.
    assert result.model.params["privacy"] == spent
    assert result.model.params["config"]["dp_epsilon"] == 3.0


def test_a_private_run_repeats_exactly_with_its_seed(project: Project) -> None:
    first = project.train("iris", arch="mlp", epochs=1, dp_epsilon=2.0, **FAST)
    second = project.train("iris", arch="mlp", epochs=1, dp_epsilon=2.0, **FAST)
    assert first.metrics == second.metrics
    plain = project.train("iris", arch="mlp", epochs=1, **FAST)
    assert "privacy" not in plain.run.evaluation and "privacy" not in plain.model.params


def test_per_example_gradients_are_clipped_and_noised() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    plan = privacy.plan(2.0, None, 0.5, n_train=64, batch=16, epochs=1)
    private = privacy.PrivateTraining(model, optimizer, 64, 16, plan, seed=0)
    assert isinstance(private.optimizer, DPOptimizer)
    assert private.optimizer.max_grad_norm == 0.5
    assert private.optimizer.noise_multiplier == pytest.approx(plan.noise_multiplier)
    x, y = torch.randn(64, 3) * 100, torch.randint(0, 2, (64,))  # large inputs: large grads
    index = next(iter(private.batches()))
    with privacy.quiet():
        nn.functional.cross_entropy(private.module(x[index]), y[index]).backward()
    for param in model.parameters():  # Opacus' hooks kept one gradient per example
        assert param.grad_sample.shape == (len(index), *param.shape)
    per_example = torch.stack(
        [p.grad_sample.reshape(len(index), -1).norm(dim=1) for p in model.parameters()]
    ).norm(dim=0)
    assert per_example.max() > 0.5  # so clipping has work to do
    private.optimizer.clip_and_accumulate()  # step() clips, then adds noise
    factor = (0.5 / (per_example + 1e-6)).clamp(max=1.0)
    for param in model.parameters():
        clipped = torch.einsum("i,i...->...", factor, param.grad_sample)
        assert torch.allclose(param.summed_grad, clipped, atol=1e-5)
    clipped_norms = per_example * factor
    assert clipped_norms.max() <= 0.5 + 1e-4


def test_cnn_batch_norm_is_replaced_and_said(project: Project) -> None:
    result = project.train("digits", arch="cnn", epochs=1, dp_epsilon=8.0, **FAST)
    spent = result.run.evaluation["privacy"]
    changes = spent["changes"]
    assert len(changes) == 2 and all("batch norm replaced by group norm" in c for c in changes)
    assert result.model.params["spec"]["norm"] == "group"
    module, _ = project.models.load(result.model.ref)
    kinds = {type(m) for m in module.modules()}
    assert nn.GroupNorm in kinds and nn.BatchNorm2d not in kinds
    assert spent["epsilon"] <= 8.0
    card = _card(project, result.model.ref, Path(project.path).parent)
    assert "Trained with differential privacy: ε=" in card
    assert f"δ={spent['delta']:g}, clipping C=1" in card and "Rényi DP accountant" in card
    assert "batch norm replaced by group norm" in card


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_models_train_privately_and_save_plain_layers(
    project: Project, cell: str
) -> None:
    result = project.train(
        "nile", arch="rnn", cell=cell, epochs=2, window=6, dp_epsilon=8.0, dp_delta=1e-3, **FAST
    )
    spent = result.run.evaluation["privacy"]
    assert spent["delta"] == 1e-3 and spent["epsilon"] <= 8.0
    assert f"Opacus' DP{cell.upper()}" in spent["changes"][0]
    module, _ = project.models.load(result.model.ref)
    assert type(module.rnn) is (nn.LSTM if cell == "lstm" else nn.GRU)
    assert math.isfinite(result.metrics["mse"])


def test_mlp_batch_norm_refused_when_asked_writes_nothing(project: Project) -> None:
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match=r"batch-norm layer.*--dp-batch-norm replace"):
        project.train(
            "iris", arch="mlp", batch_norm=True, dp_epsilon=3.0, dp_batch_norm="refuse", **FAST
        )
    with pytest.raises(InvalidOptionError, match="batch-norm"):
        project.train("digits", arch="cnn", dp_epsilon=3.0, dp_batch_norm="refuse", **FAST)
    assert snapshot(project.path) == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dp_epsilon": 0.0}, "--dp-epsilon 0.0: must be a number greater than 0"),
        ({"dp_epsilon": -1.0}, "--dp-epsilon -1.0"),
        ({"dp_epsilon": math.nan}, "--dp-epsilon nan"),
        ({"dp_epsilon": math.inf}, "--dp-epsilon inf"),
        ({"dp_epsilon": "3"}, "--dp-epsilon '3'"),
        ({"dp_epsilon": 3.0, "dp_delta": 0.0}, "--dp-delta 0.0: must be a number between"),
        ({"dp_epsilon": 3.0, "dp_delta": -0.1}, "--dp-delta -0.1"),
        ({"dp_epsilon": 3.0, "dp_delta": 0.05}, "must be below 1/n = 1/105"),
        ({"dp_epsilon": 3.0, "dp_max_grad_norm": 0.0}, "--dp-max-grad-norm 0.0"),
        ({"dp_epsilon": 3.0, "dp_max_grad_norm": -2.0}, "--dp-max-grad-norm -2.0"),
        ({"dp_epsilon": 3.0, "dp_batch_norm": "ignore"}, "--dp-batch-norm 'ignore'"),
        ({"dp_delta": 1e-6}, "--dp-delta applies to private training"),
        (
            {"dp_epsilon": 0.01, "epochs": 50},
            "--dp-epsilon 0.01 cannot be met on 105 training examples over 50 epochs",
        ),
    ],
)
def test_bad_privacy_settings_are_refused_before_anything_is_written(
    project: Project, options: dict[str, Any], message: str
) -> None:
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError) as caught:
        project.train("iris", arch="mlp", **(FAST | options))
    assert message in str(caught.value)
    assert snapshot(project.path) == before


def test_an_unreachable_epsilon_names_the_reachable_one() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        privacy.plan(0.05, 1e-5, 1.0, n_train=200, batch=20, epochs=30)
    text = str(caught.value)
    reachable = float(text.split("ε ≥ ")[1].split(" ")[0])
    steps = int(30 / (1 / 10))
    assert reachable == pytest.approx(
        privacy.spent_epsilon(privacy.MAX_NOISE_MULTIPLIER, 0.1, steps, 1e-5), rel=1e-2
    )
    assert "fewer --epochs" in text
    # ... and that ε is then accepted.
    assert privacy.plan(reachable * 1.05, 1e-5, 1.0, 200, 20, 30).noise_multiplier <= 20


def test_an_architecture_opacus_cannot_train_is_refused() -> None:
    class Stateful(nn.Module):  # a trainable layer with a buffer: no per-example grads
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.InstanceNorm1d(4, affine=True, track_running_stats=True)

    with pytest.raises(InvalidOptionError, match="Opacus cannot train this model privately"):
        privacy.check_architecture(Stateful(), "replace")


@pytest.mark.parametrize(
    ("n", "delta"), [(105, 1e-5), (50_000, 1e-5), (100_000, 1e-6), (2_000_000, 1e-7)]
)
def test_default_delta_is_below_one_over_n(n: int, delta: float) -> None:
    assert privacy.default_delta(n) == delta and delta < 1 / n


def test_config_round_trips_privacy_fields() -> None:
    config = TrainConfig(dp_epsilon=2.0, dp_delta=1e-6, dp_max_grad_norm=0.7)
    assert TrainConfig.from_dict(config.to_dict()) == config and config.private
    assert not TrainConfig.from_dict({"arch": "mlp"}).private  # older runs: not private


def _card(project: Project, ref: str, folder: Path) -> str:
    out = folder / "bundle.zip"
    project.export(ref, "bundle", out)
    with zipfile.ZipFile(out) as archive:
        return archive.read("models/0/MODEL_CARD.md").decode()


class _CancelAfter:
    """A reporter that cancels the run when its ``epoch``-th epoch ends (the worker's
    cancel arrives the same way)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def update(self, done: int, total: int | None, message: str = "") -> None:
        if "epoch" in message and done >= self.epoch:
            raise CancelledError("cancelled by the test")


def test_a_resumed_private_run_keeps_counting_its_budget(project: Project) -> None:
    from lepton_desktop.core.training.service import run_training

    config = TrainConfig(arch="mlp", epochs=3, dp_epsilon=3.0, strong_baseline=False)
    run, _ = project.runs.queue("iris", config)
    with pytest.raises(CancelledError):
        run_training(project.ctx, run.id, _CancelAfter(2))
    assert project.runs.get(run.id).status == "interrupted"
    result = run_training(project.ctx, run.id, resume=True)
    spent = result["privacy"]
    # Epoch 1 from the checkpoint, epochs 2 and 3 after it: every planned step counted.
    assert spent["steps"] == int(3 / spent["sample_rate"])
    assert spent["epsilon"] == pytest.approx(3.0, abs=0.05) and spent["epsilon"] <= 3.0
