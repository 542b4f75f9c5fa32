"""The server panel: the Start/Stop button, the status, the address, and the settings
the next start uses (port, local network with its token, CORS, capture, batching).

The panel only gathers input and shows state; the tab turns its signals into ops.
Settings are locked while a server runs: they are the server's start-up options.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtNetwork import QAbstractSocket, QNetworkInterface
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import Deployment
from lepton_desktop.gui.serving.ops import ServerOptions
from lepton_desktop.gui.widgets.fields import check_box, double_spin, int_spin

DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"
ANY_ADDRESS = "0.0.0.0"
#: Status dot colours (they read on light and dark backgrounds).
STATUS_COLORS = {
    "stopped": "#8a8f98", "queued": "#e08a1e", "starting": "#e08a1e", "running": "#2a9d8f",
    "failed": "#d64545", "interrupted": "#d64545",
}  # fmt: skip
_BUTTON_STYLE = """
QPushButton#serveButton { font-weight: 600; font-size: 11pt; padding: 9px; border-radius: 5px;
    background: palette(highlight); color: palette(highlighted-text); border: none; }
QPushButton#serveButton:hover { background: palette(link); }
QPushButton#serveButton[running="true"] { background: #c44536; color: white; }
QPushButton#serveButton[running="true"]:hover { background: #d65a4a; }
QPushButton#serveButton:disabled { background: palette(button); color: palette(mid); }
"""


class OptionsError(ValueError):
    """A setting the panel refuses; the message names it."""


def status_text(deployment: Deployment | None, job_error: str | None = None) -> tuple[str, str]:
    """(status key, sentence) of a deployment: stopped, starting, running since …, failed."""
    if deployment is None:
        return "stopped", "Stopped"
    status = deployment.status
    if job_error and deployment.active:
        return "failed", f"Failed: {job_error}"
    if status == "running":
        since = time.strftime("%H:%M:%S", time.localtime(deployment.started_at or time.time()))
        return "running", f"Running since {since}"
    if status in ("queued", "starting"):
        return "starting", "Starting…"
    if status in ("failed", "interrupted"):
        reason = deployment.error or (
            "the server's worker stopped unexpectedly"
            if status == "interrupted"
            else "no reason recorded"
        )
        return status, f"{status.capitalize()}: {reason}"
    return "stopped", "Stopped"


def local_url(deployment: Deployment | None, port: int) -> str:
    """The address this machine reaches the server at (a preview while stopped)."""
    if deployment is None or not deployment.active:
        return f"http://{LOOPBACK}:{port if port else '<any free port>'}"
    url = deployment.url or f"http://{deployment.host}:{deployment.port}"
    parts = urlsplit(url)
    if parts.hostname in (ANY_ADDRESS, "::", ""):
        return f"http://{LOOPBACK}:{parts.port or deployment.port}"
    return url.rstrip("/")


def network_urls(port: int) -> list[str]:
    """``http://ADDRESS:port`` for this machine's IPv4 addresses on its networks."""
    urls = []
    for address in QNetworkInterface.allAddresses():
        if address.protocol() != QAbstractSocket.NetworkLayerProtocol.IPv4Protocol:
            continue
        if address.isLoopback() or address.isLinkLocal():
            continue
        urls.append(f"http://{address.toString()}:{port}")
    return urls


def parse_origins(text: str) -> list[str]:
    """CORS origins, one per line (``*``, or ``scheme://host[:port]``). Raises OptionsError."""
    origins = []
    for number, raw in enumerate(text.splitlines(), 1):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        ok = origin == "*" or (
            parts.scheme in ("http", "https")
            and bool(parts.netloc)
            and not parts.path
            and not parts.query
        )
        if not ok:
            raise OptionsError(
                f"CORS origin on line {number} ({raw.strip()!r}): write it as "
                "https://host[:port], or * for any origin"
            )
        origins.append(origin)
    return origins


