"""The request log's panel: whose requests (a deployment picker), a search box, and the
table, live or filtered.

The live table (:attr:`RequestLogPanel.log`) is fed by the tab's poller and keeps
growing while a search is shown. A search runs in SQL through the project's full-text
index on the session's DB thread (never the GUI thread), limited to the newest
:data:`~lepton_desktop.gui.serving.ops.SEARCH_LIMIT` matches; its results take the
table's place (:attr:`RequestLogPanel.results`) and are searched again, at most once
a second, while new requests arrive. An answer to a search that was replaced since
(more typing, another deployment) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import Deployment, RequestRecord
from lepton_desktop.gui.serving import ops
from lepton_desktop.gui.serving.log_filter import DeploymentPicker, LogSearchBox
from lepton_desktop.gui.serving.request_log import RequestLogView
from lepton_desktop.gui.session import ProjectSession

#: While a search is shown, new requests run it again at most this often (ms).
RESEARCH_MS = 1000


class RequestLogPanel(QWidget):
    """The deployment picker, the search box and the log table.

    Signals:
        picked(int): the user chose to see this deployment's requests.
        requestActivated(RequestRecord): the user selected a request (live or found).
    """

    picked = Signal(int)
    requestActivated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self.viewed: Deployment | None = None
        self.deployments = DeploymentPicker(self)
        self.search = LogSearchBox(self)
        self.status = QLabel(self)
        self.status.setObjectName("searchStatus")
        # Its text (the words searched, an error) must never widen the column.
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.log = RequestLogView(self)
        self.results = RequestLogView(self)
        self.stack = QStackedWidget(self)
        self.searches = 0  # searches sent; an answer to an older one is dropped
        self._research = QTimer(self, singleShot=True, interval=RESEARCH_MS)
        self._build_layout()
        self.deployments.picked.connect(self.picked)
        self.log.requestActivated.connect(self.requestActivated)
        self.results.requestActivated.connect(self.requestActivated)
        self.search.searchChanged.connect(self._on_search_changed)
        self._research.timeout.connect(self.run_search)

    def _build_layout(self) -> None:
        self.stack.addWidget(self.log)
        self.stack.addWidget(self.results)
        # Two rows: a deployment's line (time, models, address, status) needs the width.
        picker_row = QHBoxLayout()
        picker_row.addWidget(QLabel("Requests of", self))
        picker_row.addWidget(self.deployments, 1)
        search_row = QHBoxLayout()
        search_row.addWidget(self.search, 3)
        search_row.addWidget(self.status, 2)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(picker_row)
        column.addLayout(search_row)
        column.addWidget(self.stack, 1)
        self.status.hide()

    @property
    def searching(self) -> bool:
        """Whether search results are shown (not the live log)."""
        return self.stack.currentWidget() is self.results

    def set_session(self, session: ProjectSession | None) -> None:
        """Show and search this project's requests from now on (None: no project)."""
        self.session = session
        self.deployments.set_deployments([])  # the project's own come with its first poll
        self._research.stop()

    def show_deployment(self, deployment: Deployment | None) -> None:
        """Another deployment's log from now on: the live rows go, the search runs on it."""
        self.viewed = deployment
        self.log.log.clear()
        self.deployments.show_current(deployment.id if deployment else None)
        if self.search.query:
            self.run_search()

    def on_poll(
        self,
        viewed: Deployment | None,
        records: Sequence[RequestRecord],
        deployments: Sequence[Deployment] | None,
    ) -> None:
        """One poll: the viewed log's newer rows, and the deployments when re-read."""
        self.viewed = viewed
        self.log.append(records)
        if deployments is not None:
            self.deployments.set_deployments(deployments)
        self.deployments.show_current(viewed.id if viewed else None)
        if records and self.search.query and not self._research.isActive():
            self._research.start()  # the search shown follows new requests

    def run_search(self) -> None:
        """Search the viewed deployment's log for the box's words."""
        text = self.search.query
        if self.session is None or self.viewed is None or not text:
            return
        self.searches += 1
        sent = self.searches
        ops.search_log(
            self.session, self.viewed.id, text,
            lambda records: self._on_found(sent, records),
            lambda exc: self._on_search_failed(sent, exc),
            self,
        )  # fmt: skip

    def _on_search_changed(self, text: str) -> None:
        if text:
            self.run_search()
            return
        self.searches += 1  # an answer still on its way is stale
        self._research.stop()
        self.status.hide()
        self.stack.setCurrentWidget(self.log)
        self.results.log.clear()

    def _on_found(self, sent: int, records: list[RequestRecord]) -> None:
        if sent != self.searches:
            return
        self.results.show_records(records)
        self.stack.setCurrentWidget(self.results)
        some = "the newest " if len(records) >= ops.SEARCH_LIMIT else ""
        noun = "request matches" if len(records) == 1 else "requests match"
        self._show_status(f"{some}{len(records):,} {noun} “{self.search.query}”")

    def _on_search_failed(self, sent: int, exc: BaseException) -> None:
        if sent != self.searches:
            return
        self.results.show_records([])
        self.stack.setCurrentWidget(self.results)
        self._show_status(f"Search failed: {exc}", error=True)

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text[:1].upper() + text[1:])
        self.status.setToolTip(self.status.text())
        self.status.setStyleSheet("color: #d64545;" if error else "")
        self.status.show()
