"""JobRunner: worker processes for jobs, started and stopped with QProcess.

The job's row in the project file is the source of truth (progress, outcome, error);
the runner only owns the processes. Cancelling is cooperative first (the cancel flag,
which the worker checks between batches and then cleans up after itself), then
``terminate()`` (SIGTERM, which the worker also turns into a clean cancellation),
then ``kill()``; a killed worker's job is marked ``interrupted`` by the session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil
import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QProcess, QProcessEnvironment, QTimer, Signal

from lepton_desktop.core.system import launch

if TYPE_CHECKING:
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.session import ProjectSession
    from lepton_desktop.gui.tasks import OnError

#: Bytes of a worker's output kept for diagnostics.
_OUTPUT_TAIL = 16_384


class JobRunner(QObject):
    """Starts one worker process per job and cancels them on request.

    Args:
        session: the project the jobs belong to.
        grace_ms: after a cancel request, how long the worker may take to stop by itself.
        kill_ms: after ``terminate()``, how long before ``kill()``.
    """

    jobStarted = Signal(int)  # job id
    jobFinished = Signal(int, int)  # job id, exit code (-1: crashed or failed to start)
    allFinished = Signal()

    def __init__(
        self, session: ProjectSession, *, grace_ms: int = 5000, kill_ms: int = 3000
    ) -> None:
        super().__init__(session)
        self._session = session
        self.grace_ms = grace_ms
        self.kill_ms = kill_ms
        self._procs: dict[int, QProcess] = {}
        self._output: dict[int, bytes] = {}
        self._started: set[int] = set()
        self._cancelled: set[int] = set()

    def submit(
        self,
        kind: str,
        args: dict[str, Any],
        on_started: Callable[[int], None] | None = None,
        on_error: OnError | None = None,
        check: Callable[[Project], None] | None = None,
    ) -> None:
        """Create the job's row (on the DB thread), then start its worker process.

        Args:
            kind: ``import`` or ``prep`` (a ``lepton-desktop worker`` kind).
            args: the job's arguments, stored in its row for the worker to read.
            on_started: called with the job id once the process is starting.
            on_error: called if the row cannot be created, or ``check`` refused.
            check: refuses work that cannot succeed before its row is written (on
                the DB thread), so a refused job leaves the project file as it was.
        """

        def create(project: Project) -> int:
            if check is not None:
                check(project)
            return project.create_job(kind, args)

        def created(job_id: int) -> None:
            self.start(kind, job_id)
            if on_started is not None:
                on_started(job_id)

        self._session.query(create, created, on_error)

    def start(self, kind: str, job_id: int) -> None:
        """Start the worker process of an existing, queued job."""
        self._let_go(job_id)
        argv = launch.worker_argv(kind, self._session.path, job_id)
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        prepare_worker(proc)
        proc.readyReadStandardOutput.connect(lambda: self._collect(job_id, proc))
        proc.finished.connect(lambda code, status: self._on_finished(job_id, code, status))
        proc.errorOccurred.connect(lambda error: self._on_error(job_id, error))
        proc.started.connect(lambda: lower_priority(proc.processId()))
        self._procs[job_id] = proc
        self._started.add(job_id)
        self._session.watch_job(job_id)
        proc.start(argv[0], argv[1:])
        self.jobStarted.emit(job_id)

    def cancel(self, job_id: int) -> None:
        """Ask the job to stop; terminate, then kill its process if it does not."""
        self._cancelled.add(job_id)
        self._session.query(lambda p: p.cancel_job(job_id))
        if job_id in self._procs:
            QTimer.singleShot(self.grace_ms, self, lambda: self._terminate(job_id))

    def stop_all(self) -> None:
        """Cancel every job this runner started (``allFinished`` follows)."""
        for job_id in list(self._procs):
            self.cancel(job_id)

    def owns(self, job_id: int) -> bool:
        """True when this runner started the job (its outcome is ours to show)."""
        return job_id in self._started

    def cancel_requested(self, job_id: int) -> bool:
        """True when the user asked this job to stop (through :meth:`cancel`)."""
        return job_id in self._cancelled

    def running_ids(self) -> list[int]:
        """Ids of jobs whose process is still running."""
        return sorted(self._procs)

    def output(self, job_id: int) -> str:
        """The last lines a job's worker printed (for failures with no recorded error)."""
        return self._output.get(job_id, b"").decode("utf-8", "replace")

    def detach(self) -> None:
        """Let go of the processes (the project is closing): each is asked to stop.

        SIGTERM makes a worker cancel cleanly; the process object outlives this runner
        (parented to the application) until it has exited.
        """
        app = QCoreApplication.instance()
        for proc in self._procs.values():
            proc.readyReadStandardOutput.disconnect()
            proc.finished.disconnect()
            proc.errorOccurred.disconnect()
            proc.setParent(app)
            proc.finished.connect(proc.deleteLater)
            proc.terminate()
        self._procs.clear()

    def _let_go(self, job_id: int) -> None:
        """Forget the process of an earlier job with this id, still exiting.

        A job's row is deleted once its outcome was shown (``forget_job``), and SQLite
        gives the next job the same id when that row was the newest. The earlier
        worker may still be exiting then: its ``finished`` must not end the new job
        (it would pop and delete the new job's process, whose end was then never
        reported), so it is disconnected and left to delete itself.
        """
        old = self._procs.pop(job_id, None)
        if old is None:
            return
        old.readyReadStandardOutput.disconnect()
        old.finished.disconnect()
        old.errorOccurred.disconnect()
        old.finished.connect(old.deleteLater)

    def _terminate(self, job_id: int) -> None:
        proc = self._procs.get(job_id)
        if proc is None:
            return
        proc.terminate()
        QTimer.singleShot(self.kill_ms, self, lambda: self._kill(job_id))

    def _kill(self, job_id: int) -> None:
        proc = self._procs.get(job_id)
        if proc is not None:
            proc.kill()

    def _collect(self, job_id: int, proc: QProcess) -> None:
        data = self._output.get(job_id, b"") + bytes(proc.readAllStandardOutput().data())
        self._output[job_id] = data[-_OUTPUT_TAIL:]

    def _on_finished(self, job_id: int, code: int, status: QProcess.ExitStatus) -> None:
        proc = self._procs.pop(job_id, None)
        if proc is None or not (shiboken6.isValid(self) and shiboken6.isValid(proc)):
            return  # the runner is being destroyed with its processes
        proc.deleteLater()
        crashed = status != QProcess.ExitStatus.NormalExit
        self.jobFinished.emit(job_id, -1 if crashed else code)
        if not self._procs:
            self.allFinished.emit()

    def _on_error(self, job_id: int, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart:
            return  # crashes also end in finished(), handled there
        proc = self._procs.pop(job_id, None)
        detail = proc.errorString() if proc is not None else ""
        if proc is not None:
            proc.deleteLater()
        self._output[job_id] = f"the worker could not be started: {detail}".encode()
        self._session.query(lambda p: p.cancel_job(job_id))  # a queued job ends as cancelled
        self.jobFinished.emit(job_id, -1)
        if not self._procs:
            self.allFinished.emit()


def lower_priority(pid: int) -> None:
    """Run a background process below normal priority, so the window stays responsive.

    On a busy machine the scheduler then prefers the GUI; an otherwise idle CPU still
    goes to the worker in full.
    """
    try:
        process = psutil.Process(pid)
        process.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS if sys.platform == "win32" else 10)
    except (psutil.Error, OSError):
        pass  # it already exited, or the OS refused: only a matter of speed


def prepare_worker(process: QProcess) -> None:
    """Give a ``lepton-desktop`` child process its environment and its own folder.

    Never the folder the GUI was started from (see ``core.system.launch``): a worker must
    not find modules that happen to sit there.
    """
    env = QProcessEnvironment()
    for name, value in launch.worker_env().items():
        env.insert(name, value)
    process.setProcessEnvironment(env)
    process.setWorkingDirectory(launch.worker_cwd())
