"""ProjectSession: the GUI's one way into an open project.

The project (its SQLite connection) is opened on, and only ever used from, one DB
executor thread, so every query is serialized (Anki's collection executor). Results
come back to the GUI thread through :class:`~lepton_desktop.gui.tasks.TaskManager`.
A timer polls the job table; when jobs end, :attr:`ProjectSession.changed` carries
:class:`Changes` flags and each tab decides whether it cares (Anki's OpChanges).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from lepton_desktop.core import processes
from lepton_desktop.core.entities import Job
from lepton_desktop.core.errors import LeptonError, NotFoundError
from lepton_desktop.core.project import Project
from lepton_desktop.core.system import project_lock
from lepton_desktop.core.system.project_lock import ProjectLock
from lepton_desktop.gui.jobs import JobRunner
from lepton_desktop.gui.tasks import OnError, TaskManager

T = TypeVar("T")
#: Job kinds whose end changes the dataset list.
DATASET_JOB_KINDS = ("import", "prep")
#: Job kinds whose end changes the runs and the model versions.
TRAINING_JOB_KINDS = ("train",)
#: Job kinds whose end changes tuning studies (their trials are runs too).
TUNING_JOB_KINDS = ("tune",)


@dataclasses.dataclass(frozen=True)
class Changes:
    """What an operation or a finished job changed; screens refresh what they show."""

    datasets: bool = False
    jobs: bool = False
    runs: bool = False
    models: bool = False
    studies: bool = False
    #: The request log's captured inputs or feedback (forgotten, say).
    requests: bool = False

    def __or__(self, other: Changes) -> Changes:
        return Changes(
            *(
                a or b
                for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
            )
        )


@dataclasses.dataclass(frozen=True)
class OpenResult:
    """How a project was opened (for the status bar)."""

    path: Path
    upgraded_from: int | None = None
    backup_path: Path | None = None
    read_only_reason: str | None = None  # who edits the project, when it is not us


class ProjectSession(QObject):
    """An open project, its DB thread, its job poller and its worker processes.

    Args:
        path: the ``.lepton`` file.
        parent: the owning QObject.
        poll_ms: how often active jobs are polled (default :attr:`POLL_MS`).
        recover_ms: how often stale jobs (dead workers) are looked for.
    """

    opened = Signal(object)  # OpenResult
    openFailed = Signal(object)  # the exception
    needsUpgrade = Signal()
    changed = Signal(object)  # Changes
    jobsUpdated = Signal(list)  # active jobs, newest first
    jobEnded = Signal(object)  # a Job that was active (or started here) and is not anymore
    errorOccurred = Signal(object)  # an exception no caller handled
    closed = Signal()

    POLL_MS = 500
    RECOVER_MS = 30_000

    def __init__(
        self,
        path: Path,
        parent: QObject | None = None,
        *,
        poll_ms: int | None = None,
        recover_ms: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.path = Path(path).resolve()
        self.is_open = False
        self.keyring_note: str | None = None  # why a passphrase was not saved, if asked
        #: Set when another app edits the project: this session only looks.
        self.read_only_reason: str | None = None
        self._lock: ProjectLock | None = None  # touched on the DB thread only
        self._db = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lepton-db", initializer=_lower_thread_priority
        )
        self._io = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="lepton-io", initializer=_lower_thread_priority
        )
        self._tasks = TaskManager(self.errorOccurred.emit, self)
        self._project: Project | None = None  # touched on the DB thread only
        self._active: dict[int, Job] = {}
        self._watched: set[int] = set()
        self._exited: set[int] = set()
        self._ended: set[int] = set()  # reported through jobEnded already
        self._poll_pending = False
        self._recover_due = False
        self._closing = False
        self._poll_timer = QTimer(self, interval=poll_ms or self.POLL_MS, timeout=self.poll)
        self._recover_timer = QTimer(
            self, interval=recover_ms or self.RECOVER_MS, timeout=self._mark_recover_due
        )
        self.jobs = JobRunner(self)
        self.jobs.jobFinished.connect(self._on_process_exited)

    # -- opening and closing ---------------------------------------------------------

    def open(
        self,
        *,
        create: bool = False,
        upgrade: bool = False,
        passphrase: str | None = None,
        remember: bool = False,
    ) -> None:
        """Open (or create) the project on the DB thread; emits opened, openFailed or needsUpgrade.

        Args:
            create: create a new, empty project at :attr:`path`.
            upgrade: upgrade an older file (core keeps a backup copy).
            passphrase: an encrypted project's; its key is derived off the GUI thread
                (PBKDF2 takes most of a second) and held for the workers too.
            remember: save the passphrase in the OS keyring as well.
        """
        self._tasks.submit(
            self._db,
            lambda: self._open_on_db_thread(create, upgrade, passphrase, remember),
            self._on_open_done,
            self.openFailed.emit,
        )

    def _open_on_db_thread(
        self, create: bool, upgrade: bool, passphrase: str | None, remember: bool
    ) -> OpenResult | None:
        if passphrase is None and Project.needs_passphrase(self.path):
            # The OS keyring may hold it (saved earlier): looked up here, off the GUI
            # thread (keyring loads its backends slowly). None: openFailed asks for it.
            passphrase = Project.saved_passphrase(self.path)
        if passphrase is not None:
            self.keyring_note = Project.unlock(self.path, passphrase, remember=remember)
        if create:
            # Closing checkpoints the WAL, so the new file's header (application id,
            # schema version) is on disk before a worker process reads it.
            Project.create(self.path).close()
        elif not upgrade and Project.needs_upgrade(self.path):
            return None  # the user is asked first; the file is not touched
        try:
            return self._open_locked(upgrade)
        except BaseException:
            self._release_lock()
            raise

    def _open_locked(self, upgrade: bool) -> OpenResult:
        # One app edits a project at a time (see core/system/project_lock.py); a
        # second one opens it read-only and says who has it.
        try:
            self._lock = ProjectLock.acquire(self.path)
        except OSError:  # a read-only folder: nobody can take the lock, go on as before
            self._lock = None
        else:
            if self._lock is None:
                reason = project_lock.holder(self.path)
                if upgrade:
                    raise LeptonError(f"{self.path.name} is open in another Lepton Desktop "
                                      f"({reason}); close it there to upgrade it")  # fmt: skip
                self._project = Project.open(self.path, read_only=True)
                return OpenResult(self._project.path, read_only_reason=reason)
        if upgrade:
            with Project.open(self.path, upgrade=True) as upgraded:  # core keeps a backup
                result = OpenResult(upgraded.path, upgraded.upgraded_from, upgraded.backup_path)
            self._project = Project.open(self.path)  # (the same header reason as above)
            return result
        self._project = Project.open(self.path)  # recovers stale jobs
        return OpenResult(self._project.path)

    def _on_open_done(self, result: OpenResult | None) -> None:
        if result is None:
            self.needsUpgrade.emit()
            return
        self.read_only_reason = result.read_only_reason
        self.is_open = True
        self._poll_timer.start()
        self._recover_timer.start()
        self.opened.emit(result)
        self.poll()

    def close(self) -> None:
        """Stop polling, close the project on its thread and drop pending results."""
        if self._closing:
            return
        self._closing = True
        self._poll_timer.stop()
        self._recover_timer.stop()
        self.jobs.detach()
        self._tasks.close()
        self._db.submit(self._close_on_db_thread)
        self._db.shutdown(wait=False)
        self._io.shutdown(wait=False, cancel_futures=True)
        self.is_open = False
        self.closed.emit()

    def _close_on_db_thread(self) -> None:
        if self._project is not None:
            self._project.close()
            self._project = None
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- running work ----------------------------------------------------------------

    def query(
        self,
        fn: Callable[[Project], T],
        on_done: Callable[[T], None] | None = None,
        on_error: OnError | None = None,
        owner: QObject | None = None,
    ) -> Future[None]:
        """Run ``fn(project)`` on the DB thread; ``on_done(result)`` runs on the GUI thread.

        Args:
            fn: reads (or writes) through the Project; it must not touch widgets.
            on_done: receives the result.
            on_error: receives the exception (default: :attr:`errorOccurred`).
            owner: skip the callbacks if this QObject is deleted meanwhile.
        """
        return self._tasks.submit(self._db, lambda: self._call(fn), on_done, on_error, owner)

    def _call(self, fn: Callable[[Project], T]) -> T:
        # On the DB thread: a failure that comes from a damaged file is told as such
        # (the file is checked read-only), not as SQLite's or json's words.
        try:
            return fn(self._require())
        except (LeptonError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if self.read_only_reason is not None and "readonly" in str(exc).lower():
                raise LeptonError(
                    f"{self.path.name} is open read-only here: another Lepton Desktop edits "
                    f"it ({self.read_only_reason}). Close it there to change it here."
                ) from exc
            damage = Project.damage_of(self.path, exc)
            if damage is None:
                raise
            raise damage from exc

    def command(
        self,
        fn: Callable[[Project], T],
        changes: Changes,
        on_done: Callable[[T], None] | None = None,
        on_error: OnError | None = None,
    ) -> Future[None]:
        """Like :meth:`query` for a write: emits :attr:`changed` with ``changes`` on success."""

        def done(result: T) -> None:
            self.changed.emit(changes)
            if on_done is not None:
                on_done(result)

        return self.query(fn, done, on_error)

    def background(
        self,
        fn: Callable[[], T],
        on_done: Callable[[T], None] | None = None,
        on_error: OnError | None = None,
        owner: QObject | None = None,
    ) -> Future[None]:
        """Run ``fn()`` (file reading, image decoding: no DB) on the background pool."""
        return self._tasks.submit(self._io, fn, on_done, on_error, owner)

    def _require(self) -> Project:
        if self._project is None:
            raise LeptonError("no project is open")
        return self._project

    # -- jobs --------------------------------------------------------------------------

    @property
    def active_jobs(self) -> list[Job]:
        """Queued and running jobs as of the last poll, newest first."""
        return sorted(self._active.values(), key=lambda j: j.id, reverse=True)

    def watch_job(self, job_id: int) -> None:
        """Report this job's end through :attr:`jobEnded`, however fast it finishes."""
        self._watched.add(job_id)
        self.poll()

    def poll(self) -> None:
        """Ask for active jobs and the rows of jobs that may just have ended."""
        if self._poll_pending or not self.is_open or self._closing:
            return
        self._poll_pending = True
        known = set(self._active) | self._watched
        # A worker that exited without recording an outcome (killed, crashed) leaves
        # its job "running"; recovering now marks it instead of in 30 s.
        exited = self._exited & known
        # A read-only view never recovers jobs: the app that edits the project does.
        recover = (self._recover_due or bool(exited)) and self.read_only_reason is None
        self._recover_due = False
        self.query(
            lambda p: _poll_jobs(p, known, exited, recover), self._on_polled, self._on_poll_failed
        )

    def _on_polled(self, result: tuple[list[Job], list[Job]]) -> None:
        self._poll_pending = False
        active, ended = result
        self._active = {j.id: j for j in active}
        for job in ended:
            self._watched.discard(job.id)
            self._exited.discard(job.id)
            self._ended.add(job.id)
        self.jobsUpdated.emit(active)
        for job in ended:
            self.jobEnded.emit(job)
        if ended:
            datasets = any(j.kind in DATASET_JOB_KINDS for j in ended)
            studies = any(j.kind in TUNING_JOB_KINDS for j in ended)
            runs = studies or any(j.kind in TRAINING_JOB_KINDS for j in ended)
            self.changed.emit(
                Changes(datasets=datasets, jobs=True, runs=runs, models=runs, studies=studies)
            )

    def _on_poll_failed(self, exc: BaseException) -> None:
        # A busy file or a transient error: the next tick tries again; never a dialog
        # every 500 ms.
        self._poll_pending = False
        sys.stderr.write(f"lepton-desktop: job poll failed: {exc}\n")

    def _on_process_exited(self, job_id: int, exit_code: int) -> None:
        if job_id in self._ended:
            # Its outcome was already seen (the row changes before the exit). A process
            # exits once, so the id is dropped: the set does not grow with every job.
            self._ended.discard(job_id)
            return
        self._exited.add(job_id)
        self._watched.add(job_id)
        self.poll()

    def _mark_recover_due(self) -> None:
        self._recover_due = True


