"""The Project facade's monitoring part: served traffic, live quality, drift and alerts
(core/monitoring), model updates from served data (replay, candidates, retraining
with feedback), and the privacy of served data (forgetting requests, sharing copies,
personal-data capture; core/privacy). :class:`~lepton_desktop.core.project.Project`
inherits it; it is kept apart so the facade's file stays small. Every method hands
``self.ctx`` (the project file and its connection) to the feature package that does
the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import AlertEvent, AlertRule

if TYPE_CHECKING:
    import sqlite3

    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.monitoring.alerts import Change, RuleSpec
    from lepton_desktop.core.monitoring.labels import LabelImport
    from lepton_desktop.core.monitoring.requests import RequestFilter
    from lepton_desktop.core.monitoring.traffic import Series
    from lepton_desktop.core.monitoring.window import Window
    from lepton_desktop.core.progress import Reporter
    from lepton_desktop.core.registry.registry import ModelRegistry
    from lepton_desktop.core.training.manager import TrainResult


class MonitoringFacade:
    """Monitoring and model-update methods of :class:`~lepton_desktop.core.project.Project`."""

    path: Path
    conn: sqlite3.Connection
    ctx: ProjectContext

    if TYPE_CHECKING:

        @property
        def models(self) -> ModelRegistry: ...

        def train(
            self, dataset: str, *, reporter: Reporter | None = None, **options: Any
        ) -> TrainResult: ...

    def replay_requests(
        self, selection: RequestFilter, target: str, *, limit: int = 10_000,
        reporter: Reporter | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Answer the selected logged requests again with model version ``target`` and
        diff the answers (see :func:`lepton_desktop.core.monitoring.replay.replay`).

        Raises:
            NotFoundError: no such version. InvalidOptionError: a bad filter or limit.
        """
        from lepton_desktop.core.monitoring.replay import replay

        return replay(self.ctx, selection, target, limit=limit, reporter=reporter)

    def compare_candidate(
        self, model: str, candidate: int, *, limit: int = 10_000
    ) -> dict[str, Any]:
        """Version ``candidate`` of ``model`` beside its champion: agreement, quality on
        labelled rows and latency, from shadow rows or a replay (see
        :func:`lepton_desktop.core.monitoring.compare.compare`).

        Raises:
            NotFoundError: no such model or version. InvalidOptionError: the candidate
                is the champion.
        """
        from lepton_desktop.core.monitoring.compare import compare

        return compare(self.ctx, model, candidate, limit=limit)

    def promote(self, model: str, candidate: int) -> dict[str, Any]:
        """Move ``model``'s ``champion`` alias to version ``candidate`` (a running server
        follows it at once); return ``{model, champion, previous}``."""
        from lepton_desktop.core.monitoring.compare import promote

        return promote(self.ctx, model, candidate)

    def retrain_with_feedback(
        self, model: str, *, reporter: Reporter | None = None
    ) -> dict[str, Any]:
        """Retrain ``model``'s champion on its data plus the labelled served rows.

        A new dataset version (the champion's, with every served row a label was sent
        back for added to the train split; its lineage names the requests), then a run
        with the champion's settings on it, registered as the model's next version; the
        validation and test rows are the champion's, so both are scored on the same
        held-out rows (see :mod:`lepton_desktop.core.monitoring.retrain`).

        Returns:
            ``model``, ``champion``, ``candidate``, ``dataset``, ``parent``,
            ``feedback_rows``, ``requests``, ``refused`` (labelled rows the dataset's
            preprocessing refused, left out), ``run_id`` and ``metrics`` (``champion``,
            ``candidate``: test metrics on the same rows).

        Raises:
            NotFoundError: no such model. InvalidOptionError: nothing labelled, or data
                that cannot take served rows (nothing is written).
        """
        from lepton_desktop.core.monitoring.retrain import feedback_dataset

        made = feedback_dataset(self.ctx, model, reporter)
        trained = self.train(made.version.ref, reporter=reporter, **made.options)
        return {
            "model": model, "champion": made.champion.ref, "candidate": trained.model.ref,
            "dataset": made.version.ref, "parent": made.parent.ref,
            "feedback_rows": made.feedback_rows, "requests": made.requests,
            "refused": made.refused, "run_id": trained.run.id,
            "metrics": {"champion": made.champion.metrics, "candidate": trained.metrics},
        }  # fmt: skip

    def monitor(
        self,
        since: str = "1h",
        *,
        model: str | None = None,
        version: int | None = None,
        last_labelled: int | None = None,
    ) -> dict[str, Any]:
        """How served models did over the last ``since`` (``15m``, ``1h``, ..., ``all``).

        Traffic totals, and per model its traffic and live quality from feedback; the
        shape ``lepton-desktop monitor --json`` prints (see
        :func:`lepton_desktop.core.monitoring.report.report`).

        ``last_labelled=N`` adds ``quality_last_labelled``: quality over the newest N
        labelled rows (a count window beside the time window).

        Raises:
            InvalidOptionError: an unreadable ``since`` or ``last_labelled``.
            NotFoundError: ``model`` never answered a request in this project.
        """
        from lepton_desktop.core.monitoring import window
        from lepton_desktop.core.monitoring.report import report

        return report(self.ctx, window.parse(since), model, version, last_labelled)

    def monitor_window(
        self, window: Window, *, model: str | None = None, version: int | None = None
    ) -> dict[str, Any]:
        """:meth:`monitor` over any :class:`~lepton_desktop.core.monitoring.window.Window`."""
        from lepton_desktop.core.monitoring.report import report

        return report(self.ctx, window, model, version)

    def monitor_view(
        self,
        window: Window,
        *,
        model: str | None = None,
        version: int | None = None,
        last_labelled: int | None = None,
    ) -> tuple[dict[str, Any], Series]:
        """What the Monitoring tab shows: the report of ``window`` and its chart series."""
        from lepton_desktop.core.monitoring.report import view

        return view(self.ctx, window, model, version, last_labelled)

    def import_feedback(self, path: Path | str) -> LabelImport:
        """Store the labels of a CSV of ``request_id,label[,row]`` (answers labelled later).

        Every line is checked against the request log and the model that answered; one
        bad line stores nothing (see :mod:`lepton_desktop.core.monitoring.labels`).

        Raises:
            DataImportError: naming the line and the problem.
        """
        from lepton_desktop.core.monitoring import labels

        return labels.import_labels(self.ctx, Path(path))

    def export_monitoring(
        self,
        path: Path | str,
        since: str = "1h",
        *,
        model: str | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        """Write the monitoring report of the last ``since`` to ``path`` (``.json``: what
        :meth:`monitor` returns, with the alerts; ``.html``: a self-contained page).

        Raises:
            InvalidOptionError: an unreadable ``since``, another suffix, a missing folder.
            NotFoundError: ``model`` never answered a request in this project.
        """
        from lepton_desktop.core.monitoring import export, window

        return export.export(self.ctx, window.parse(since), Path(path), model, version)

    def add_alert(self, spec: RuleSpec) -> AlertRule:
        """Store an alert rule (see :mod:`lepton_desktop.core.monitoring.alerts`).

        Raises:
            InvalidOptionError: naming the bad field; nothing is stored.
            NotFoundError: an unknown model.
        """
        from lepton_desktop.core.monitoring import alerts

        return alerts.add_rule(self.ctx, spec)

    def alert_rules(self) -> list[AlertRule]:
        """Every alert rule, by name."""
        from lepton_desktop.core.store import alerts as alert_store

        return alert_store.list_rules(self.conn)

    def remove_alert(self, name: str) -> None:
        """Delete an alert rule and its alerts. Raises NotFoundError."""
        from lepton_desktop.core.store import alerts as alert_store

        alert_store.remove_rule(self.conn, name)

    def check_alerts(self, now: float | None = None) -> list[Change]:
        """Evaluate every enabled rule once (what a running server does every few seconds)."""
        from lepton_desktop.core.monitoring import alerts

        return alerts.check(self.ctx, now)

    def alert_history(self, limit: int = 200) -> list[AlertEvent]:
        """Alerts raised, newest first."""
        from lepton_desktop.core.monitoring import alerts

        return alerts.history(self.ctx, limit)

    def served_models(self) -> list[tuple[str, int]]:
        """``(model, version)`` of everything that ever answered a request here."""
        from lepton_desktop.core.monitoring import traffic

        return traffic.served(self.ctx)

    def forget_requests(
        self,
        *,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        reporter: Reporter | None = None,
    ) -> dict[str, Any]:
        """Clear captured inputs and delete feedback of requests (see core/privacy.py)."""
        from lepton_desktop.core.privacy import forget_requests

        return forget_requests(
            self.ctx, request_id=request_id, since=since, until=until, model=model,
            reporter=reporter,
        )  # fmt: skip

    def share(self, out: Path | str, *, without_data: bool = False) -> dict[str, Any]:
        """Write a copy for sharing, without request inputs and feedback (core/privacy.py)."""
        from lepton_desktop.core.privacy import share_copy

        return share_copy(self.ctx, Path(out), without_data=without_data)

    def capture_pii(self, model: str, capture: bool) -> None:
        """Keep (``capture``) or redact personal-data columns in ``model``'s captured inputs."""
        from lepton_desktop.core.store import serving as serving_store

        name = self.models.get(model).name  # NotFoundError names an unknown model
        serving_store.set_capture_pii(self.conn, name, capture)

    def capture_pii_models(self) -> list[str]:
        """The models whose captured inputs keep their personal-data columns."""
        from lepton_desktop.core.store import serving as serving_store

        return serving_store.capture_pii_models(self.conn)

    def personal_data_of_models(self) -> dict[str, dict[str, str]]:
        """Model name -> the personal-data columns (column -> kind) a server redacts from
        its captured inputs: those found in any of its versions' training data, back to
        the raw import. Every registered model is listed (an empty dict: none found)."""
        from lepton_desktop.core.datasets.pii_found import personal_columns_of

        found: dict[str, dict[str, str]] = {}
        for version in self.models.list(include_archived=False):
            columns = found.setdefault(version.name, {})
            found_here = personal_columns_of(self.conn, version.dataset_version_id)
            for column, kind in found_here.items():
                columns.setdefault(column, kind)
        return found
