"""Reads and operations of the Monitoring tab (on the session's DB thread).

Everything comes from the project file through the facade: the models that ever
answered, and for the chosen model and window the report (totals, live quality) and
the binned series behind the charts. Both are read from the request log's per-minute
rollups, so a read costs milliseconds however long the log is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import AlertEvent, AlertRule, ModelVersion, RequestRecord
from lepton_desktop.core.monitoring import window as windows
from lepton_desktop.core.monitoring.alerts import RuleSpec
from lepton_desktop.core.monitoring.requests import RequestFilter
from lepton_desktop.core.monitoring.traffic import Series
from lepton_desktop.gui.session import Changes, ProjectSession

if TYPE_CHECKING:
    from pathlib import Path

    from lepton_desktop.core.monitoring.labels import LabelImport
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.tasks import OnError


@dataclasses.dataclass(frozen=True)
class Choice:
    """What the tab shows: a model (None: all), a version (None: all), a window.

    Attributes:
        model: a model name, or None for every served model.
        version: one version, or None.
        since: a named window (``15m``, ``1h``, ``24h``, ``7d``, ``all``) ...
        range: ... or a range ``(since, until)`` dragged on a chart (wins when set).
        last_labelled: quality tables over the newest N labelled rows (None: the window).
    """

    model: str | None = None
    version: int | None = None
    since: str = "1h"
    range: tuple[float, float] | None = None
    last_labelled: int | None = None

    def window(self) -> windows.Window:
        if self.range is not None:
            return windows.between(*self.range)
        return windows.parse(self.since)


@dataclasses.dataclass(frozen=True)
class AlertsView:
    """The alert rules and the alerts they raised (newest first)."""

    rules: list[AlertRule]
    history: list[AlertEvent]


@dataclasses.dataclass(frozen=True)
class MonitoringView:
    """One read's answer.

    Attributes:
        choice: what was asked for.
        served: ``(model, version)`` of everything that ever answered, for the picker.
        report: ``Project.monitor``'s report of the choice.
        series: the chart data of the choice.
        alerts: the alert rules and the latest alerts.
    """

    choice: Choice
    served: list[tuple[str, int]]
    report: dict[str, Any]
    series: Series
    alerts: AlertsView


def read_view(project: Project, choice: Choice) -> MonitoringView:
    """DB thread: the picker's models, the report and the charts of ``choice``."""
    served = project.served_models()
    names = {name for name, _ in served}
    if choice.model is not None and choice.model not in names:
        choice = Choice(None, None, choice.since, choice.range, choice.last_labelled)  # deleted
    window = choice.window()
    report, series = project.monitor_view(window, model=choice.model, version=choice.version,
                                          last_labelled=choice.last_labelled)  # fmt: skip
    return MonitoringView(choice, served, report, series, read_alerts(project))


def load_view(
    session: ProjectSession,
    choice: Choice,
    on_done: Callable[[MonitoringView], None],
    on_error: OnError,
    owner: Any,
) -> None:
    """Read ``choice`` on the DB thread (see :func:`read_view`)."""
    session.query(lambda p: read_view(p, choice), on_done, on_error, owner)


def read_alerts(project: Project) -> AlertsView:
    """DB thread: every rule and the latest alerts."""
    return AlertsView(project.alert_rules(), project.alert_history(limit=200))


def load_alerts(session: ProjectSession, on_done: Callable[[AlertsView], None],
                on_error: OnError, owner: Any) -> None:  # fmt: skip
    """Read the rules and alerts on the DB thread."""
    session.query(read_alerts, on_done, on_error, owner)


def add_alert(session: ProjectSession, spec: RuleSpec, on_done: Callable[[Any], None],
              on_error: OnError) -> None:  # fmt: skip
    """Store a rule (refused with a clear error, nothing stored)."""
    session.command(lambda p: p.add_alert(spec), Changes(), on_done, on_error)


def remove_alert(session: ProjectSession, name: str, on_done: Callable[[Any], None],
                 on_error: OnError) -> None:  # fmt: skip
    """Delete a rule and its alerts."""
    session.command(lambda p: p.remove_alert(name), Changes(), on_done, on_error)


def import_labels(session: ProjectSession, path: Path, on_done: Callable[[LabelImport], None],
                  on_error: OnError) -> None:  # fmt: skip
    """Store a CSV's labels in the DB thread (all or none; the error names the line)."""
    session.command(lambda p: p.import_feedback(path), Changes(), on_done, on_error)