def copy_text(text: str) -> None:
    """Put ``text`` on the clipboard."""
    QGuiApplication.clipboard().setText(text)


def _copy_button(parent: QWidget, tip: str, source: QLineEdit) -> QToolButton:
    button = QToolButton(parent)
    button.setText("Copy")
    button.setToolTip(tip)
    button.clicked.connect(lambda: copy_text(source.text()))
    return button


class ServerPanel(QWidget):
    """Start/Stop, status, address and start-up settings.

    Signals:
        toggleRequested(): Start or Stop was pressed.
        tokenRequested(): a (new) token is needed (network switched on, Regenerate).
    """

    toggleRequested = Signal()
    tokenRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = False
        self._styled: tuple[str, bool] | None = None  # (status key, running) last styled
        self.deployment: Deployment | None = None
        self._build_header()
        self._build_settings()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toggle)
        layout.addLayout(self._status_row())
        layout.addLayout(self._url_row())
        layout.addWidget(self.network_label)
        layout.addWidget(self.settings)
        self.error = QLabel(self)
        self.error.setObjectName("formError")
        self.error.setWordWrap(True)
        self.error.setProperty("error", True)
        self.error.hide()
        layout.addWidget(self.error)
        self.lan.toggled.connect(self._on_lan_toggled)
        self.port.valueChanged.connect(lambda _v: self._show_address())
        self._on_lan_toggled(False)
        self.show_deployment(None)

    # -- building ----------------------------------------------------------------------

    def _build_header(self) -> None:
        self.toggle = QPushButton("Start server", self)
        self.toggle.setObjectName("serveButton")
        self.toggle.setStyleSheet(_BUTTON_STYLE)
        self.toggle.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.toggle.clicked.connect(self.toggleRequested)
        self.status_dot = QLabel("●", self)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url = QLineEdit(self)
        self.url.setReadOnly(True)
        self.url.setObjectName("serverUrl")
        self.copy_url = _copy_button(self, "Copy the server's address", self.url)
        self.network_label = QLabel(self)
        self.network_label.setWordWrap(True)
        self.network_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _status_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(self.status_dot, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.status, 1)
        return row

    def _url_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(self.url, 1)
        row.addWidget(self.copy_url)
        return row

    def _build_settings(self) -> None:
        self.settings = QGroupBox("Settings (used at the next start)", self)
        form = QFormLayout(self.settings)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.port = int_spin(
            self, 0, 65535, DEFAULT_PORT, "TCP port; 'any free' lets the system choose", "any free"
        )
        form.addRow("Port", self.port)
        self.lan = check_box(
            self,
            False,
            "Serve on local network",
            "Listen on every address (0.0.0.0); clients need the token",
        )
        form.addRow(self.lan)
        self.token = QLineEdit(self)
        self.token.setReadOnly(True)
        self.token.setObjectName("serverToken")
        self.copy_token = _copy_button(self, "Copy the token", self.token)
        self.regenerate = QToolButton(self)
        self.regenerate.setText("Regenerate")
        self.regenerate.setToolTip(
            "A new token (clients holding the old one are refused after the next start)"
        )
        self.regenerate.clicked.connect(self.tokenRequested)
        self.token_row = QWidget(self)
        token_layout = QHBoxLayout(self.token_row)
        token_layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.token, self.copy_token, self.regenerate):
            token_layout.addWidget(widget, 1 if widget is self.token else 0)
        form.addRow("Token", self.token_row)
        self.capture = check_box(
            self,
            True,
            "Capture request inputs",
            "Keep each request's inputs and outputs in the log; turn off for private data",
        )
        form.addRow(self.capture)
        self.cors = QPlainTextEdit(self)
        self.cors.setPlaceholderText("https://app.example.com\n(one origin per line)")
        self.cors.setToolTip("Web pages allowed to call the server from a browser (CORS)")
        self.cors.setFixedHeight(self.fontMetrics().height() * 3 + 12)
        form.addRow("CORS origins", self.cors)
        self.advanced = QToolButton(self)
        self.advanced.setText("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced.setAutoRaise(True)
        self.advanced.toggled.connect(self._on_advanced_toggled)
        form.addRow(self.advanced)
        self.advanced_box = QWidget(self)
        advanced = QFormLayout(self.advanced_box)
        advanced.setContentsMargins(12, 0, 0, 0)
        self.max_batch = int_spin(
            self,
            1,
            4096,
            32,
            "Requests that arrive together are run as one batch of up to this many rows",
        )
        self.max_wait = double_spin(
            self, 0.0, 1000.0, 2.0, 0.5, "How long a request waits for others to batch with (ms)"
        )
        advanced.addRow("Max batch rows", self.max_batch)
        advanced.addRow("Max wait (ms)", self.max_wait)
        form.addRow(self.advanced_box)
        self.advanced_box.hide()

    # -- reading -----------------------------------------------------------------------

    def options(self, models: list[str]) -> ServerOptions:
        """The start-up options as set. Raises OptionsError for a refused setting."""
        lan = self.lan.isChecked()
        if lan and not self.token.text():
            raise OptionsError("serving on the local network needs a token: press Regenerate")
        return ServerOptions(
            models=models,
            host=ANY_ADDRESS if lan else LOOPBACK,
            port=self.port.value(),
            token=self.token.text() if lan else None,
            cors=parse_origins(self.cors.toPlainText()),
            capture_inputs=self.capture.isChecked(),
            max_batch=self.max_batch.value(),
            max_wait_ms=self.max_wait.value(),
        )

    # -- showing -----------------------------------------------------------------------

    def set_token(self, token: str) -> None:
        """Show the token the next start uses."""
        self.token.setText(token)

    def show_error(self, text: str) -> None:
        """Show a refusal under the settings (empty: hide it)."""
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def show_deployment(self, deployment: Deployment | None, job_error: str | None = None) -> None:
        """Show a deployment's state (None: no server was started yet)."""
        self.deployment = deployment
        key, sentence = status_text(deployment, job_error)
        self.running = deployment is not None and deployment.active and key != "failed"
        self.status.setText(sentence)
        self._restyle(key)
        self.settings.setEnabled(not self.running)
        if self.running and deployment is not None and deployment.token and not self.token.text():
            # The file keeps only the token's digest: a server started elsewhere (or
            # before the app restarted) shows that one is needed, not what it is.
            self.token.setPlaceholderText("set by whoever started it (stored hashed)")
        self._show_address()

    def _restyle(self, key: str) -> None:
        # Called on every poll tick: a style sheet is parsed and the button re-polished
        # only when the status or the button's state changed.
        if (key, self.running) == self._styled:
            return
        self._styled = (key, self.running)
        self.status_dot.setStyleSheet(f"color: {STATUS_COLORS.get(key, '#8a8f98')};")
        self.toggle.setText("Stop server" if self.running else "Start server")
        self.toggle.setProperty("running", self.running)
        self.toggle.style().unpolish(self.toggle)
        self.toggle.style().polish(self.toggle)

    def _show_address(self) -> None:
        deployment = self.deployment if self.running else None
        self.url.setText(local_url(deployment, self.port.value()))
        lan = deployment.host == ANY_ADDRESS if deployment else self.lan.isChecked()
        port = deployment.port if deployment and deployment.port else self.port.value()
        urls = network_urls(port) if lan and port else []
        if lan:
            where = ", ".join(urls) if urls else "every address of this machine"
            self.network_label.setText(f"On your network: {where} (Bearer token required)")
        self.network_label.setVisible(lan)

    def _on_lan_toggled(self, on: bool) -> None:
        self.token_row.setEnabled(on)
        if on and not self.token.text():
            self.tokenRequested.emit()
        self._show_address()

    def _on_advanced_toggled(self, on: bool) -> None:
        self.advanced.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.advanced_box.setVisible(on)
