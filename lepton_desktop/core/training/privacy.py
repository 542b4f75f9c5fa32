"""Differentially private training (DP-SGD) with Opacus.

A private run clips every example's gradient to ``max_grad_norm`` and adds Gaussian
noise to each batch's sum (Opacus' ``PrivacyEngine``), drawing its batches by Poisson
sampling (each training example joins each batch independently, with probability
``sample_rate``) as the privacy analysis assumes. The noise is chosen for the target
ε over the planned epochs (``make_private_with_epsilon``); the ε actually spent is read
back from Opacus' RDP accountant when training ends (an early stop spends less).

Everything that can be decided before a run is checked by :func:`plan` and
:func:`check_architecture` when the run is queued, so an impossible setting writes
nothing; the worker checks again on the exact data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.training.config import TrainConfig, check_numbers

# Opacus' warnings that say nothing to a user of this app: its secure RNG is off (a
# CSPRNG would make seeded runs unrepeatable; the noise is Gaussian either way), its RDP
# orders' range at large ε (the bound is still valid, only less tight), and torch's
# note that the first layer's input needs no gradient.
_QUIET = (
    "Secure RNG turned off",
    "Optimal order is the largest alpha",
    "Full backward hook is firing when gradients are computed with respect to module outputs",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence those warnings (only those) while Opacus works."""
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


#: Opacus' Rényi-DP accountant: the one its ``PrivacyEngine`` uses by default, exact for
#: the subsampled Gaussian mechanism up to its conversion to (ε, δ), and fast.
ACCOUNTANT = "rdp"
#: Beyond this noise multiplier the noise drowns the clipped gradients of any batch
#: this app trains with: the run would spend its budget and learn nothing.
MAX_NOISE_MULTIPLIER = 20.0
#: The δ used when none is given, at most this (the usual choice for small data).
DEFAULT_MAX_DELTA = 1e-5
#: What Opacus' binary search for the noise multiplier may miss the target ε by.
EPSILON_TOLERANCE = 0.01


@dataclasses.dataclass(frozen=True)
class PrivacyPlan:
    """The DP-SGD settings of one run, fixed before it starts.

    Attributes:
        epsilon: the target ε.
        delta: the δ (given, or :func:`default_delta`).
        max_grad_norm: each example's gradient is clipped to this L2 norm (C).
        sample_rate: the chance that an example joins a batch (Poisson sampling).
        epochs: the planned epochs.
        steps: the planned optimizer steps (``epochs / sample_rate``).
        noise_multiplier: σ, the noise's standard deviation over C.
    """

    epsilon: float
    delta: float
    max_grad_norm: float
    sample_rate: float
    epochs: int
    steps: int
    noise_multiplier: float


def default_delta(n_train: int) -> float:
    """The power of ten below ``1 / n_train`` (strictly), and at most 1e-5."""
    digits = len(str(max(n_train, 1)))  # 10^(digits-1) <= n < 10^digits
    return min(DEFAULT_MAX_DELTA, float(f"1e-{digits}"))


def plan(
    epsilon: float,
    delta: float | None,
    max_grad_norm: float,
    n_train: int,
    batch: int,
    epochs: int,
) -> PrivacyPlan:
    """The noise that spends ``epsilon`` over ``epochs`` of ``n_train`` examples.

    The sample rate is Opacus' (one over the batches per epoch), so this is the plan
    ``make_private_with_epsilon`` arrives at.

    Raises:
        InvalidOptionError: δ not below 1/n, or an ε that cannot be met with a useful
            amount of noise; the message says which ε would be and what helps.
    """
    check_numbers(epsilon, delta, max_grad_norm)
    if n_train < 2:
        raise InvalidOptionError("private training needs at least 2 training examples")
    delta = default_delta(n_train) if delta is None else float(delta)
    if delta >= 1 / n_train:
        raise InvalidOptionError(
            f"--dp-delta {delta:g}: must be below 1/n = 1/{n_train:,} = {1 / n_train:.3g} "
            f"(a larger δ allows leaking a whole row); try {default_delta(n_train):g}"
        )
    sample_rate = 1 / math.ceil(n_train / batch)
    steps = int(epochs / sample_rate)
    sigma = _noise_for(epsilon, delta, sample_rate, steps)
    if sigma is None or sigma > MAX_NOISE_MULTIPLIER:
        reachable = spent_epsilon(MAX_NOISE_MULTIPLIER, sample_rate, steps, delta)
        raise InvalidOptionError(
            f"--dp-epsilon {epsilon:g} cannot be met on {n_train:,} training examples over "
            f"{epochs} epochs (batches of {batch}): it would need noise σ > "
            f"{MAX_NOISE_MULTIPLIER:g} times the clipping norm, which drowns what the model "
            f"learns. With this data and these epochs ε ≥ {reachable:.3g} is reachable; or "
            "use more data, fewer --epochs or a larger --batch-size"
        )
    return PrivacyPlan(
        float(epsilon), delta, float(max_grad_norm), sample_rate, epochs, steps, sigma
    )


