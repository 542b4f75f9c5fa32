"""One trial: train with sampled hyperparameters and score on the validation split.

Trials are light: no run row, no checkpoints, no per-step metric rows. Each epoch's
validation metric goes to Optuna as an intermediate value (``trial.report``), which
feeds the pruner and the intermediate-value plot; the trial's value is the metric
of its best epoch. Only the study's best trial becomes a model (retrained at the
end, see :mod:`lepton_desktop.core.tuning.runner`), so a study of a hundred trials
does not leave a hundred model versions behind.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import torch

from lepton_desktop.core.entities import Study
from lepton_desktop.core.errors import CancelledError, InvalidOptionError
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.evaluate import classification_metrics, regression_metrics
from lepton_desktop.core.training.loop import (
    DivergedError,
    Trainer,
    seed_everything,
    select_device,
)
from lepton_desktop.core.training.models import (
    build_for_training,
    model_spec,
    parameter_count,
)
from lepton_desktop.core.training.service import private_setup, small_batches
from lepton_desktop.core.tuning import space as spaces

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

LATENCY_REPEATS = 20
#: Epoch metrics the trainer computes itself; others need one more validation pass.
_EPOCH_METRICS = {"loss", "accuracy", "mae", "r2"}


def trial_config(study: Study, params: dict[str, Any]) -> TrainConfig:
    """The training configuration of a trial with ``params`` (or the best, to retrain)."""
    options = spaces.apply_params({"arch": study.arch, **study.options}, params)
    return TrainConfig.from_dict(options)


def val_metrics(trainer: Trainer, out: np.ndarray) -> dict[str, float]:
    """Every validation metric of raw outputs ``out`` (targets in their own units)."""
    data = trainer.data
    y = trainer.y["val"].cpu()
    pred = torch.from_numpy(out)
    loss = float(trainer.cpu_loss_fn(pred if data.task == "classification" else pred[:, 0], y))
    if data.task == "classification":
        scores = classification_metrics(y.numpy(), out.argmax(1), data.classes or [])
        keys = ("accuracy", "precision", "recall", "f1")
        return {"loss": loss} | {k: float(scores[k]) for k in keys}
    true = y.numpy() * data.target_std + data.target_mean
    scores = regression_metrics(true, out[:, 0] * data.target_std + data.target_mean)
    return {"loss": loss} | {k: float(v) for k, v in scores.items()}


class TrialHooks:
    """Trainer hooks of a trial: intermediate values, pruning, progress and cancel.

    Args:
        trial: the Optuna trial.
        metric: the objective's validation metric.
        report: whether to report intermediate values (not for multi-objective).
        on_epoch: called after each epoch (it may raise CancelledError).
    """

    def __init__(
        self,
        trial: optuna.Trial,
        metric: str,
        report: bool,
        on_epoch: Callable[[int, int], None],
    ) -> None:
        self.trial, self.metric, self.report = trial, metric, report
        self.on_epoch = on_epoch
        self.trainer: Trainer | None = None

    def step(self, step: int, epoch: int, loss: torch.Tensor) -> None:
        """Nothing: trials keep no per-step curve."""

    def epoch(self, epoch: int, metrics: dict[str, float], best: bool) -> None:
        """Report the epoch's validation value; prune when the pruner says so."""
        assert self.trainer is not None
        self.on_epoch(epoch, self.trainer.epochs)
        if not self.report:
            return
        if self.metric in _EPOCH_METRICS:
            value = metrics[f"val_{self.metric}"]
        else:
            value = val_metrics(self.trainer, self.trainer.predict("val"))[self.metric]
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} ({self.metric} {value:.4g})")

    def checkpoint(self, kind: str, epoch: int, state: bytes) -> None:
        """Nothing: a trial is retrained if it wins, not resumed."""

    def control(self) -> str | None:
        """Never pause or stop from here (cancel arrives through ``on_epoch``)."""
        return None


