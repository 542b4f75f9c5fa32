"""Reads and operations of the Serving tab.

The reads run on the session's DB thread and return plain records (no widgets);
the ops start and stop the ``serve`` worker, move aliases and run exports, and call
back on the GUI thread. The tab never talks HTTP to its own server: what the server
does reaches the tab through the project file (the deployment row and the request
log, read incrementally: ``id > last_seen``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import (
    DatasetVersion,
    Deployment,
    ModelVersion,
    RequestRecord,
)
from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.gui.session import Changes, ProjectSession

if TYPE_CHECKING:
    from lepton_desktop.core.progress import Reporter
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.tasks import OnError

#: Log rows read per poll at most (a long history is caught up over a few ticks).
READ_LIMIT = 2000
#: Deployments offered by the picker (the newest; older ones stay in the file).
PICKER_LIMIT = 200
#: Search results shown at most (the newest that match).
SEARCH_LIMIT = 1000
#: Raw rows looked through for an example with every input present.
SAMPLE_ROWS_SCANNED = 100
MODELS = Changes(models=True)
JOBS = Changes(jobs=True)
REQUESTS = Changes(requests=True)


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """What the Start button asks for (``ServingManager.queue``'s arguments)."""

    models: list[str]
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    cors: list[str] = dataclasses.field(default_factory=list)
    capture_inputs: bool = True
    max_batch: int = 32
    max_wait_ms: float = 2.0


@dataclasses.dataclass(frozen=True)
class ServingUpdate:
    """One poll's news.

    Attributes:
        deployment: the server's deployment (the active one, else the one followed
            until now, else the newest), or None: what the panel shows.
        records: the viewed deployment's log rows newer than the cursor, oldest first.
        total: how many requests the viewed deployment has logged in all.
        job_error: the error of the server's job when the job ended without the
            deployment recording an outcome (the worker could not start, was killed).
        viewed: the deployment whose log is shown: the one picked, else ``deployment``.
        deployments: the newest deployments (newest first), for the picker; None when
            unchanged since the cursor's ``listed`` (read again only then: the list is
            long-lived, and reading it costs milliseconds).
        listed: what the list depends on (the server's deployment, its status and
            address), for the next cursor.
    """

    deployment: Deployment | None
    records: list[RequestRecord]
    total: int
    job_error: str | None = None
    viewed: Deployment | None = None
    deployments: list[Deployment] | None = None
    listed: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True)
class LogCursor:
    """Where the poller stands: what it follows, what it shows, and how far it read.

    Attributes:
        followed_id: the server's deployment at the last poll (None: none yet).
        pinned_id: the deployment the user picked to look at (None: the server's).
        log_id: the deployment whose rows were read up to ``after_id``.
        after_id: the id of the last log row read for ``log_id``.
        listed: the ``listed`` of the update that last carried the deployments (None:
            read them).
    """

    followed_id: int | None = None
    pinned_id: int | None = None
    log_id: int | None = None
    after_id: int = 0
    listed: tuple[Any, ...] | None = None


@dataclasses.dataclass(frozen=True)
class PersonalData:
    """A model's personal data in the request log.

    Attributes:
        model: the model's name.
        columns: column -> kind of personal data found in its training data (what a
            server redacts from the captured inputs unless ``capture`` is on).
        capture: the user opted in to keeping those values in clear.
    """

    model: str
    columns: dict[str, str]
    capture: bool


@dataclasses.dataclass(frozen=True)
class SnippetSample:
    """What the example snippets send: a model's raw inputs and one real record."""

    model: str
    version: int
    inputs: list[dict[str, str]]
    record: dict[str, Any]
    outputs: tuple[str, ...] = ("value",)


# -- reads (DB thread) ------------------------------------------------------------------