def _noise_for(epsilon: float, delta: float, sample_rate: float, steps: int) -> float | None:
    from opacus.accountants.utils import get_noise_multiplier

    # Opacus' own search (the one make_private_with_epsilon runs), stopped early: any σ
    # above the useful range is refused anyway, and its search would go on to 10^6.
    if spent_epsilon(MAX_NOISE_MULTIPLIER, sample_rate, steps, delta) > epsilon:
        return None
    try:
        with quiet():
            return float(
                get_noise_multiplier(
                    target_epsilon=epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=ACCOUNTANT,
                    epsilon_tolerance=EPSILON_TOLERANCE,
                )
            )
    except ValueError:  # "The privacy budget is too low."
        return None


def spent_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε of ``steps`` noisy steps, from Opacus' RDP accountant."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    if steps > 0:
        accountant.history = [(noise_multiplier, sample_rate, steps)]
    if steps <= 0:
        return 0.0
    with quiet():
        return float(accountant.get_epsilon(delta))


# -- the architecture -------------------------------------------------------------------

BATCH_NORM_POLICIES = ("replace", "refuse")


def check_architecture(model: nn.Module, batch_norm: str) -> list[str]:
    """What Opacus must change in ``model`` to train it privately (as messages).

    Works on a model built on the ``meta`` device (no memory), so it runs when a run
    is queued.

    Raises:
        InvalidOptionError: batch norm with ``batch_norm="refuse"``, or a layer that
            Opacus cannot make private.
    """
    from opacus.validators import ModuleValidator
    from opacus.validators.errors import ShouldReplaceModuleError

    errors = ModuleValidator.validate(model, strict=False)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms and batch_norm == "refuse":
        raise InvalidOptionError(
            f"this model has {len(norms)} batch-norm layer(s), which mix the examples of a "
            "batch and cannot be trained privately; --dp-batch-norm replace swaps them for "
            "group norm (the model changes), or train an MLP without --batch-norm"
        )
    unfixable = [e for e in errors if not isinstance(e, ShouldReplaceModuleError)]
    if unfixable:
        raise InvalidOptionError(f"Opacus cannot train this model privately: {unfixable[0]}")
    return _changes(model)


def _changes(model: nn.Module) -> list[str]:
    messages = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            groups = math.gcd(32, module.num_features)
            messages.append(
                f"{name}: batch norm replaced by group norm ({groups} groups of "
                f"{module.num_features} channels): batch norm mixes the examples of a batch"
            )
        elif isinstance(module, nn.LSTM | nn.GRU):
            kind = "LSTM" if isinstance(module, nn.LSTM) else "GRU"
            messages.append(
                f"{name}: {kind} computed by Opacus' DP{kind} (the same layer, with "
                "per-example gradients); the model is saved as a plain " + kind
            )
    return messages


def fix_architecture(model: nn.Module) -> nn.Module:
    """``model`` with its batch norms made group norms and its LSTM/GRU Opacus' twins."""
    from opacus.validators import ModuleValidator

    return ModuleValidator.fix(model)


# -- training -------------------------------------------------------------------------


