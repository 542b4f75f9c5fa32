"""The Help menu: About (versions, licences), Run Self-Test, Open Log Folder, Copy Diagnostics.

Versions, the GPU and the self-test come from ``lepton-desktop`` child processes
(``--version --verbose --json``, ``selftest``): finding the GPU imports torch, which
the GUI process never does, and the self-test is the very command an installation
is checked with. The GUI adds what only it knows (Qt's version, the platform plugin,
the open project) and never waits for a process: each one reports when it ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import PySide6
from PySide6.QtCore import QCoreApplication, QObject, QProcess, Qt, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop import __version__, paths
from lepton_desktop.core.system import launch
from lepton_desktop.gui.crash import open_folder
from lepton_desktop.gui.jobs import prepare_worker

if TYPE_CHECKING:
    from lepton_desktop.gui.main_window import MainWindow

Versions = dict[str, str]
LICENSES = "licenses/THIRD_PARTY_LICENSES.txt"


def qt_versions() -> Versions:
    """What the GUI process itself knows: Qt, PySide6, the platform plugin, the log folder."""
    return {"qt": qVersion(), "pyside6 (running)": PySide6.__version__,
            "qt platform": QGuiApplication.platformName(),
            "log folder": str(paths.user_log_dir())}  # fmt: skip


def diagnostics_text(versions: Versions, project: str | None) -> str:
    """The text Copy Diagnostics puts on the clipboard: one ``name: value`` per line."""
    found = {**versions, **qt_versions(), "open project": project or "none"}
    return "Lepton Desktop diagnostics\n" + "\n".join(f"{k}: {v}" for k, v in found.items())


class VersionsProbe(QObject):
    """Runs ``lepton-desktop --version --verbose --json`` once; hands its answer to callers.

    Args:
        parent: the owner (the process ends with it).
    """

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.versions: Versions | None = None
        self._waiting: list[Callable[[Versions], None]] = []
        self._process: QProcess | None = None

    def get(self, then: Callable[[Versions], None]) -> None:
        """Call ``then(versions)`` now if known, else when the process has answered."""
        if self.versions is not None:
            then(self.versions)
            return
        self._waiting.append(then)
        if self._process is None:
            self._process = QProcess(self)
            prepare_worker(self._process)
            self._process.finished.connect(self._on_finished)
            self._process.errorOccurred.connect(self._on_error)
            argv = [*launch.cli_argv(), "--version", "--verbose", "--json"]
            self._process.start(argv[0], argv[1:])

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        process, self._process = self._process, None
        assert process is not None
        output = bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace")
        try:
            found: Versions = {str(k): str(v) for k, v in json.loads(output).items()}
        except ValueError:
            found = {"lepton-desktop": __version__, "versions": f"unavailable (exit {code})"}
        process.deleteLater()
        self._deliver(found)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._process.deleteLater()
            self._process = None
            self._deliver({"lepton-desktop": __version__, "versions": "unavailable"}, keep=False)

    def _deliver(self, found: Versions, keep: bool = True) -> None:
        if keep:
            self.versions = found
        waiting, self._waiting = self._waiting, []
        for then in waiting:
            then(found)


class HelpMenu(QObject):
    """The Help menu's actions, for one window.

    Args:
        window: the main window (its project, status bar and dialogs).
        menu: the menu to fill.
    """

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self.window = window
        self.probe = VersionsProbe(self)
        self.selftest_action = _add(menu, "Run &Self-Test…", self.run_selftest)
        self.log_action = _add(menu, "Open &Log Folder", self.open_log_folder)
        self.diagnostics_action = _add(menu, "&Copy Diagnostics", self.copy_diagnostics)
        menu.addSeparator()
        self.about_action = _add(menu, "&About Lepton Desktop", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)

    def show_about(self) -> AboutDialog:
        """The About dialog (versions filled in when the probe answers)."""
        dialog = AboutDialog(self.window)
        dialog.diagnostics_button.clicked.connect(self.copy_diagnostics)
        self.probe.get(dialog.show_versions)
        dialog.open()
        return dialog

    def run_selftest(self) -> SelfTestDialog:
        """Start ``lepton-desktop selftest`` and show its steps as they end."""
        dialog = SelfTestDialog(self.window)
        dialog.open()
        dialog.start()
        return dialog

    def open_log_folder(self) -> None:
        """Show the log folder in the file manager."""
        open_folder(paths.user_log_dir())

    def copy_diagnostics(self) -> None:
        """Versions, the GPU and the open project, onto the clipboard."""
        self.window.statusBar().showMessage("Gathering diagnostics…")
        self.probe.get(self._copy)

    def _copy(self, versions: Versions) -> None:
        session = self.window.session
        QGuiApplication.clipboard().setText(
            diagnostics_text(versions, str(session.path) if session else None)
        )
        self.window.statusBar().showMessage("Diagnostics copied to the clipboard", 8000)


class AboutDialog(QDialog):
    """Version, licence, where things are kept, the components' versions and licences."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Lepton Desktop")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        intro = QLabel(_about_html(), self)
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        intro.setOpenExternalLinks(True)
        self.versions = QPlainTextEdit("Finding the versions of the components…", self)
        self.versions.setReadOnly(True)
        self.versions.setMinimumSize(520, 190)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        role = QDialogButtonBox.ButtonRole.ActionRole
        self.licences_button = buttons.addButton("Third-Party Licences…", role)
        self.diagnostics_button = buttons.addButton("Copy Diagnostics", role)
        self.licences_button.clicked.connect(self.show_licences)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("<b>Components</b>", self))
        layout.addWidget(self.versions, 1)
        layout.addWidget(buttons)

    def show_versions(self, versions: Versions) -> None:
        """Fill in the components' versions (from the probe)."""
        found = {**versions, **qt_versions()}
        self.versions.setPlainText("\n".join(f"{k}: {v}" for k, v in found.items()))

    def show_licences(self) -> QDialog:
        """The bundled components' licences, from the file the packages ship."""
        path = paths.resources_dir() / LICENSES
        text = path.read_text(encoding="utf-8") if path.exists() else f"{path} is missing."
        dialog = QDialog(self)
        dialog.setObjectName("licencesDialog")
        dialog.setWindowTitle("Third-Party Licences")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view = QPlainTextEdit(text, dialog)
        view.setReadOnly(True)
        view.setMinimumSize(640, 480)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
        buttons.rejected.connect(dialog.close)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(f"From <code>{path}</code>", dialog))
        layout.addWidget(view, 1)
        layout.addWidget(buttons)
        dialog.open()
        return dialog