def read_update(project: Project, cursor: LogCursor, limit: int = READ_LIMIT) -> ServingUpdate:
    """DB thread: the server's deployment, the viewed one's log rows after the cursor,
    and the deployments to pick from.

    Args:
        project: the open project.
        cursor: the poller's position. A newer active deployment (started elsewhere)
            replaces the followed one; a picked one that was deleted is dropped.
        limit: at most this many rows.
    """
    serving = project.serving
    deployment = serving.active() or _current_or_newest(project, cursor.followed_id)
    viewed = _pinned(project, cursor.pinned_id) or deployment
    # A new deployment is the server's from its start, and older ones no longer change:
    # the list is read again when the server's deployment, status or address moves.
    listed = (deployment.id, deployment.status, deployment.url) if deployment else ()
    unchanged = cursor.listed == listed
    deployments = None if unchanged else serving.list(PICKER_LIMIT)
    if deployment is None or viewed is None:
        return ServingUpdate(None, [], 0, deployments=deployments, listed=listed)
    after = cursor.after_id if viewed.id == cursor.log_id else 0
    records = serving.requests_since(viewed.id, after, limit)
    total = serving.request_count(viewed.id)
    job_error = _job_error(project, deployment)
    return ServingUpdate(
        deployment, records, total, job_error, viewed, deployments, listed
    )


def _pinned(project: Project, deployment_id: int | None) -> Deployment | None:
    if deployment_id is None:
        return None
    try:
        return project.serving.get(deployment_id)
    except NotFoundError:
        return None  # deleted meanwhile: back to the server's


def _current_or_newest(project: Project, deployment_id: int | None) -> Deployment | None:
    if deployment_id is not None:
        try:
            return project.serving.get(deployment_id)
        except NotFoundError:
            pass  # deleted meanwhile
    newest = project.serving.list(1)
    return newest[0] if newest else None


def _job_error(project: Project, deployment: Deployment) -> str | None:
    """The job's error when it ended while the deployment still looks active."""
    if not deployment.active or deployment.job_id is None:
        return None
    try:
        job = project.job(deployment.job_id)
    except NotFoundError:
        return "the server's job is gone"
    if job.active:
        return None
    return job.error or f"the server's worker ended ({job.status})"


def read_models(project: Project) -> list[ModelVersion]:
    """DB thread: the registered, unarchived model versions (by name, then number)."""
    return project.models.list(include_archived=False)


def read_personal_data(project: Project) -> list[PersonalData]:
    """DB thread: every model's personal-data columns and capture setting, by name."""
    capturing = set(project.capture_pii_models())
    found = project.personal_data_of_models()
    return [PersonalData(name, found[name], name in capturing) for name in sorted(found)]


def read_snippet_sample(project: Project, ref: str) -> SnippetSample:
    """DB thread: the raw inputs of version ``ref`` and a raw row of its source dataset."""
    version = project.models.get(ref)
    inputs = raw_inputs(version)
    record = _without_personal_data(
        _sample_record(project, version), project.personal_data_of_models().get(version.name, {})
    )
    # The server's V2 outputs: label and probabilities for classes, else value.
    outputs = ("label", "probabilities") if version.params.get("classes") else ("value",)
    return SnippetSample(version.name, version.version, inputs, record, outputs)


def raw_inputs(version: ModelVersion) -> list[dict[str, str]]:
    """What a client sends to this version (as the server's Predictor reads it)."""
    steps = {s.get("step"): s for s in version.pipeline}
    if "image" in steps:
        return [{"name": "image", "dtype": "image"}]
    if "window" in steps:
        return [{"name": str(steps["window"].get("column", "value")), "dtype": "series"}]
    return [dict(i) for i in version.signature.get("inputs", [])]


#: What a snippet sends in place of a personal-data column's real value (reserved or
#: documented example values), so a copied snippet never carries a person's data.
EXAMPLE_PERSONAL_DATA = {
    "email": "someone@example.com",
    "phone": "+1 202 555 0143",
    "card": "4111 1111 1111 1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "national_id": "078-05-1120",
    "ip": "192.0.2.1",
    "date_of_birth": "1970-01-01",
    "name": "Jane Doe",
}


def _without_personal_data(record: dict[str, Any], found: dict[str, str]) -> dict[str, Any]:
    """``record`` with each personal-data column (column -> kind) set to an example."""
    return {
        name: EXAMPLE_PERSONAL_DATA.get(found[name], "<personal data>") if name in found else value
        for name, value in record.items()
    }