# -- the request log (the Requests page) ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class RequestsPage:
    """One page of the filtered request log, newest first.

    Attributes:
        selection: the filter it answers.
        before: the id the page starts below (None: the newest).
        records: the page's requests (inputs and outputs kept: the detail shows them).
        matches: how many match, counted up to the cap.
        retention: the project's retention, as text.
        versions: every registered model version (``name:version``), to replay on.
    """

    selection: RequestFilter
    before: int | None
    records: list[RequestRecord]
    matches: int
    retention: str
    versions: list[str]


def read_requests(project: Project, selection: RequestFilter, before: int | None,
                  limit: int) -> RequestsPage:  # fmt: skip
    """DB thread: one keyset page of the log and the (capped) count of matches."""
    log = project.request_log
    versions = [v.ref for v in project.models.list(include_archived=False)]
    return RequestsPage(selection, before, log.page(selection, before, limit),
                        log.count(selection), log.retention().label(), versions)  # fmt: skip


def load_requests(session: ProjectSession, selection: RequestFilter, before: int | None,
                  limit: int, on_done: Callable[[RequestsPage], None], on_error: OnError,
                  owner: Any) -> None:  # fmt: skip
    """Read a page on the DB thread (see :func:`read_requests`)."""
    session.query(lambda p: read_requests(p, selection, before, limit), on_done, on_error,
                  owner)  # fmt: skip


def set_retention(session: ProjectSession, text: str, on_done: Callable[[Any], None],
                  on_error: OnError) -> None:  # fmt: skip
    """Store the retention (refused with a clear error) and apply it, a batch per
    transaction, for at most a second here (a running server's watcher does the rest)."""

    def apply(project: Project) -> tuple[str, int]:
        setting = project.request_log.set_retention(text)
        return setting.label(), project.request_log.apply_retention(budget_s=1.0)

    session.command(apply, Changes(), on_done, on_error)


def start_requests_job(session: ProjectSession, args: dict[str, Any],
                       on_started: Callable[[int], None], on_error: OnError) -> None:  # fmt: skip
    """Queue a ``requests`` job (export or replay) and start its worker; an export path
    that cannot be written is refused before the job's row is written."""
    from pathlib import Path

    from lepton_desktop.core.monitoring.requests import check_export_path

    def check(project: Project) -> None:
        if args["action"] == "export":
            check_export_path(Path(args["out"]))
        elif args["action"] == "replay":
            project.models.get(args["target"])  # NotFoundError names it
        elif args["action"] == "compare":
            project.models.get(f"{args['model']}:{args['candidate']}")
        else:
            project.models.get(args["model"])

    session.jobs.submit("requests", args, on_started, on_error, check=check)


def read_versions(project: Project) -> list[ModelVersion]:
    """DB thread: every unarchived model version (the Model update page's choices)."""
    return project.models.list(include_archived=False)


def load_versions(session: ProjectSession, on_done: Callable[[list[ModelVersion]], None],
                  on_error: OnError, owner: Any) -> None:  # fmt: skip
    """Read the model versions on the DB thread."""
    session.query(read_versions, on_done, on_error, owner)


def promote(session: ProjectSession, model: str, candidate: int,
            on_done: Callable[[dict[str, Any]], None], on_error: OnError) -> None:  # fmt: skip
    """Move ``model``'s champion alias to ``candidate`` (a running server follows it)."""
    session.command(lambda p: p.promote(model, candidate), Changes(models=True), on_done,
                    on_error)  # fmt: skip


def queue_retrain_run(session: ProjectSession, built: dict[str, Any],
                      on_done: Callable[[int], None], on_error: OnError) -> None:  # fmt: skip
    """Queue the training run of a retrain with feedback on the dataset its job built
    (the champion's settings) and start its worker; ``on_done(run id)``."""
    from lepton_desktop.core.training.config import TrainConfig

    def queue(project: Project) -> tuple[int, int]:
        run, job_id = project.runs.queue(built["dataset"], TrainConfig.from_dict(built["options"]))
        return run.id, job_id

    def queued(result: tuple[int, int]) -> None:
        run_id, job_id = result
        session.jobs.start("train", job_id)
        on_done(run_id)

    session.command(queue, Changes(runs=True), queued, on_error)
