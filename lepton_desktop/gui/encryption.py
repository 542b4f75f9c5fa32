"""Encrypted projects in the GUI: the passphrase dialog, and File → Encrypt/Decrypt Project….

The conversion runs in a ``lepton-desktop encrypt|decrypt`` process (the GUI never
blocks on it), which needs the project to itself: the window closes the project
first and opens it again afterwards. The passphrase reaches that process in its
environment (``LEPTON_PASSPHRASE``), never on its command line; decrypting needs no
passphrase there, since the GUI's workers inherit the key it holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressDialog,
    QWidget,
)

from lepton_desktop.core.store.keys import MAX_PASSPHRASE_CHARS, MIN_PASSPHRASE_CHARS
from lepton_desktop.core.system import launch
from lepton_desktop.gui.jobs import prepare_worker

PASSPHRASE_ENV = "LEPTON_PASSPHRASE"


class PassphraseDialog(QDialog):
    """Asks an encrypted project's passphrase, or (``new``) a new one, twice.

    Args:
        path: the project, named in the text.
        new: choosing a passphrase to encrypt with (typed twice, at least
            ``MIN_PASSPHRASE_CHARS`` characters) rather than giving the existing one.
        error: shown above the field (a wrong passphrase given before).
    """

    def __init__(
        self, path: Path, *, new: bool = False, error: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("passphraseDialog")
        self.setWindowTitle("Encrypt Project" if new else "Encrypted Project")
        self.setMinimumWidth(440)
        self.new = new
        text = (f"Choose a passphrase for “{path.name}”. Without it the project cannot be "
                "opened: it cannot be recovered if it is lost." if new else
                f"“{path.name}” is encrypted. Enter its passphrase.")  # fmt: skip
        layout = QFormLayout(self)
        intro = QLabel(text, self)
        intro.setWordWrap(True)
        layout.addRow(intro)
        self.error = QLabel(error, self)
        self.error.setObjectName("passphraseError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setVisible(bool(error))
        layout.addRow(self.error)
        self.field = self._secret_field()
        layout.addRow("Passphrase:", self.field)
        self.again = self._secret_field()
        if new:
            layout.addRow("Again:", self.again)
        else:
            self.again.hide()  # (a child outside the layout would sit at the top left)
        self.remember = QCheckBox("Remember in the system keyring", self)
        layout.addRow(self.remember)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            "Encrypt" if new else "Open"
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addRow(self.buttons)
        self.field.textChanged.connect(self._check)
        self.again.textChanged.connect(self._check)
        self._check()

    def _secret_field(self) -> QLineEdit:
        field = QLineEdit(self)
        field.setEchoMode(QLineEdit.EchoMode.Password)
        field.setMaxLength(MAX_PASSPHRASE_CHARS)
        return field

    def _check(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        text = self.field.text()
        if not self.new:
            ok.setEnabled(bool(text))
            return
        problem = (
            f"At least {MIN_PASSPHRASE_CHARS} characters." if len(text) < MIN_PASSPHRASE_CHARS
            else "The two passphrases differ." if text != self.again.text() else ""
        )  # fmt: skip
        ok.setEnabled(not problem)
        ok.setToolTip(problem)

    def passphrase(self) -> str:
        """The passphrase typed."""
        return self.field.text()


class Converter(QObject):
    """Runs ``lepton-desktop encrypt|decrypt PROJECT --json`` and reports how it ended.

    ``finished(path, error)``: ``error`` is empty on success, else the command's
    one-line message.
    """

    finished = Signal(object, str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.process: QProcess | None = None
        self.result: dict[str, object] = {}

    def start(
        self, verb: str, path: Path, passphrase: str | None = None, remember: bool = False
    ) -> None:
        """Start converting (``verb``: ``encrypt`` or ``decrypt``) with a busy dialog."""
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        prepare_worker(process)
        if passphrase is not None:
            env = process.processEnvironment() or QProcessEnvironment.systemEnvironment()
            env.insert(PASSPHRASE_ENV, passphrase)
            process.setProcessEnvironment(env)
        progress = QProgressDialog(f"{verb.capitalize()}ing {path.name}…", "", 0, 0, self._parent)
        progress.setCancelButton(None)
        progress.setWindowTitle("Lepton Desktop")
        progress.setMinimumDuration(0)
        process.finished.connect(lambda code, status: self._done(path, progress, code))
        argv = [*launch.cli_argv(), verb, str(path), "--json", *(["--remember"] * remember)]
        self.process = process
        process.start(argv[0], argv[1:])
        progress.open()

    def _done(self, path: Path, progress: QProgressDialog, code: int) -> None:
        process, self.process = self.process, None
        progress.reset()
        progress.deleteLater()
        if process is None:
            return
        out = bytes(process.readAllStandardOutput().data()).decode("utf-8", "replace").strip()
        err = bytes(process.readAllStandardError().data()).decode("utf-8", "replace").strip()
        process.deleteLater()
        if code == 0 and out:
            self.result = json.loads(out.splitlines()[-1])
            self.finished.emit(path, "")
            return
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        self.finished.emit(path, lines[-1][len("error: ") :] if lines else err or "failed")


def ask_passphrase(
    parent: QWidget,
    path: Path,
    on_given: Callable[[str, bool], None],
    *,
    new: bool = False,
    error: str = "",
) -> PassphraseDialog:
    """Show the passphrase dialog without blocking; ``on_given(passphrase, remember)`` after."""
    dialog = PassphraseDialog(path, new=new, error=error, parent=parent)
    dialog.accepted.connect(lambda: on_given(dialog.passphrase(), dialog.remember.isChecked()))
    dialog.finished.connect(dialog.deleteLater)
    dialog.open()
    return dialog