def _sample_record(project: Project, version: ModelVersion) -> dict[str, Any]:
    """A record to send: a row of the *raw* dataset, so a pasted snippet gets an answer.

    The model's own dataset version may be a prepared one (scaled, filled, one-hot
    encoded): the server applies that preparation to what it receives, so the example
    must carry the values the preparation started from, those of the imported version
    at the root of the lineage.
    """
    inputs = raw_inputs(version)
    dataset = _source_dataset(project, version)
    if dataset is None or dataset.n_rows == 0:
        return {i["name"]: _placeholder(i["dtype"], version) for i in inputs}
    if inputs and inputs[0]["dtype"] == "series":
        window = int(next(s for s in version.pipeline if s.get("step") == "window")["window"])
        column = inputs[0]["name"]
        position = [c.name for c in dataset.columns].index(column)
        rows = project.rows(dataset, max(0, dataset.n_rows - window), window)
        return {column: [row[position] for row in rows]}
    if inputs and inputs[0]["dtype"] == "image":
        return {"image": "<base64 of a PNG or JPEG>"}
    names = [c.name for c in dataset.columns]
    records = [
        {i["name"]: values.get(i["name"]) for i in inputs}
        for values in (dict(zip(names, row, strict=False))
                       for row in project.rows(dataset, 0, SAMPLE_ROWS_SCANNED))
    ]  # fmt: skip
    # A row with every input present: an empty cell would be answered with the fitted
    # fill, or refused by a model prepared with "drop", and teaches nothing either way.
    return next((r for r in records if _complete(r)), records[0])


def _complete(record: dict[str, Any]) -> bool:
    return all(v is not None and v == v and v != "" for v in record.values())  # v == v: not NaN


def _source_dataset(project: Project, version: ModelVersion) -> DatasetVersion | None:
    """The imported (raw) version the model's dataset version was prepared from."""
    if version.dataset_version_id is None:
        return None
    try:
        dataset = project.dataset_by_id(version.dataset_version_id)
        seen = {dataset.id}
        while dataset.parent_id is not None and dataset.parent_id not in seen:
            dataset = project.dataset_by_id(dataset.parent_id)
            seen.add(dataset.id)
    except NotFoundError:
        return None  # deleted meanwhile (a deleted parent is unlinked, never dangling)
    return dataset


def _placeholder(dtype: str, version: ModelVersion) -> Any:
    if dtype == "series":
        steps = [s for s in version.pipeline if s.get("step") == "window"]
        return [0.0] * int(steps[0]["window"] if steps else 1)
    return 0.0 if dtype == "numeric" else ""


# -- ops (GUI thread) --------------------------------------------------------------------


def poll(
    session: ProjectSession,
    cursor: LogCursor,
    on_done: Callable[[ServingUpdate], None],
    on_error: OnError,
    owner: Any,
) -> None:
    """Read the deployments and the viewed log's rows after the cursor (see
    :func:`read_update`)."""
    session.query(lambda p: read_update(p, cursor), on_done, on_error, owner)


def search_log(
    session: ProjectSession,
    deployment_id: int,
    text: str,
    on_done: Callable[[list[RequestRecord]], None],
    on_error: OnError,
    owner: Any,
) -> None:
    """Find the deployment's logged requests holding every word of ``text`` (the newest
    :data:`SEARCH_LIMIT`, oldest first), in SQL through the full-text index."""

    def search(project: Project) -> list[RequestRecord]:
        found = project.serving.list_requests(
            search=text, deployment_id=deployment_id, limit=SEARCH_LIMIT, plain_words=True
        )
        return found[::-1]

    session.query(search, on_done, on_error, owner)


def load_models(
    session: ProjectSession, on_done: Callable[[list[ModelVersion]], None], owner: Any
) -> None:
    """Read the model versions that can be served."""
    session.query(read_models, on_done, owner=owner)


def load_snippet_sample(
    session: ProjectSession, ref: str, on_done: Callable[[SnippetSample], None], owner: Any
) -> None:
    """Read what the example snippets of ``ref`` send (errors leave the snippets as they are)."""
    session.query(lambda p: read_snippet_sample(p, ref), on_done, lambda exc: None, owner)


def load_request(
    session: ProjectSession,
    request_id: str,
    on_done: Callable[[RequestRecord | None], None],
    owner: Any,
) -> None:
    """Read one logged request with its captured inputs and outputs."""
    session.query(lambda p: p.serving.find_request(request_id), on_done, owner=owner)