def _lower_thread_priority() -> None:
    # A long query (a histogram over a million rows) must not take CPU time from the
    # GUI thread on a small machine.
    processes.lower_thread_priority(5)


def _poll_jobs(
    project: Project, known: set[int], exited: set[int], recover: bool
) -> tuple[list[Job], list[Job]]:
    """DB thread: active jobs, and the rows of known jobs that are no longer active."""
    if recover:
        project.recover_stale_jobs()
    active = project.jobs(active_only=True)
    never_started = [j.id for j in active if j.id in exited and j.status == "queued"]
    for job_id in never_started:
        # Its worker exited before claiming it (it could not start or open the file):
        # nobody will run it, so end it (the runner keeps the worker's output).
        project.cancel_job(job_id)
    if never_started:
        active = project.jobs(active_only=True)
    active_ids = {j.id for j in active}
    ended: list[Job] = []
    for job_id in sorted(known - active_ids):
        try:
            ended.append(project.job(job_id))
        except NotFoundError:
            continue  # forgotten meanwhile (by another window or the CLI)
    return active, ended


def _describe_requests_job(args: dict[str, Any]) -> str:
    action = args.get("action")
    if action == "export":
        return f"Exporting requests to {Path(str(args.get('out', ''))).name}"
    if action == "compare":
        return f"Comparing {args.get('model', '')}:{args.get('candidate', '')}"
    if action == "feedback_dataset":
        return f"Adding feedback to {args.get('model', '')}'s data"
    return f"Replaying requests on {args.get('target', '')}"


def describe_job(job: Job) -> str:
    """A short label for a job ("Importing iris", "Preparing iris:1")."""
    args: dict[str, Any] = job.args
    if job.kind == "import":
        return f"Importing {args.get('name') or Path(str(args.get('source', ''))).name}"
    if job.kind == "prep":
        return f"Preparing {args.get('dataset', '')}"
    if job.kind == "train":
        return f"Training run {args.get('run_id', '')}"
    if job.kind == "tune":
        return f"Tuning {args.get('study', '')}"
    if job.kind == "serve":
        return f"Serving (deployment {args.get('deployment_id', '')})"
    if job.kind == "export":
        return f"Exporting {args.get('model', '')} as {args.get('format', '')}"
    if job.kind == "requests":
        return _describe_requests_job(args)
    return f"{job.kind.capitalize()} job {job.id}"
