"""The Model update page's *Live routing* box: what the running server does with a
model's candidate, and the controls to change it.

*Champion only*, *Canary* (the candidate answers the share chosen on the slider of
the requests that name no version) or *Shadow* (the candidate gets a copy of every
answered request; its answers are logged, never returned). **Apply** asks for a
restart of the server with that routing (see :mod:`.routing_ops`): the box says so
before and after.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import Deployment

MODES = ("Champion only", "Canary", "Shadow")
#: The canary shares the slider offers, in percent (a canary answers a minority).
SHARE_RANGE = (1, 50)
DEFAULT_SHARE = 10


class RoutingBox(QGroupBox):
    """The running server's routing of one model, and Apply.

    Signals:
        applyRequested(str, int, float): the mode (``off``, ``canary``, ``shadow``),
            the candidate version and the canary's share (0 to 1).
    """

    applyRequested = Signal(str, int, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Live routing", parent)
        self.deployment: Deployment | None = None
        self.model = ""
        self.candidate: int | None = None
        self.server = QLabel(self)
        self.mode = QComboBox(self)
        self.mode.addItems(MODES)
        self.share = QSlider(Qt.Orientation.Horizontal, self)
        self.share.setRange(*SHARE_RANGE)
        self.share.setValue(DEFAULT_SHARE)
        self.share_label = QLabel(self)
        self.apply_button = QPushButton("Apply (restarts the server)", self)
        self._build()
        self.set_server(None)

    def _build(self) -> None:
        self.server.setWordWrap(True)
        self.mode.setToolTip(
            "Canary: the candidate answers a share of the requests that name no version. "
            "Shadow: it predicts a copy of every answered request, logged, never returned."
        )
        self.share.setToolTip("The canary's share of the model's requests")
        self.apply_button.setToolTip(
            "A running server reads its candidates when it starts: Apply stops it and starts "
            "it again on the same address with this routing")  # fmt: skip
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Route:", self))
        controls.addWidget(self.mode)
        controls.addWidget(QLabel("Canary share:", self))
        controls.addWidget(self.share, 1)
        controls.addWidget(self.share_label)
        controls.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.server)
        layout.addLayout(controls)
        self.mode.currentIndexChanged.connect(lambda _i: self._sync())
        self.share.valueChanged.connect(lambda _v: self._sync())
        self.apply_button.clicked.connect(self._apply)

    def set_server(self, deployment: Deployment | None) -> None:
        """The running server (None: none runs)."""
        self.deployment = deployment
        self._describe()

    def set_choice(self, model: str, candidate: int | None) -> None:
        """The model and candidate version chosen on the page."""
        self.model, self.candidate = model, candidate
        self._describe()

    def routing(self) -> dict[str, Any]:
        """The model's routing on the running server: ``{"mode", "version", "share"}``."""
        options = self.deployment.options if self.deployment else {}
        for entry in options.get("canary", []):
            if entry["model"] == self.model:
                return {"mode": "canary", "version": entry["version"], "share": entry["share"]}
        for entry in options.get("shadow", []):
            if entry["model"] == self.model:
                return {"mode": "shadow", "version": entry["version"], "share": None}
        return {"mode": "off", "version": None, "share": None}

    def _describe(self) -> None:
        deployment = self.deployment
        if deployment is None or deployment.status != "running":
            state = "starting" if deployment is not None else "not running"
            self.server.setText(f"The server is {state}: start one in the Serving tab (or "
                                "lepton-desktop serve) to route a candidate live.")  # fmt: skip
        else:
            self.server.setText(f"Server {deployment.url} (deployment {deployment.id}): "
                                f"{self._routing_text()}.")  # fmt: skip
        self._sync()

    def _routing_text(self) -> str:
        now = self.routing()
        if now["mode"] == "canary":
            return (f"{self.model}:{now['version']} answers {now['share']:.0%} of "
                    f"{self.model}'s requests (canary)")  # fmt: skip
        if now["mode"] == "shadow":
            return f"{self.model}:{now['version']} gets a copy of every request (shadow)"
        return f"the champion answers every request of {self.model or 'the model'}"

    def _sync(self) -> None:
        self.share_label.setText(f"{self.share.value()}%")
        self.share.setEnabled(self.mode.currentIndex() == 1)
        running = self.deployment is not None and self.deployment.status == "running"
        needs_candidate = self.mode.currentIndex() != 0
        self.apply_button.setEnabled(
            running and bool(self.model) and (self.candidate is not None or not needs_candidate)
        )

    def _apply(self) -> None:
        mode = ("off", "canary", "shadow")[self.mode.currentIndex()]
        self.applyRequested.emit(mode, int(self.candidate or 0), self.share.value() / 100)
