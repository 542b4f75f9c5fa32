"""Opening projects: create, open, upgrade after asking, the demo, and errors.

Every step that touches a file runs off the GUI thread: the project is opened on the
new session's DB thread, and the demo project is built by a ``lepton-desktop demo``
process. A file that cannot be opened is reported and left untouched (core reads
only its header before refusing it).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from lepton_desktop import paths
from lepton_desktop.core.errors import PassphraseNeededError, WrongPassphraseError
from lepton_desktop.core.system import launch
from lepton_desktop.gui.dialogs import ask, show_error, show_exception
from lepton_desktop.gui.encryption import ask_passphrase
from lepton_desktop.gui.jobs import prepare_worker
from lepton_desktop.gui.session import OpenResult, ProjectSession


class ProjectOpener(QObject):
    """Turns a path into an open :class:`ProjectSession`, asking and reporting on the way.

    Args:
        window: parent of the dialogs, and of the sessions until they are handed over.
    """

    sessionOpened = Signal(object, object)  # ProjectSession, OpenResult
    failed = Signal(object)  # the path that could not be opened

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self.demo_process: QProcess | None = None

    def open(
        self, path: Path, passphrase: str | None = None, remember: bool = False
    ) -> ProjectSession:
        """Open an existing project (asks before upgrading an older one).

        An encrypted project whose key this process does not hold, and whose
        passphrase the OS keyring does not keep, fails to open with
        ``PassphraseNeededError``: the passphrase is asked then, and it opens again.
        """
        session = ProjectSession(Path(path), self._window)
        return self._start(session, passphrase=passphrase, remember=remember)

    def ask_passphrase(self, path: Path, error: str = "") -> None:
        """Ask an encrypted project's passphrase, then open it with it."""
        ask_passphrase(
            self._window, path, lambda text, remember: self.open(path, text, remember),
            error=error,
        )

    def create(self, path: Path) -> ProjectSession:
        """Create a new, empty project at ``path`` and open it."""
        return self._start(ProjectSession(Path(path), self._window), create=True)

    def open_demo(self) -> None:
        """Open the demo project, creating it first (in a process) if needed."""
        path = paths.demo_project_path()
        if path.exists():
            self.open(path)
        elif self.demo_process is None:
            self._create_demo(path)

    def _start(
        self, session: ProjectSession, create: bool = False, passphrase: str | None = None,
        remember: bool = False,
    ) -> ProjectSession:
        session.opened.connect(lambda result: self._on_opened(session, result))
        session.openFailed.connect(lambda exc: self._on_failed(session, exc))
        session.needsUpgrade.connect(lambda: self._ask_upgrade(session))
        session.open(create=create, passphrase=passphrase, remember=remember)
        return session

    def _on_opened(self, session: ProjectSession, result: OpenResult) -> None:
        self.sessionOpened.emit(session, result)

    def _on_failed(self, session: ProjectSession, exc: BaseException) -> None:
        self.discard(session)
        if isinstance(exc, WrongPassphraseError):  # asked again, saying why
            self.ask_passphrase(session.path, "That passphrase does not open the project.")
            return
        if isinstance(exc, PassphraseNeededError):
            self.ask_passphrase(session.path)
            return
        show_exception(self._window, "Cannot Open Project", exc)
        self.failed.emit(session.path)

    def _ask_upgrade(self, session: ProjectSession) -> None:
        text = (f"“{session.path.name}” was made by an older version of Lepton Desktop. "
                "Upgrade it to open it here? A backup copy of the file is kept next to it; "
                "older versions of the app cannot open the upgraded file.")
        ask(self._window, "Upgrade Project?", text, "Upgrade",
            lambda: session.open(upgrade=True), lambda: self.discard(session))

    @staticmethod
    def discard(session: ProjectSession) -> None:
        """Close a session that will not be used."""
        session.close()
        session.deleteLater()

    # -- the demo ------------------------------------------------------------------------

    def _create_demo(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        progress = QProgressDialog("Creating the demo project from the sample data…", "Cancel",
                                   0, 0, self._window)
        progress.setWindowTitle("Lepton Desktop")
        progress.setMinimumDuration(0)
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        prepare_worker(process)
        process.finished.connect(lambda code, status: self._on_demo_done(path, progress, code))
        process.errorOccurred.connect(
            lambda error: self._on_demo_done(path, progress, -1)
            if error == QProcess.ProcessError.FailedToStart else None
        )
        progress.canceled.connect(process.kill)
        argv = [*launch.cli_argv(), "demo", str(path)]
        self.demo_process = process
        process.start(argv[0], argv[1:])
        progress.open()

    def _on_demo_done(self, path: Path, progress: QProgressDialog, code: int) -> None:
        process, self.demo_process = self.demo_process, None
        if process is None:
            return
        output = bytes(process.readAll().data()).decode("utf-8", "replace").strip()
        cancelled = progress.wasCanceled()
        progress.reset()
        progress.deleteLater()
        process.deleteLater()
        if code == 0 and path.exists():
            self.open(path)
            return
        for leftover in (path, path.with_name(path.name + "-wal"),
                         path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)  # a half-built demo must not be found next time
        if not cancelled:
            show_error(self._window, "Cannot Create the Demo Project",
                       output.splitlines()[-1] if output else "the demo command failed",
                       output)
