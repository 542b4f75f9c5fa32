"""Frozen records handed out by the store; later writes never change them."""

from __future__ import annotations

import dataclasses
from typing import Any

DATASET_KINDS = ("tabular", "images", "timeseries")
SPLIT_NAMES = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a dataset version, as the user named it, with its statistics."""

    position: int
    name: str
    dtype: str  # numeric | categorical | text | datetime
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def sql_name(self) -> str:
        """The column's name in the data table (user names may be anything)."""
        return f"c{self.position}"


@dataclasses.dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset: its rows live in table ``ds_<id>``."""

    id: int
    dataset_id: int
    name: str
    version: int
    kind: str
    status: str
    source: str
    n_rows: int
    target: str | None
    time_column: str | None
    parent_id: int | None
    operations: list[dict[str, Any]]
    pipeline: list[dict[str, Any]]
    splits: dict[str, int] | None
    created_at: float
    columns: tuple[Column, ...] = ()

    @property
    def ref(self) -> str:
        """``name:version``, the form the command line accepts."""
        return f"{self.name}:{self.version}"

    @property
    def table(self) -> str:
        """Name of the SQLite table that holds the rows."""
        return f"ds_{self.id}"

    def column(self, name: str) -> Column:
        """Return the column called ``name``; KeyError if there is none."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclasses.dataclass(frozen=True)
class Job:
    """A unit of work run by a worker process, reported through the project file."""

    id: int
    kind: str
    status: str
    args: dict[str, Any]
    progress_done: int
    progress_total: int | None
    message: str
    error: str | None
    result: dict[str, Any] | None
    pid: int | None
    heartbeat_at: float | None
    cancel_requested: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    #: The process answering for the job (launcher while queued, then worker) and its
    #: start time; None in rows written before schema 7.
    owner_pid: int | None = None
    owner_started_at: float | None = None

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ("queued", "running")

    @property
    def fraction(self) -> float | None:
        """Progress in [0, 1], or None when the total is unknown."""
        if not self.progress_total:
            return None
        return min(1.0, self.progress_done / self.progress_total)


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Bin edges and counts of a numeric column, or value counts of a categorical one."""

    labels: list[str]
    counts: list[int]
    edges: list[float] | None = None


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: its configuration, state and (once finished) evaluation."""

    id: int
    job_id: int | None
    dataset_version_id: int | None
    dataset_ref: str
    arch: str
    task: str
    config: dict[str, Any]
    status: str
    control: str | None
    device: str | None
    error: str | None
    epochs_done: int
    best_epoch: int | None
    best_value: float | None
    monitor: str | None
    evaluation: dict[str, Any] | None
    archived: bool
    notes: str
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or None while it has not started)."""
        if self.started_at is None:
            return None
        return (self.finished_at or self.started_at) - self.started_at

    @property
    def resumable(self) -> bool:
        """Whether ``train --resume`` can continue this run (archiving drops checkpoints)."""
        return self.status in ("interrupted", "stopped", "failed", "paused") and not self.archived


@dataclasses.dataclass(frozen=True)
class MetricPoint:
    """One logged value: a per-step loss or a per-epoch metric."""

    id: int
    run_id: int
    name: str
    step: int
    epoch: int
    value: float | None
    t: float


@dataclasses.dataclass(frozen=True)
class SystemPoint:
    """One system sample of a run (None where a device is absent)."""

    id: int
    run_id: int
    t: float
    cpu_percent: float | None
    rss_mb: float | None
    gpu_percent: float | None
    gpu_mem_mb: float | None


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A registered model version (weights are fetched separately: they may be large)."""

    id: int
    model_id: int
    name: str
    version: int
    run_id: int | None
    dataset_version_id: int | None
    arch: str
    task: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    pipeline: list[dict[str, Any]]
    signature: dict[str, Any]
    notes: str
    archived: bool
    aliases: tuple[str, ...]
    created_at: float

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"


