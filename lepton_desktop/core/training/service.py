"""One training run from start to registered model: what a ``train`` worker runs.

The run row is the source of truth: its configuration was validated when it was
queued, its status moves queued → running (→ paused → running) → finished | stopped
| failed, and a worker killed on the way leaves it ``interrupted``, resumable from
its last checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.entities import DatasetVersion, ModelVersion, Run
from lepton_desktop.core.errors import CancelledError, LeptonError, NotFoundError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import runs as run_store
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training import privacy, strong_baseline
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.dependence import partial_dependence
from lepton_desktop.core.training.evaluate import evaluate
from lepton_desktop.core.training.loop import (
    Trainer,
    deserialize,
    seed_everything,
    select_device,
    serialize,
)
from lepton_desktop.core.training.models import (
    build_for_training,
    model_spec,
    parameter_count,
)
from lepton_desktop.core.training.tracking import RunTracker

HEADLINE = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "regression": ("mse", "mae", "rmse", "r2"),
    "forecasting": ("mse", "mae", "rmse", "r2"),
}


def run_training(
    ctx: ProjectContext,
    run_id: int,
    reporter: Reporter | None = None,
    *,
    resume: bool = False,
    lineage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and register run ``run_id``; return the CLI's ``--json`` result.

    ``lineage`` goes into the model version's params as is (a tuned model's
    ``{"study": NAME, "trial": N}``).

    Raises:
        LeptonError: bad data or options, or a diverging loss; the run is ``failed``
            with the reason.
    """
    reporter = reporter or NullReporter()
    run = run_store.get(ctx.conn, run_id)
    config = TrainConfig.from_dict(run.config)
    threads = torch.get_num_threads()  # a script's own setting comes back afterwards
    try:
        return _train(ctx, run, config, reporter, resume, lineage or {})
    except CancelledError:
        _finish(ctx, run_id, "interrupted", error="cancelled by the user")
        raise
    except LeptonError as exc:
        _finish(ctx, run_id, "failed", error=str(exc))
        raise
    except BaseException as exc:
        _finish(ctx, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        torch.set_num_threads(threads)


def _train(
    ctx: ProjectContext,
    run: Run,
    config: TrainConfig,
    reporter: Reporter,
    resume: bool,
    lineage: dict[str, Any],
) -> dict[str, Any]:
    version = dataset_store.get_version(ctx.conn, run.dataset_version_id or 0)
    data = training_data.load(ctx.conn, version, config)
    if config.train_on == "train+val":
        data = training_data.with_val_in_train(data)
    with _baseline_beside(data, config) as beside:
        device = select_device(config.device)
        seed_everything(config.seed)
        _limit_threads(data, config)
        spec = model_spec(config, data.input_shape, data.n_outputs)
        network = build_for_training(spec, config.batch_size)
        setup = private_setup(network, spec, config, data) if config.private else None
        if setup is not None:
            network, spec = setup.model, setup.spec
        tracker = RunTracker(
            ctx.path,
            run.id,
            (device.index or 0) if device.type == "cuda" else None,
            on_epoch=_progress(reporter, run, config, data),
        )
        trainer = Trainer(
            network, data, config, tracker, device, setup.plan if setup is not None else None
        )
        if resume:
            _restore(ctx, run.id, trainer)
        run_store.update(
            ctx.conn,
            run.id,
            status="running",
            device=str(device),
            error=None,
            started_at=run.started_at or time.time(),
            control=None,
        )
        began = time.perf_counter()
        try:
            result = trainer.fit()
        finally:
            tracker.close()
        network_seconds = time.perf_counter() - began

        def predict(x: np.ndarray) -> np.ndarray:
            return _predict(trainer, result.best_state, x)

        evaluation = evaluate(data, predict)
        evaluation["parameters"] = parameter_count(trainer.model)
        evaluation["network_fit_seconds"] = network_seconds
        state = result.best_state
        if setup is not None and trainer.private is not None:
            evaluation["privacy"] = trainer.private.report(setup.changes)
            state = privacy.plain_state(state, spec)
        after = _AfterEpochs(reporter, result.epochs_done)
        _global_views(data, config, evaluation, predict, after, beside)
        model = _register(ctx, run, version, config, data, spec, state, evaluation, lineage)
        kill_point("after-register")
        status = "stopped" if result.stopped else "finished"
        _finish(ctx, run.id, status, evaluation=evaluation, epochs_done=result.epochs_done)
        return {
            "run_id": run.id,
            "status": status,
            "model": model.ref,
            "task": data.task,
            "metrics": model.metrics,
            "baseline": _flat(evaluation["baseline"], data.task),
            "strong_baseline": strong_baseline.summary(evaluation, HEADLINE[data.task]),
            "epochs": result.epochs_done,
            "best_epoch": result.best_epoch,
            "device": str(device),
        } | ({"privacy": evaluation["privacy"]} if "privacy" in evaluation else {})


def private_setup(
    model: torch.nn.Module,
    spec: dict[str, Any],
    config: TrainConfig,
    data: training_data.TrainData,
) -> privacy.PrivateSetup:
    """The model and noise plan of a private run on ``data``; see :func:`privacy.prepare`."""
    from lepton_desktop.core.training.loop import effective_batch_size, planned_epochs

    n_train = len(data.y["train"])
    return privacy.prepare(
        model,
        spec,
        config,
        n_train,
        effective_batch_size(config, n_train),
        planned_epochs(config, n_train),
    )


@contextlib.contextmanager
def _baseline_beside(
    data: training_data.TrainData, config: TrainConfig
) -> Iterator[strong_baseline.BaselineProcess | None]:
    """The process that fits the strong baseline while the network trains, given the
    run's arrays now (None when the run has none, or fits it here: see
    :mod:`.strong_baseline`); ended however the run ends."""
    if not config.strong_baseline:
        strong_baseline.discard_warm()
        yield None
        return
    beside = strong_baseline.claim()
    if beside is not None:
        beside.send(strong_baseline.inputs(data, config.seed))
    try:
        yield beside
    finally:
        if beside is not None:
            beside.close()


def _global_views(
    data: training_data.TrainData,
    config: TrainConfig,
    evaluation: dict[str, Any],
    predict: Callable[[np.ndarray], np.ndarray],
    reporter: Reporter,
    beside: strong_baseline.BaselineProcess | None = None,
) -> None:
    """Add, for tables, partial dependence of the most important columns and then the
    strong baseline (unless the run skips it; last, so that a process ``beside`` has
    had the most time) to ``evaluation``."""
    if evaluation.get("importance"):
        ranked = list(evaluation["importance"])
        evaluation["dependence"] = partial_dependence(data, predict, ranked, config.seed)
    if config.strong_baseline:
        try:
            evaluation["strong_baseline"] = strong_baseline.fit_strong_baseline(
                data,
                evaluation["test"],
                network_seconds=evaluation["network_fit_seconds"],
                seed=config.seed,
                reporter=reporter,
                beside=beside,
            )
        except strong_baseline.NO_COMPARISON as exc:
            # A comparison that cannot be made (one class in the training rows, say)
            # must not cost the user the network: the run says why there is none.
            evaluation["strong_baseline_error"] = f"{type(exc).__name__}: {exc}"


class _AfterEpochs:
    """Progress of the work after the last epoch: the bar stays at the epochs done and
    the message says what runs (cancelling still works)."""

    def __init__(self, reporter: Reporter, epochs: int) -> None:
        self._reporter, self._epochs = reporter, epochs

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Pass ``message`` on at the epochs done."""
        self._reporter.update(self._epochs, self._epochs, message)


#: Below this many input values per batch, torch's thread pool costs more than it saves.
SMALL_BATCH_VALUES = 50_000


def small_batches(data: training_data.TrainData, config: TrainConfig) -> bool:
    """Whether one torch thread trains this faster than several.

    Tiny models on small batches ran 5-50x slower with two threads on a busy 2-core
    machine (bench/train_quality): the pool's hand-offs dominate such small ops.
    """
    return config.batch_size * int(np.prod(data.input_shape)) < SMALL_BATCH_VALUES


def _limit_threads(data: training_data.TrainData, config: TrainConfig) -> None:
    if small_batches(data, config):
        torch.set_num_threads(1)


def _restore(ctx: ProjectContext, run_id: int, trainer: Trainer) -> None:
    epoch = 0  # killed before its first epoch: start over
    with contextlib.suppress(NotFoundError):
        epoch, blob = run_store.load_checkpoint(ctx.conn, run_id, "last")
        trainer.restore(deserialize(blob))
    # What the killed worker recorded after its checkpoint is recorded again now.
    run_store.drop_metrics_after(ctx.conn, run_id, epoch)


def _predict(trainer: Trainer, state: dict[str, torch.Tensor], x: np.ndarray) -> np.ndarray:
    trainer.model.load_state_dict(state)
    trainer.model.eval()
    with torch.no_grad():
        tensor = torch.from_numpy(np.ascontiguousarray(x)).to(trainer.device)
        return torch.cat(
            [
                trainer.model(tensor[i : i + 4096]).float().cpu()
                for i in range(0, len(tensor), 4096)
            ]
        ).numpy()


def _progress(
    reporter: Reporter, run: Run, config: TrainConfig, data: training_data.TrainData
) -> Callable[[int, dict[str, float]], None]:
    from lepton_desktop.core.training.loop import planned_epochs

    total = planned_epochs(config, len(data.y["train"]))

    def report(epoch: int, metrics: dict[str, float]) -> None:
        shown = {k: v for k, v in metrics.items() if k.startswith("val_")}
        text = " ".join(f"{k[4:]} {v:.4g}" for k, v in shown.items())
        reporter.update(epoch, total, f"run {run.id} epoch {epoch}: {text}")

    return report


def _flat(metrics: dict[str, Any], task: str) -> dict[str, float]:
    return {k: metrics[k] for k in HEADLINE[task] if k in metrics}


def _register(
    ctx: ProjectContext,
    run: Run,
    version: DatasetVersion,
    config: TrainConfig,
    data: training_data.TrainData,
    spec: dict[str, Any],
    state: dict[str, torch.Tensor],
    evaluation: dict[str, Any],
    lineage: dict[str, Any],
) -> ModelVersion:
    params = lineage | {
        "spec": spec,
        "config": config.to_dict(),
        "task": data.task,
        "classes": data.classes,
        "target": data.target,
        "target_mean": data.target_mean,
        "target_std": data.target_std,
        "feature_names": data.feature_names,
        "dataset": version.ref,
    }
    if "privacy" in evaluation:
        params["privacy"] = evaluation["privacy"]
    signature = {
        "inputs": _inputs(data, version),
        "input_shape": list(data.input_shape),
        "outputs": data.classes or [data.target],
    }
    return model_store.register(
        ctx.conn,
        config.model_name or f"{version.name}-{config.arch}",
        weights=serialize(state),
        arch=config.arch,
        task=data.task,
        run_id=run.id,
        dataset_version_id=version.id,
        metrics=_flat(evaluation["test"], data.task),
        params=params,
        pipeline=data.pipeline,
        signature=signature,
    )


def _inputs(data: training_data.TrainData, version: DatasetVersion) -> list[dict[str, str]]:
    step = next((s for s in data.pipeline if s.get("step") == "input"), None)
    if step is not None:
        return list(step["columns"])
    return [{"name": c.name, "dtype": c.dtype} for c in version.columns if c.name != data.target]


def _finish(ctx: ProjectContext, run_id: int, status: str, **fields: Any) -> None:
    run_store.update(
        ctx.conn, run_id, status=status, finished_at=time.time(), control=None, **fields
    )
