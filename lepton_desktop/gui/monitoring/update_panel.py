"""The Monitoring tab's Model update page: a candidate beside the champion, Promote, and
Retrain with feedback.

**Compare** runs a ``requests`` worker job (it may replay requests through torch):
agreement, quality on the same labelled rows and latency, from shadow rows or a
replay (see :mod:`lepton_desktop.core.monitoring.compare`), shown side by side.
**Promote** moves the ``champion`` alias to the candidate. *Live routing*
(:mod:`.routing_panel`) makes the candidate a canary or a shadow of the running server.
**Retrain with feedback** builds the dataset (the champion's rows plus the labelled
served ones) in a worker, then queues its training run with the champion's settings
(the Training tab shows it).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import ModelVersion
from lepton_desktop.gui.monitoring.routing_panel import RoutingBox

COLUMNS = ("", "Champion", "Candidate")


class UpdatePanel(QWidget):
    """Choose a model and a candidate version; emits what the user asks for.

    Signals:
        compareRequested(str, int): compare version ``int`` of model ``str``.
        promoteRequested(str, int): make it the champion.
        retrainRequested(str): retrain the model's champion with feedback.
    """

    compareRequested = Signal(str, int)
    promoteRequested = Signal(str, int)
    retrainRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.versions: list[ModelVersion] = []
        self.model_box = QComboBox(self)
        self.candidate_box = QComboBox(self)
        self.compare_button = QPushButton("Compare", self)
        self.promote_button = QPushButton("Promote", self)
        self.retrain_button = QPushButton("Retrain with feedback", self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.status = QLabel(self)
        self.routing = RoutingBox(self)
        self.result: dict[str, Any] | None = None
        self._build()

    def _build(self) -> None:
        self.compare_button.setToolTip(
            "The candidate beside the champion: from shadow rows (serve --shadow) or by "
            "replaying the champion's answered requests")  # fmt: skip
        self.promote_button.setToolTip("Move the champion alias to the candidate")
        self.retrain_button.setToolTip(
            "A new dataset version (the champion's data plus the labelled served rows) "
            "and a training run with the champion's settings")  # fmt: skip
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.status.setWordWrap(True)
        choose = QHBoxLayout()
        for label, box in (("Model:", self.model_box), ("Candidate:", self.candidate_box)):
            choose.addWidget(QLabel(label, self))
            choose.addWidget(box)
        choose.addStretch(1)
        buttons = QHBoxLayout()
        for button in (self.compare_button, self.promote_button, self.retrain_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(choose)
        layout.addLayout(buttons)
        layout.addWidget(self.routing)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        self.model_box.activated.connect(lambda _i: self._fill_candidates())
        self.candidate_box.currentIndexChanged.connect(lambda _i: self._choice_changed())
        self.compare_button.clicked.connect(lambda: self._emit(self.compareRequested))
        self.promote_button.clicked.connect(lambda: self._emit(self.promoteRequested))
        self.retrain_button.clicked.connect(self._retrain)

    def set_versions(self, versions: list[ModelVersion]) -> None:
        """The registry's versions (models with at least two can be compared)."""
        self.versions = versions
        chosen = self.model_box.currentText()
        names = sorted({v.name for v in versions})
        if [self.model_box.itemText(i) for i in range(self.model_box.count())] != names:
            self.model_box.clear()
            self.model_box.addItems(names)
            self.model_box.setCurrentIndex(max(self.model_box.findText(chosen), 0))
            self._fill_candidates()

    def _fill_candidates(self) -> None:
        name = self.model_box.currentText()
        self.candidate_box.clear()
        for version in sorted((v for v in self.versions if v.name == name),
                              key=lambda v: -v.version):  # fmt: skip
            tag = " (champion)" if "champion" in version.aliases else ""
            self.candidate_box.addItem(f"{version.version}{tag}", version.version)
        self._choice_changed()

    def _choice_changed(self) -> None:
        version = self.candidate_box.currentData()
        self.routing.set_choice(self.model_box.currentText(),
                                None if version is None else int(version))  # fmt: skip

    def _emit(self, signal: Any) -> None:
        version = self.candidate_box.currentData()
        if self.model_box.currentText() and version is not None:
            self.status.setText("Working…")
            signal.emit(self.model_box.currentText(), int(version))

    def _retrain(self) -> None:
        if self.model_box.currentText():
            self.status.setText("Building the dataset with the labelled served rows…")
            self.retrainRequested.emit(self.model_box.currentText())

    def show_comparison(self, result: dict[str, Any]) -> None:
        """Fill the side-by-side table."""
        self.result = result
        rows: list[tuple[str, str, str]] = []
        if result["source"] == "none":
            self.status.setText("The champion answered no requests to compare on yet.")
        else:
            rows.append(("Requests compared", f"{result['requests']:,} ({result['source']})",
                         f"{result['agreement']:.1%} agree"))  # fmt: skip
        quality = result.get("quality")
        if quality:
            rows.append(
                (
                    f"{quality['metric']} ({result['labelled']} labelled rows)",
                    f"{quality['champion']:.3f}",
                    f"{quality['candidate']:.3f}",
                )
            )
        latency = result.get("latency_ms") or {}
        for key in ("p50", "p99"):
            rows.append((f"Latency {key} (ms)", _ms(latency.get("champion"), key),
                         _ms(latency.get("candidate"), key)))  # fmt: skip
        live = result.get("live", {})
        rows.append(("Answered itself", _requests(live.get(str(result["champion"]))),
                     _requests(live.get(str(result["candidate"])))))  # fmt: skip
        self.table.setRowCount(len(rows))
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        if result["source"] != "none":
            self.status.setText(f"{result['model']}:{result['candidate']} beside the champion "
                                f"{result['model']}:{result['champion']}")  # fmt: skip


def _ms(values: dict[str, Any] | None, key: str) -> str:
    value = None if values is None else values.get(key)
    return "–" if value is None else f"{value:.2f}"


def _requests(live: dict[str, Any] | None) -> str:
    return "–" if not live else f"{live['requests']:,} requests"
