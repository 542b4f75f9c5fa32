"""The Monitoring tab's alerts: rules (add, remove) and the alerts they raised.

The rules are checked by a running server (with the GUI closed too); this panel shows
them and their history from the project file, re-read with the tab, and tells the user
with a desktop notification when an alert fires while the window is open.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import AlertEvent, AlertRule
from lepton_desktop.core.monitoring.alerts import ACTIONS, METRICS, RuleSpec
from lepton_desktop.gui.monitoring.ops import AlertsView

FIRING_COLOR = "#d62828"
RULE_COLUMNS = ("Rule", "Watches", "Window", "Fires when")
HISTORY_COLUMNS = ("Fired", "State", "Alert", "Webhook")
WINDOWS = ("5m", "15m", "1h", "24h")


class AlertsPanel(QWidget):
    """Rules and alerts; emits what the user asks for (the tab runs it).

    Signals:
        addRequested(RuleSpec): the user filled in the rule dialog.
        removeRequested(str): the user asked to delete this rule.
        fired(list): alerts that started firing since the last view (for a notification).
    """

    addRequested = Signal(object)
    removeRequested = Signal(str)
    fired = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models: list[str] = []
        self._seen: set[int] | None = None
        self.rules = _table(RULE_COLUMNS, self)
        self.history = _table(HISTORY_COLUMNS, self)
        self.add_button = QPushButton("Add rule…", self)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setEnabled(False)
        self.summary = QLabel("No alert rules yet.", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.rules)
        layout.addWidget(QLabel("Alerts (newest first)", self))
        layout.addWidget(self.history)
        self.add_button.clicked.connect(self._ask_rule)
        self.remove_button.clicked.connect(self._ask_remove)
        self.rules.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(bool(self.rules.selectedItems()))
        )

    def show_view(self, view: AlertsView) -> None:
        """Show the rules and alerts read; emit :attr:`fired` for alerts new since last."""
        self._fill_rules(view.rules)
        self._fill_history(view.history)
        firing = [e for e in view.history if e.state == "firing"]
        self.summary.setText(
            f"{len(view.rules)} rule(s); {len(firing)} firing" if view.rules
            else "No alert rules yet: a running server checks them every few seconds."
        )  # fmt: skip
        ids = {e.id for e in view.history}
        if self._seen is not None:
            new = [e for e in firing if e.id not in self._seen]
            if new:
                self.fired.emit(new)
        self._seen = ids

    def reset(self) -> None:
        """Another project: forget which alerts were seen."""
        self._seen = None
        self.rules.setRowCount(0)
        self.history.setRowCount(0)

    def _fill_rules(self, rules: list[AlertRule]) -> None:
        self.rules.setRowCount(len(rules))
        for row, rule in enumerate(rules):
            scope = (rule.model or "every model") + (f":{rule.version}" if rule.version else "")
            action = " · rolls back" if rule.action == "rollback" else ""
            cells = (rule.name, f"{rule.metric} of {scope}", rule.window,
                     f"{rule.op} {rule.threshold:g}{action}")  # fmt: skip
            for column, text in enumerate(cells):
                self.rules.setItem(row, column, QTableWidgetItem(text))

    def _fill_history(self, events: list[AlertEvent]) -> None:
        self.history.setRowCount(len(events))
        for row, event in enumerate(events):
            delivered = event.deliveries[-1] if event.deliveries else None
            webhook = "" if delivered is None else str(delivered["status"] or delivered["error"])
            cells = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.fired_at)),
                     event.state, event.message, webhook)  # fmt: skip
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if event.state == "firing":
                    item.setForeground(QColor(FIRING_COLOR))
                self.history.setItem(row, column, item)

    def _ask_rule(self) -> None:
        dialog = RuleDialog(self.models, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.addRequested.emit(dialog.spec())

    def _ask_remove(self) -> None:
        items = self.rules.selectedItems()
        if items:
            self.removeRequested.emit(self.rules.item(items[0].row(), 0).text())


class RuleDialog(QDialog):
    """The fields of a rule, with defaults that make sense for error rates."""

    def __init__(self, models: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add alert rule")
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("e.g. errors-high")
        self.metric = QComboBox(self)
        self.metric.addItems(METRICS)
        self.metric.setCurrentText("error_rate")
        self.model = QComboBox(self)
        self.model.addItem("every model", None)
        for name in models:
            self.model.addItem(name, name)
        self.side = QComboBox(self)
        self.side.addItems(["above", "below"])
        self.threshold = QDoubleSpinBox(self, decimals=4, minimum=-1e9, maximum=1e9, value=0.05)
        self.window = QComboBox(self)
        self.window.addItems(WINDOWS)
        self.window.setCurrentText("15m")
        self.min_rows = QSpinBox(self, minimum=0, maximum=10**9, value=20)
        self.cooldown = QSpinBox(self, minimum=0, maximum=30 * 24 * 60, value=5, suffix=" min")
        self.webhook = QLineEdit(self)
        self.webhook.setPlaceholderText("optional: https://… (stored sealed)")
        self.action = QComboBox(self)
        self.action.addItems(ACTIONS)
        form = QFormLayout()
        for label, widget in (("Name", self.name), ("Metric", self.metric), ("Model", self.model),
                              ("Fires when", self.side), ("Threshold", self.threshold),
                              ("Window", self.window), ("At least rows", self.min_rows),
                              ("Cooldown", self.cooldown), ("Webhook", self.webhook),
                              ("Action", self.action)):  # fmt: skip
            form.addRow(label, widget)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def spec(self) -> RuleSpec:
        """The rule as filled in (checked when it is stored)."""
        return RuleSpec(
            name=self.name.text().strip(), metric=self.metric.currentText(),
            op=">" if self.side.currentText() == "above" else "<",
            threshold=self.threshold.value(), model=self.model.currentData(),
            window=self.window.currentText(), min_rows=self.min_rows.value(),
            cooldown_s=self.cooldown.value() * 60.0, webhook=self.webhook.text().strip() or None,
            action=self.action.currentText(),
        )  # fmt: skip


def _table(columns: tuple[str, ...], parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setWordWrap(False)
    table.setAlternatingRowColors(True)
    return table