@dataclasses.dataclass(frozen=True)
class Deployment:
    """One start of the local server: where it listens, what it serves, how it went."""

    id: int
    job_id: int | None
    host: str
    port: int
    url: str | None
    token: str | None
    status: str  # queued | starting | running | stopped | failed | interrupted
    models: list[str]
    loaded: list[dict[str, Any]]
    options: dict[str, Any]
    error: str | None
    pid: int | None
    created_at: float
    started_at: float | None
    stopped_at: float | None

    @property
    def active(self) -> bool:
        """True while queued, starting or running."""
        return self.status in ("queued", "starting", "running")


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request the server answered, as its log writer stored it."""

    id: int
    deployment_id: int | None
    ts: float
    request_id: str
    method: str
    path: str
    protocol: str
    model: str | None
    version: int | None
    status: int
    latency_ms: float
    n_rows: int
    inputs: Any
    outputs: Any
    error: str | None


@dataclasses.dataclass(frozen=True)
class Study:
    """A tuning study: our record of an Optuna study and what it is searching for.

    The trials themselves live in Optuna's storage: the project file's own Optuna
    tables (``storage`` None), or an external one (PostgreSQL, MySQL, a journal
    file) that several machines share; a finished external study is copied into
    the project file.

    Attributes:
        optuna_study_id: the study's id in the project file's Optuna tables; None
            while it lives only in an external storage.
        dataset: ``name:version`` of the dataset tuned on.
        metric: the first objective (a validation metric such as ``f1``).
        objectives: every objective (``["f1", "params"]`` for a multi-objective study).
        directions: ``maximize`` or ``minimize`` per objective.
        space: the search space (see :mod:`lepton_desktop.core.tuning.space`).
        options: fixed training options of every trial (``epochs``, ``seed``).
        n_trials: the trials the study is to finish (completed or pruned).
        jobs: trials run at once on this machine.
        storage: the external storage URL, or None for the project file.
        best_model: ``name:version`` of the registered best model, or None.
    """

    id: int
    name: str
    optuna_study_id: int | None
    dataset: str
    dataset_version_id: int | None
    arch: str
    sampler: str
    pruner: str
    metric: str
    objectives: list[str]
    directions: list[str]
    space: dict[str, dict[str, Any]]
    options: dict[str, Any]
    n_trials: int
    jobs: int
    storage: str | None
    status: str
    best_value: float | None
    best_params: dict[str, Any] | None
    best_trial: int | None
    best_model: str | None
    job_id: int | None
    error: str | None
    created_at: float
    finished_at: float | None

    @property
    def multi_objective(self) -> bool:
        """True when the study has several objectives (a Pareto front, no pruning)."""
        return len(self.objectives) > 1

    @property
    def active(self) -> bool:
        """True while its tune job may still run trials."""
        return self.status == "running"


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """A rule that watches one monitored metric and fires past a threshold.

    Attributes:
        id: its row id.
        name: unique in the project.
        metric: what it watches (see ``core.monitoring.alerts.METRICS``).
        model: the model's name, or None for every served model.
        version: one version, or None for all.
        window: the span each check looks back over (``15m``, ``1h``, ...).
        op: ``>``, ``>=``, ``<`` or ``<=`` (fires when ``value op threshold``).
        threshold: the limit.
        min_rows: no verdict on fewer requests (traffic metrics) or labelled rows
            (quality metrics) than this.
        cooldown_s: after an alert resolves, the rule stays quiet this long.
        webhook: the sealed webhook URL (see ``core.secretbox``), or None.
        action: ``notify``, or ``rollback`` (move ``champion`` back a version).
        enabled: whether it is checked.
        created_at: Unix seconds.
    """

    id: int
    name: str
    metric: str
    model: str | None
    version: int | None
    window: str
    op: str
    threshold: float
    min_rows: int
    cooldown_s: float
    webhook: str | None
    action: str
    enabled: bool
    created_at: float


@dataclasses.dataclass(frozen=True)
class AlertEvent:
    """An alert a rule raised: ``firing`` until the metric is back, then ``resolved``.

    Attributes:
        id: its row id.
        rule_id: the rule that raised it.
        rule: the rule's name.
        state: ``firing`` or ``resolved``.
        value: the metric's value when it fired.
        rows: the rows that value was computed on.
        message: one sentence for people.
        fired_at: Unix seconds.
        resolved_at: Unix seconds, or None while firing.
        deliveries: webhook attempts: ``[{"at", "status", "error"}]``.
    """

    id: int
    rule_id: int
    rule: str
    state: str
    value: float | None
    rows: int
    message: str
    fired_at: float
    resolved_at: float | None
    deliveries: list[dict[str, Any]]
