"""Forget requests…: clear what servers captured in a time range (``lepton-desktop forget``).

The user picks a range (from, to: local date and time, as the log shows them) and
optionally one model (those that answered requests, read when the dialog opens). The
work runs on the session's DB thread, 500 requests per transaction (core/privacy.py);
each transaction's progress reaches the bar through a queued signal. A range that
ends before it starts is refused before anything runs, and a range without requests
says so: nothing was written either way. The dialog cannot be closed while the work
runs (the progress has nowhere else to go).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDateTime, QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.session import ProjectSession

ALL_MODELS = "All models"
TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
DEFAULT_SPAN_DAYS = 1


class ProgressRelay(QObject):
    """A :class:`~lepton_desktop.core.progress.Reporter` that the DB thread calls; its
    signal carries ``(done, total)`` to the GUI thread (queued: it lives there)."""

    progressed = Signal(int, int)

    def update(self, done: int, total: int | None, message: str = "") -> None:
        """Called on the DB thread after each transaction."""
        self.progressed.emit(done, total or 0)


def result_text(result: dict[str, Any]) -> str:
    """``Forgot 12 requests: ...`` for the dialog and the tab's banner."""
    return (
        f"Forgot {result['requests']:,} request(s): {result['inputs_cleared']:,} captured "
        f"input(s) cleared, {result['feedback_deleted']:,} feedback label(s) deleted. "
        "Their lines (time, status, latency) stay counted."
    )


class ForgetRequestsDialog(QDialog):
    """Pick a time range (and a model), forget its requests, show what was forgotten.

    Signals:
        forgotten(dict): the result of a forget that found requests (``requests``,
            ``inputs_cleared``, ``feedback_deleted``).
    """

    forgotten = Signal(dict)

    def __init__(self, session: ProjectSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Forget Requests")
        self.setObjectName("forgetRequestsDialog")
        self.session = session
        self.running = False
        now = QDateTime.currentDateTime()
        self.since = self._time_edit(now.addDays(-DEFAULT_SPAN_DAYS))
        self.until = self._time_edit(now)
        self.model_box = QComboBox(self)
        self.model_box.addItem(ALL_MODELS, None)
        ops.load_logged_models(session, self.set_models, self)
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setObjectName("forgetMessage")
        self.relay = ProgressRelay(self)
        self.relay.progressed.connect(self._on_progress)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.forget_button = QPushButton("Forget", self)
        self.buttons.addButton(self.forget_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.forget_button.clicked.connect(self.forget)
        self._build()

    def _time_edit(self, moment: QDateTime) -> QDateTimeEdit:
        edit = QDateTimeEdit(moment, self)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat(TIME_FORMAT)
        return edit

    def _build(self) -> None:
        intro = QLabel(
            "Clear the inputs and outputs the server captured of every request logged in "
            "this range, and delete the labels sent back for them. This cannot be undone; "
            "the requests stay counted (time, status, latency) in the log and the charts.",
            self,
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        form.addRow("From", self.since)
        form.addRow("To (excluded)", self.until)
        form.addRow("Model", self.model_box)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

    def set_models(self, names: list[str]) -> None:
        """Offer these models (beside all of them)."""
        for name in names:
            if self.model_box.findData(name) < 0:
                self.model_box.addItem(name, name)

    def choose_model(self, name: str | None) -> None:
        """Forget only ``name``'s requests (None: every model's)."""
        self.model_box.setCurrentIndex(max(self.model_box.findData(name), 0))

    # -- the range ---------------------------------------------------------------------

    def span(self) -> tuple[float, float]:
        """``(since, until)`` in Unix seconds, as picked (local time)."""
        return (self.since.dateTime().toMSecsSinceEpoch() / 1000,
                self.until.dateTime().toMSecsSinceEpoch() / 1000)  # fmt: skip

    def set_span(self, since: float, until: float) -> None:
        """Pick this range (Unix seconds)."""
        self.since.setDateTime(QDateTime.fromMSecsSinceEpoch(round(since * 1000)))
        self.until.setDateTime(QDateTime.fromMSecsSinceEpoch(round(until * 1000)))

    def _range_words(self) -> str:
        model = self.model_box.currentData()
        words = f"between {self.since.text()} and {self.until.text()}"
        return words + (f" for {model}" if model else "")

    # -- running -----------------------------------------------------------------------

    def forget(self) -> None:
        """Check the range, then forget its requests on the DB thread."""
        since, until = self.span()
        if since >= until:
            self._show(f"“From” ({self.since.text()}) must be before “To” "
                       f"({self.until.text()}): nothing was forgotten.", error=True)  # fmt: skip
            return
        self._set_running(True)
        self._show("Forgetting…")
        self.progress.setRange(0, 0)  # busy until the first transaction reports
        self.progress.show()
        ops.forget_range(self.session, since, until, self.model_box.currentData(), self.relay,
                         self._on_done, self._on_failed)  # fmt: skip

    def _on_progress(self, done: int, total: int) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat("%v of %m requests")

    def _on_done(self, result: dict[str, Any]) -> None:
        self._set_running(False)
        self.progress.hide()
        if not result["requests"]:
            self._show(f"No request was logged {self._range_words()}: nothing was "
                       "forgotten.", error=True)  # fmt: skip
            return
        self._show(result_text(result))
        self.forgotten.emit(result)

    def _on_failed(self, exc: BaseException) -> None:
        self._set_running(False)
        self.progress.hide()
        self._show(f"Forgetting failed: {exc}", error=True)

    def _set_running(self, running: bool) -> None:
        self.running = running
        for widget in (self.forget_button, self.since, self.until, self.model_box):
            widget.setEnabled(not running)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(not running)

    def _show(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #d64545;" if error else "")
        self.message.setProperty("error", error)
        self.adjustSize()  # room for the message's lines

    def reject(self) -> None:
        """Close, unless the work runs (its progress and result come here)."""
        if not self.running:
            super().reject()