class SelfTestDialog(QDialog):
    """Runs ``lepton-desktop selftest`` in a process and shows each step as it ends."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("selfTestDialog")
        self.setWindowTitle("Self-Test")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.status = QLabel("Running: a throwaway project goes through the whole loop…", self)
        self.status.setWordWrap(True)
        self.steps = QPlainTextEdit(self)
        self.steps.setReadOnly(True)
        self.steps.setMinimumSize(640, 220)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.steps, 1)
        layout.addWidget(buttons)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        prepare_worker(self.process)
        self.process.readyReadStandardOutput.connect(self._on_output)
        self.process.finished.connect(self._on_finished)
        self.exit_code: int | None = None

    def start(self) -> None:
        """Start the self-test process."""
        argv = [*launch.cli_argv(), "selftest"]
        self.process.start(argv[0], argv[1:])

    @property
    def lines(self) -> list[str]:
        """The steps reported so far."""
        return self.steps.toPlainText().splitlines()

    def _on_output(self) -> None:
        text = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        if text.strip():  # the last read at exit is often empty: no blank line for it
            self.steps.appendPlainText(text.rstrip("\n"))

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_output()
        self.exit_code = code
        last = next((line for line in reversed(self.lines) if line.strip()), "no output")
        verdict = "Passed" if code == 0 else "Failed"
        self.status.setText(f"<b>{verdict}.</b> {last.removeprefix('selftest: ')}")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop a self-test still running (its workers and servers end with it)."""
        if self.process.state() != QProcess.ProcessState.NotRunning:
            # Never wait here: the process outlives the dialog until it has exited.
            self.process.readyReadStandardOutput.disconnect(self._on_output)
            self.process.finished.disconnect(self._on_finished)
            self.process.setParent(QCoreApplication.instance())
            self.process.finished.connect(self.process.deleteLater)
            self.process.terminate()
        super().closeEvent(event)


def _add(menu: QMenu, text: str, slot: Callable[[], object]) -> QAction:
    action = menu.addAction(text)
    action.triggered.connect(lambda: slot())
    return action


def _about_html() -> str:
    return (
        f"<h3>Lepton Desktop {__version__}</h3>"
        "<p>A model's whole life on one's own machine: datasets, training, tuning, "
        "serving and monitoring, in one SQLite project file.</p>"
        "<p>Licence: Apache-2.0. The components it bundles keep their own licences "
        "(Third-Party Licences…).</p>"
        f"<p><b>Demo project:</b> {paths.demo_project_path()}<br>"
        f"<b>User data:</b> {paths.user_data_dir()}<br>"
        f"<b>Logs:</b> {paths.user_log_dir()}<br>"
        f"<b>Resources:</b> {paths.resources_dir()}</p>"
    )
