"""Above the request log: which deployment's log to show, and a search box.

The picker lists the deployments newest first (when, what it served, where, how it
ended), so the requests of earlier servers stay reachable; the search box waits for
a pause in typing before it asks for a search (which runs in SQL, through the
project's full-text index, on the session's DB thread: never in the GUI thread).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLineEdit, QSizePolicy, QWidget

from lepton_desktop.core.entities import Deployment
from lepton_desktop.core.serving.manager import MAX_SEARCH_CHARS

#: Typing pause (ms) after which the search runs.
SEARCH_DEBOUNCE_MS = 300


def deployment_text(deployment: Deployment, now: float | None = None) -> str:
    """``#id  when  models  address  status``: one line of the picker."""
    when = deployment.started_at or deployment.created_at
    same_day = time.localtime(when)[:3] == time.localtime(now or time.time())[:3]
    stamp = time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M", time.localtime(when))
    names = list(dict.fromkeys(str(e.get("name")) for e in deployment.loaded))
    models = ", ".join(names or deployment.models) or "all models"
    address = deployment.url or f"http://{deployment.host}:{deployment.port}"
    return f"#{deployment.id}  {stamp}  {models}  {address}  {deployment.status}"


class DeploymentPicker(QComboBox):
    """The deployments, newest first; picking one shows its log.

    Signals:
        picked(int): the user chose this deployment.
    """

    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deploymentPicker")
        self.setToolTip("Whose requests the log shows: the running server, or an earlier one")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(24)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setPlaceholderText("No server started yet")
        self._texts: list[tuple[int, str]] = []
        # activated: the user's choices only (not the ones made here in code)
        self.activated.connect(self._on_activated)

    def set_deployments(self, deployments: Sequence[Deployment]) -> None:
        """The deployments to offer (newest first); the current one is kept."""
        texts = [(d.id, deployment_text(d)) for d in deployments]
        if texts == self._texts:
            return
        current = self.current_id()
        self._texts = texts
        self.blockSignals(True)
        self.clear()
        for deployment_id, text in texts:
            self.addItem(text, deployment_id)
        self.blockSignals(False)
        self.show_current(current)

    def show_current(self, deployment_id: int | None) -> None:
        """Select this deployment's line (the log shows it), without a ``picked``."""
        index = self.findData(deployment_id) if deployment_id is not None else -1
        if index != self.currentIndex():
            self.blockSignals(True)
            self.setCurrentIndex(index)
            self.blockSignals(False)

    def current_id(self) -> int | None:
        """The deployment selected (None: none)."""
        data = self.currentData()
        return int(data) if data is not None else None

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if data is not None:
            self.picked.emit(int(data))


class LogSearchBox(QLineEdit):
    """A search field that speaks after a pause in typing (at once when cleared).

    Signals:
        searchChanged(str): the text to search for (stripped; empty: show all).
    """

    searchChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("logSearch")
        self.setPlaceholderText("Search requests: model, status, error, inputs, outputs…")
        self.setToolTip(
            "Shows the requests holding every word typed (a word also matches the "
            "words it starts). Searched in the project file's full-text index."
        )
        self.setClearButtonEnabled(True)
        self.setMaxLength(MAX_SEARCH_CHARS)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._sent = ""
        self._timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._timer.timeout.connect(self._send)
        self.textChanged.connect(self._on_text_changed)

    @property
    def query(self) -> str:
        """The search in force (what was last sent)."""
        return self._sent

    def _on_text_changed(self, text: str) -> None:
        if not text.strip():
            self._timer.stop()
            self._send()
        else:
            self._timer.start()  # (re)started: only a pause in typing sends

    def _send(self) -> None:
        text = self.text().strip()
        if text != self._sent:
            self._sent = text
            self.searchChanged.emit(text)
