"""The open project's tabs, built the first time a project is shown (not at start).

The five tabs hold some thirty pyqtgraph plots: building them (and importing their
modules and pyqtgraph) takes longer than everything else the window does at start.
The window is painted with its start page first; a project's tabs follow when one
opens (on the session's DB thread), so the first paint does not wait for them.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QTabWidget, QWidget

from lepton_desktop.gui.datasets.tab import DatasetsTab
from lepton_desktop.gui.monitoring.tab import MonitoringTab
from lepton_desktop.gui.serving.tab import ServingTab
from lepton_desktop.gui.theme import apply_chart_colours
from lepton_desktop.gui.training.tab import TrainingTab
from lepton_desktop.gui.tuning.tab import TuningTab

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

#: Libraries the tabs need later (a study's trials, its importances: seconds to import),
#: imported on a background thread a moment after the tabs exist, so that their first
#: use does not wait for them and the first paint did not either.
WARM_UP = ("optuna", "optuna.importance")
WARM_UP_AFTER_MS = 1500


class Workspace(QTabWidget):
    """Datasets, Training, Tuning, Serving and Monitoring, for one session at a time.

    Args:
        parent: the main window.
        warm_up_now: import :data:`WARM_UP` now (a window built at once, whose first
            paint does not wait for this); otherwise on a background thread soon after.
    """

    def __init__(self, parent: QWidget, *, warm_up_now: bool = False) -> None:
        super().__init__(parent)
        apply_chart_colours(QApplication.palette())
        self.datasets_tab = DatasetsTab(self)
        self.addTab(self.datasets_tab, "Datasets")
        self.training_tab = TrainingTab(self)
        self.addTab(self.training_tab, "Training")
        self.tuning_tab = TuningTab(self)
        self.addTab(self.tuning_tab, "Tuning")
        self.serving_tab = ServingTab(self)
        self.addTab(self.serving_tab, "Serving")
        self.monitoring_tab = MonitoringTab(self)
        self.addTab(self.monitoring_tab, "Monitoring")
        if warm_up_now:
            _warm_up()
        else:
            QTimer.singleShot(WARM_UP_AFTER_MS, self, _start_warm_up)

    def set_session(self, session: ProjectSession | None) -> None:
        """Show ``session`` (or nothing) in every tab."""
        for tab in (self.datasets_tab, self.training_tab, self.tuning_tab, self.serving_tab,
                    self.monitoring_tab):  # fmt: skip
            tab.set_session(session)


def _start_warm_up() -> None:
    threading.Thread(target=_warm_up, name="lepton-warm-up", daemon=True).start()


def _warm_up() -> None:
    for name in WARM_UP:
        importlib.import_module(name)