class TrialObjective:
    """The objective Optuna calls: one training per trial, data loaded once per process.

    Args:
        ctx: the open project (this process's connection).
        study: the study record.
        jobs: trials running at once on this machine (more than one: one thread each).
        on_epoch: ``(epoch, epochs)`` after each epoch of a trial; may raise to cancel.
    """

    def __init__(
        self, ctx: ProjectContext, study: Study, jobs: int, on_epoch: Callable[[int, int], None]
    ) -> None:
        self.ctx, self.study, self.jobs = ctx, study, jobs
        self.on_epoch = on_epoch
        self.version = dataset_store.get_version(ctx.conn, study.dataset_version_id or 0)
        self._data: dict[tuple[Any, ...], training_data.TrainData] = {}

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        """Train and score one trial."""
        # Which machine and process ran it (studies shared by several machines).
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = spaces.suggest(trial, self.study.space)
        config = trial_config(self.study, params)
        config.validate()
        data = self._load(config)
        seed_everything(config.seed)
        self._limit_threads(data, config)
        spec = model_spec(config, data.input_shape, data.n_outputs)
        try:
            model = build_for_training(spec, config.batch_size)
            setup = private_setup(model, spec, config, data) if config.private else None
        except InvalidOptionError as exc:
            # Too large for this machine now (the space was checked up front, on an
            # estimate of the data's shape): a poor configuration, pruned.
            trial.set_user_attr("failed_reason", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        hooks = TrialHooks(trial, self.study.metric, not self.study.multi_objective, self.on_epoch)
        plan = None
        if setup is not None:  # the study fixed ε: every trial trains privately
            model, plan = setup.model, setup.plan
        trainer = Trainer(model, data, config, hooks, select_device(config.device), plan)
        hooks.trainer = trainer
        try:
            result = trainer.fit()
        except DivergedError as exc:
            # A diverging configuration is a poor one: pruned, so samplers learn from it.
            trial.set_user_attr("failed_reason", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except CancelledError:
            trial.set_user_attr("failed_reason", "stopped by the user")
            raise
        scores = val_metrics(trainer, trainer.predict("val", result.best_state))
        params_count = parameter_count(trainer.model)
        trial.set_user_attr("params_count", params_count)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs", result.epochs_done)
        trial.set_user_attr("val", {k: round(v, 6) for k, v in scores.items()})
        values = [self._value(o, scores, params_count, trainer) for o in self.study.objectives]
        for name, value in zip(self.study.objectives, values, strict=True):
            if name == "latency":
                trial.set_user_attr("latency_ms", value)
        return values if self.study.multi_objective else values[0]

    def _value(
        self, objective: str, scores: dict[str, float], params_count: int, trainer: Trainer
    ) -> float:
        if objective == "params":
            return float(params_count)
        if objective == "latency":
            return _latency_ms(trainer)
        return scores[objective]

    def _load(self, config: TrainConfig) -> training_data.TrainData:
        # What the arrays depend on; a trial that samples the window gets its own.
        key = (config.target, config.task, config.window, config.horizon, config.seed, config.arch)
        if key not in self._data:
            self._data[key] = training_data.load(self.ctx.conn, self.version, config)
        return self._data[key]

    def _limit_threads(self, data: training_data.TrainData, config: TrainConfig) -> None:
        # Parallel trials share the cores: one thread each. Alone, small batches still
        # run faster on one thread, as in training.
        if self.jobs > 1 or small_batches(data, config):
            torch.set_num_threads(1)


def _latency_ms(trainer: Trainer) -> float:
    """Median milliseconds to predict one validation row (the model's serving cost)."""
    model = trainer.model.eval()
    row = trainer.x["val"][:1]
    times = []
    with torch.no_grad():
        for _ in range(3):
            model(row)
        for _ in range(LATENCY_REPEATS):
            start = time.perf_counter()
            model(row)
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