def forget_request(
    session: ProjectSession,
    request_id: str,
    on_done: Callable[[dict[str, int]], None],
    on_error: OnError,
) -> None:
    """Clear a request's captured inputs and outputs and delete its feedback (DB thread)."""
    session.query(lambda p: p.forget_requests(request_id=request_id), on_done, on_error)


def load_personal_data(
    session: ProjectSession, on_done: Callable[[list[PersonalData]], None], owner: Any
) -> None:
    """Read each model's personal-data columns and whether the log keeps them."""
    session.query(read_personal_data, on_done, owner=owner)


def set_capture_pii(
    session: ProjectSession,
    model: str,
    capture: bool,
    on_done: Callable[[None], None],
    on_error: OnError,
) -> None:
    """Store whether ``model``'s captured inputs keep their personal data (a running
    server follows the setting within a second, as it follows an alias)."""
    session.command(lambda p: p.capture_pii(model, capture), MODELS, on_done, on_error)


def load_logged_models(
    session: ProjectSession, on_done: Callable[[list[str]], None], owner: Any
) -> None:
    """Read the names of the models that answered logged requests."""
    session.query(lambda p: sorted({name for name, _ in p.served_models()}), on_done, owner=owner)


def forget_range(
    session: ProjectSession,
    since: float,
    until: float,
    model: str | None,
    reporter: Reporter,
    on_done: Callable[[dict[str, Any]], None],
    on_error: OnError,
) -> None:
    """Forget every request logged in ``[since, until)`` (of ``model``) on the DB thread;
    ``reporter`` hears each transaction's progress (from that thread)."""
    session.command(
        lambda p: p.forget_requests(since=since, until=until, model=model, reporter=reporter),
        REQUESTS, on_done, on_error,
    )  # fmt: skip


def new_token(session: ProjectSession, on_done: Callable[[str], None], owner: Any) -> None:
    """Generate a fresh bearer token."""
    session.query(lambda p: p.serving.new_token(), on_done, owner=owner)


def start_server(
    session: ProjectSession,
    options: ServerOptions,
    on_done: Callable[[Deployment], None],
    on_error: OnError,
) -> None:
    """Validate and record a deployment (core refuses bad options), then start its worker."""

    def queue(project: Project) -> tuple[Deployment, int]:
        return project.serving.queue(
            options.models, host=options.host, port=options.port, token=options.token,
            cors=list(options.cors), capture_inputs=options.capture_inputs,
            max_batch=options.max_batch, max_wait_ms=options.max_wait_ms,
        )  # fmt: skip

    def queued(result: tuple[Deployment, int]) -> None:
        deployment, job_id = result
        session.jobs.start("serve", job_id)
        on_done(deployment)

    session.command(queue, JOBS, queued, on_error)


def stop_server(session: ProjectSession, deployment: Deployment, on_error: OnError) -> None:
    """Stop the server: through its worker's runner when this window started it (cancel
    flag, then terminate, then kill), else through its job's cancel flag."""
    job_id = deployment.job_id
    if job_id is not None and job_id in session.jobs.running_ids():
        session.jobs.cancel(job_id)
        return
    session.command(lambda p: p.serving.stop(deployment.id), JOBS, on_error=on_error)


def set_alias(
    session: ProjectSession, ref: str, on_done: Callable[[ModelVersion], None], on_error: OnError
) -> None:
    """Point the model's ``champion`` alias at ``ref`` (the server follows by itself)."""
    session.command(lambda p: p.models.set_alias(ref, "champion"), MODELS, on_done, on_error)


def rollback_target(versions: Sequence[ModelVersion], name: str) -> ModelVersion | None:
    """The version a roll back of ``name``'s champion moves to: the newest one older than
    the champion (None when there is no champion, or it is the oldest)."""
    mine = sorted((v for v in versions if v.name == name), key=lambda v: v.version)
    champion = next((v for v in mine if "champion" in v.aliases), None)
    if champion is None:
        return None
    older = [v for v in mine if v.version < champion.version]
    return older[-1] if older else None


def start_export(
    session: ProjectSession,
    ref: str,
    fmt: str,
    out: str,
    on_started: Callable[[int], None],
    on_error: OnError,
) -> None:
    """Queue an ``export`` job of ``ref`` to ``out`` in format ``fmt`` and start its worker."""
    session.jobs.submit("export", {"model": ref, "format": fmt, "out": out}, on_started, on_error)
