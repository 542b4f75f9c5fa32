"""The main window: a thin shell that assembles the tabs, menus and status bar.

Opening projects lives in ``opening.py``, the work of each tab in its feature's
package (``datasets/``, ``training/``, ``tuning/``, ``serving/``); the window wires
them together, remembers recent files and its layout, and routes drops.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QPaintEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.datasets.formats import TABULAR_SUFFIXES
from lepton_desktop.core.project import Project
from lepton_desktop.gui import ops
from lepton_desktop.gui.dialogs import ask, show_error, show_exception
from lepton_desktop.gui.encryption import Converter, ask_passphrase
from lepton_desktop.gui.help import HelpMenu
from lepton_desktop.gui.icons import app_icon
from lepton_desktop.gui.opening import ProjectOpener
from lepton_desktop.gui.session import OpenResult, ProjectSession
from lepton_desktop.gui.settings import AppSettings, fill_recent_menu
from lepton_desktop.gui.sharing import save_copy_for_sharing
from lepton_desktop.gui.start_page import StartPage
from lepton_desktop.gui.theme import ThemeManager, build_theme_menu
from lepton_desktop.gui.widgets.banner import MessageBanner
from lepton_desktop.gui.widgets.job_widgets import JobStatus

if TYPE_CHECKING:
    from lepton_desktop.gui.workspace import Workspace

PROJECT_FILTER = "Lepton projects (*.lepton);;All files (*)"
DATA_SUFFIXES = (*TABULAR_SUFFIXES,)


def _tab(name: str) -> property:
    return property(lambda window: getattr(window.tabs, name), doc=f"The {name[:-4]} tab.")


class MainWindow(QMainWindow):
    """The one window: the start page, or the open project's tabs.

    Args:
        settings: where recent files, the theme and the layout are remembered.
        lazy_tabs: build the project's tabs just after the first paint instead of now
            (the app's windows: a faster first paint; see ``workspace.py``).
    """

    def __init__(self, settings: AppSettings, *, lazy_tabs: bool = False) -> None:
        super().__init__()
        self.settings = settings
        self.session: ProjectSession | None = None
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.theme = ThemeManager(QApplication.instance(), settings, self)  # type: ignore[arg-type]
        self.opener = ProjectOpener(self)
        self.converter = Converter(self)
        self.converter.finished.connect(self._on_converted)
        self.opener.sessionOpened.connect(self._on_session_opened)
        self.opener.failed.connect(settings.remove_recent)
        self.start_page = StartPage(self)
        self._workspace: Workspace | None = None  # built when first needed (see workspace.py)
        self._workspace_planned, self._lazy_tabs = False, lazy_tabs
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.start_page)
        self.read_only_banner = MessageBanner(self)  # another app edits the project
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.read_only_banner)
        layout.addWidget(self.stack)
        self.setCentralWidget(central)
        self._build_menus()
        self._build_status_bar()
        self._connect_start_page()
        self._show_project(None)
        if not settings.restore_window(self):
            self.resize(1200, 780)
        if not lazy_tabs:
            self.tabs  # noqa: B018 - builds them

    # -- assembly ------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._add(file_menu, "&New Project…", "Ctrl+N", self.new_project)
        self.open_action = self._add(file_menu, "&Open Project…", "Ctrl+O", self.open_dialog)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(
            lambda: fill_recent_menu(self.recent_menu, self.settings, self.open_path)
        )
        self.demo_action = self._add(file_menu, "Open &Demo", None, self.open_demo)
        file_menu.addSeparator()
        self.share_action = self._add(
            file_menu, "Save a Copy for &Sharing…", None, self.save_copy_for_sharing
        )
        self.close_action = self._add(file_menu, "&Close Project", "Ctrl+W", self.close_project)
        file_menu.addSeparator()
        self.encrypt_action = self._add(file_menu, "&Encrypt Project…", None, self.encrypt_project)
        self.decrypt_action = self._add(file_menu, "&Decrypt Project…", None, self.decrypt_project)
        file_menu.addSeparator()
        self.quit_action = self._add(file_menu, "&Quit", "Ctrl+Q", self.close)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.dataset_menu = self.menuBar().addMenu("&Dataset")
        view_menu = self.menuBar().addMenu("&View")
        self.theme_actions = build_theme_menu(view_menu.addMenu("&Theme"), self.theme)
        self.help = HelpMenu(self, self.menuBar().addMenu("&Help"))
        self.about_action = self.help.about_action

    def _add(self, menu: QMenu, text: str, key: str | None, slot: object) -> QAction:
        # Explicit keys: the platform's standard ones vary (Close is Ctrl+F4 on some);
        # on macOS Qt maps Ctrl to Cmd.
        action = menu.addAction(text)
        if key is not None:
            action.setShortcut(QKeySequence(key))
        action.triggered.connect(lambda: slot())  # type: ignore[operator]
        return action

    def _build_status_bar(self) -> None:
        self.path_label = QLabel(self)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.job_status = JobStatus(self)
        self.job_status.cancelRequested.connect(self._on_cancel_requested)
        self.statusBar().addWidget(self.path_label, 1)
        self.statusBar().addPermanentWidget(self.job_status)

    def _connect_start_page(self) -> None:
        self.start_page.newRequested.connect(self.new_project)
        self.start_page.openRequested.connect(self.open_dialog)
        self.start_page.demoRequested.connect(self.open_demo)
        self.start_page.recentActivated.connect(self.open_path)

    @property
    def tabs(self) -> Workspace:
        """The project's tabs (built on first use: they take most of the start-up time)."""
        if self._workspace is None:
            from lepton_desktop.gui.workspace import Workspace

            self._workspace = Workspace(self, warm_up_now=not self._lazy_tabs)
            self.stack.addWidget(self._workspace)
            self.dataset_menu.addActions(self._workspace.datasets_tab.actions())
        return self._workspace

    # The tabs, for menus and tests (building the workspace when first asked for).
    datasets_tab = _tab("datasets_tab")
    training_tab = _tab("training_tab")
    tuning_tab = _tab("tuning_tab")
    serving_tab = _tab("serving_tab")
    monitoring_tab = _tab("monitoring_tab")

    # -- projects ------------------------------------------------------------------------

    def open_path(self, path: Path) -> None:
        """Open the project at ``path`` (errors are shown; the file is left as it was)."""
        self.opener.open(Path(path))

    def open_dialog(self) -> None:
        """Ask for a project file, then open it."""
        path, _ = QFileDialog.getOpenFileName(self, "Open Project", "", PROJECT_FILTER)
        if path:
            self.open_path(Path(path))

    def new_project(self) -> None:
        """Ask where to create a new project, then create and open it."""
        path, _ = QFileDialog.getSaveFileName(
            self, "New Project", "untitled.lepton", PROJECT_FILTER
        )
        if path:
            self.opener.create(Path(path).with_suffix(".lepton"))

    def open_demo(self) -> None:
        """Open the demo project (built from the sample data on first use)."""
        self.opener.open_demo()

    def save_copy_for_sharing(self) -> None:
        """Write a copy without captured requests and feedback (``lepton-desktop share``)."""
        if self.session is not None:
            save_copy_for_sharing(self, self.session)

    def close_project(self) -> None:
        """Close the open project (asks first if its jobs are running)."""
        self._when_jobs_stopped(lambda: self._show_project(None))

    # -- encryption (gui/encryption.py) -------------------------------------------------

    def encrypt_project(self) -> None:
        """Ask a new passphrase, then encrypt the open project in place (closed meanwhile)."""
        if self.session is None or Project.is_encrypted(self.session.path):
            return
        path = self.session.path
        ask_passphrase(self, path, lambda text, remember: self._convert(
            "encrypt", path, text, remember), new=True)  # fmt: skip

    def decrypt_project(self) -> None:
        """Decrypt the open project in place, after asking (closed meanwhile)."""
        if self.session is None or not Project.is_encrypted(self.session.path):
            return
        path = self.session.path
        text = (f"Decrypt “{path.name}”? Anyone who gets a copy of the file can then read "
                "everything in it.")  # fmt: skip
        ask(self, "Decrypt Project?", text, "Decrypt", lambda: self._convert("decrypt", path))

    def _convert(
        self, verb: str, path: Path, passphrase: str | None = None, remember: bool = False
    ) -> None:
        def start() -> None:
            self._show_project(None)  # the conversion needs the file to itself
            self._reopen = (path, passphrase if verb == "encrypt" else None)
            self.converter.start(verb, path, passphrase, remember)

        self._when_jobs_stopped(start)

    def _on_converted(self, path: Path, error: str) -> None:
        _, passphrase = getattr(self, "_reopen", (path, None))
        if error:
            show_error(self, "Cannot Change the Project's Encryption", error)
            passphrase = None  # as it was: a plain project, or one whose key is held
        else:
            verb = "Encrypted" if self.converter.result.get("encrypted") else "Decrypted"
            self.statusBar().showMessage(f"{verb} {path.name}", 15_000)
        self.opener.open(path, passphrase)

    def _on_session_opened(self, session: ProjectSession, result: OpenResult) -> None:
        self._when_jobs_stopped(
            lambda: self._show_project(session), otherwise=lambda: self.opener.discard(session)
        )
        self.settings.add_recent(result.path)
        if session.keyring_note:
            self.statusBar().showMessage(session.keyring_note, 15_000)
        if result.upgraded_from is not None:
            note = f"Upgraded from schema {result.upgraded_from}; backup: {result.backup_path}"
            self.statusBar().showMessage(note, 15_000)

    def _show_project(self, session: ProjectSession | None) -> None:
        old, self.session = self.session, session
        if old is not None and old is not session:
            old.close()
            old.deleteLater()
        if session is not None or self._workspace is not None:
            self.tabs.set_session(session)
        self.job_status.update_jobs([])
        if session is not None:
            session.jobsUpdated.connect(self.job_status.update_jobs)
            session.errorOccurred.connect(lambda exc: show_exception(self, "Error", exc))
        self.stack.setCurrentWidget(self.tabs if session else self.start_page)
        self.start_page.set_recent(self.settings.recent_files())
        self.path_label.setText(str(session.path) if session else "No project open")
        read_only = session is not None and session.read_only_reason is not None
        title = f"{session.path.name} — Lepton Desktop" if session else "Lepton Desktop"
        self.setWindowTitle(title.replace(" — ", " (read-only) — ", 1) if read_only else title)
        self._show_read_only(session if read_only else None)
        self.close_action.setEnabled(session is not None)
        encrypted = session is not None and Project.is_encrypted(session.path)
        self.encrypt_action.setEnabled(session is not None and not encrypted)
        self.decrypt_action.setEnabled(encrypted)
        self.share_action.setEnabled(session is not None)
        self.dataset_menu.setEnabled(session is not None)

    def _show_read_only(self, session: ProjectSession | None) -> None:
        if session is None:
            self.read_only_banner.hide()
            return
        self.read_only_banner.show_message(
            f"Read-only: another Lepton Desktop edits {session.path.name} "
            f"({session.read_only_reason}). You can look here; to change it, use that "
            "window, or close it there and open the project again here.",
            "info",
        )

    def _when_jobs_stopped(self, then: object, otherwise: object = None) -> None:
        # Closing a project with running workers would orphan them: ask, cancel, wait.
        running = self.session.jobs.running_ids() if self.session else []
        if not running:
            then()  # type: ignore[operator]
            return
        runner = self.session.jobs  # type: ignore[union-attr]
        text = f"{len(running)} job(s) are still running. Cancel them and continue?"

        def stop() -> None:
            runner.allFinished.connect(lambda: then())  # type: ignore[operator]
            runner.stop_all()
            self.statusBar().showMessage("Stopping jobs…")

        ask(self, "Jobs Running", text, "Cancel Jobs", stop, otherwise)  # type: ignore[arg-type]

    def _on_cancel_requested(self, job_id: int) -> None:
        if self.session is not None:
            ops.cancel_job(self.session, job_id)

    # -- drag and drop -------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept project files, data files and folders."""
        if any(_droppable(Path(u.toLocalFile())) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Open a dropped project, or import dropped data."""
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if self.drop_paths(paths):
            event.acceptProposedAction()

    def drop_paths(self, paths: list[Path]) -> bool:
        """A ``.lepton`` opens; a data file or folder opens the Import dialog prefilled."""
        path = next((p for p in paths if _droppable(p)), None)
        if path is None:
            return False
        if path.suffix.lower() == ".lepton":
            self.open_path(path)
        elif self.session is None:
            self.statusBar().showMessage(
                "Open or create a project first, then drop data on it.", 8000
            )
        else:
            self.tabs.setCurrentWidget(self.datasets_tab)
            self.datasets_tab.open_import_dialog(path)
        return True

    def paintEvent(self, event: QPaintEvent) -> None:
        """After the first paint, build the project's tabs while the user looks."""
        super().paintEvent(event)
        if self._workspace is None and not self._workspace_planned:
            # Not in __init__: the first paint would wait for thirty plots. A moment
            # after it, so that a project opened at launch finds its tabs ready.
            self._workspace_planned = True
            QTimer.singleShot(200, self, lambda: self.tabs)  # (not run once self is gone)

    # -- closing -------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask about running jobs; remember the layout; close the project."""
        if self.session is not None and self.session.jobs.running_ids():
            event.ignore()
            self._when_jobs_stopped(self.close)
            return
        self.settings.save_window(self)
        self._show_project(None)
        super().closeEvent(event)


def _droppable(path: Path) -> bool:
    return path.suffix.lower() in (".lepton", *DATA_SUFFIXES) or path.is_dir()