class PrivateTraining:
    """A model, optimizer and Poisson batch sampler made private by Opacus.

    Args:
        model: the (fixed) model to train; it is wrapped, not copied.
        optimizer: its optimizer; gradients reach it clipped and noised.
        n_train: training examples.
        batch: the expected batch size.
        privacy: the plan (its σ is recomputed by Opacus from ε: the same search).
        seed: seeds the noise and the sampling, so a CPU run repeats.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        n_train: int,
        batch: int,
        privacy: PrivacyPlan,
        seed: int,
    ) -> None:
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        self.privacy = privacy
        with quiet():
            self.engine = PrivacyEngine(accountant=ACCOUNTANT)
        indices = TensorDataset(torch.arange(n_train))
        self.sampling = torch.Generator().manual_seed(seed + 1)
        loader = DataLoader(indices, batch_size=batch, generator=self.sampling)
        with quiet():
            self.module, self.optimizer, self.loader = self.engine.make_private_with_epsilon(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                target_epsilon=privacy.epsilon,
                target_delta=privacy.delta,
                epochs=privacy.epochs,
                max_grad_norm=privacy.max_grad_norm,
                noise_generator=torch.Generator().manual_seed(seed),
            )

    def batches(self) -> Any:
        """One epoch of Poisson-sampled index batches (sizes vary; one may be empty)."""
        for (index,) in self.loader:
            yield index

    def history(self) -> list[tuple[float, float, int]]:
        """The accountant's record of noisy steps: ``[(σ, sample rate, steps)]``."""
        return [(float(s), float(q), int(n)) for s, q, n in self.engine.accountant.history]

    def restore(self, history: list[Any], sampling: torch.Tensor | None) -> None:
        """Continue the budget (and the sampler) of a resumed run."""
        self.engine.accountant.history = [(float(s), float(q), int(n)) for s, q, n in history]
        if sampling is not None:
            self.sampling.set_state(sampling)

    def report(self, changes: list[str]) -> dict[str, Any]:
        """What the run spent, for its evaluation and its model version."""
        history = self.history()
        steps = sum(int(n) for _, _, n in history)
        with quiet():
            epsilon = float(self.engine.get_epsilon(self.privacy.delta)) if steps else 0.0
        return {
            "epsilon": epsilon,
            "delta": self.privacy.delta,
            "target_epsilon": self.privacy.epsilon,
            "max_grad_norm": self.privacy.max_grad_norm,
            "noise_multiplier": float(self.optimizer.noise_multiplier),
            "sample_rate": float(history[0][1]) if history else self.privacy.sample_rate,
            "steps": steps,
            "accountant": ACCOUNTANT,
            "sampling": "poisson",
            "clipping": "per-example, flat",
            "changes": changes,
            "library": _opacus_version(),
        }


def _opacus_version() -> str:
    import opacus

    return f"opacus {opacus.__version__}"


# -- a run ------------------------------------------------------------------------------


@dataclasses.dataclass
class PrivateSetup:
    """A private run's model (made private-ready), its spec, the plan and the changes."""

    model: nn.Module
    spec: dict[str, Any]
    plan: PrivacyPlan
    changes: list[str]


def prepare(
    model: nn.Module,
    spec: dict[str, Any],
    config: TrainConfig,
    n_train: int,
    batch: int,
    epochs: int,
) -> PrivateSetup:
    """Check and fix ``model`` for DP-SGD and plan its noise; see :func:`plan`.

    The returned spec rebuilds the trained model for inference: batch norms become
    group norms there too (``"norm": "group"``); Opacus' DPLSTM/DPGRU train what is
    saved, and served, as a plain LSTM/GRU (:func:`plain_state`).

    Raises:
        InvalidOptionError: see :func:`check_architecture`, :func:`plan`, or per-example
            gradients that would not fit in memory.
    """
    changes = check_architecture(model, config.dp_batch_norm)
    assert config.dp_epsilon is not None
    privacy = plan(
        config.dp_epsilon, config.dp_delta, config.dp_max_grad_norm, n_train, batch, epochs
    )
    _check_per_example_memory(model, batch)
    has_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if changes:
        model = fix_architecture(model)
    if has_norm:
        spec = spec | {"norm": "group"}
    return PrivateSetup(model, spec, privacy, changes)


#: Opacus keeps one gradient per example and parameter (float32) for each batch; a
#: Poisson batch may be larger than the expected size, so allow twice as much.
PER_EXAMPLE_COPIES = 2


def _check_per_example_memory(model: nn.Module, batch: int) -> None:
    from lepton_desktop.core.system.memory import check_fits

    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    check_fits(
        parameters * batch * 4 * PER_EXAMPLE_COPIES,
        f"private training ({parameters:,} parameters, a gradient per example of batches "
        f"of {batch:,})",
        "use a smaller --batch-size or a smaller model",
    )


def plain_state(state: dict[str, torch.Tensor], spec: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of a private run as the model ``spec`` builds them (DPLSTM's aliases of
    its parameters dropped), so inference and export load a plain model."""
    from lepton_desktop.core.training.models import build

    with torch.device("meta"):
        keys = set(build(spec).state_dict())
    missing = keys - set(state)
    if missing:
        raise RuntimeError(f"the private model lacks weights of the saved one: {sorted(missing)}")
    return {k: v for k, v in state.items() if k in keys}
