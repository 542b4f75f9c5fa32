"""The Training tab's actions on runs, enabled by the state of the selected runs."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from lepton_desktop.core.entities import ModelVersion, Run
from lepton_desktop.gui.training.run_format import is_active
from lepton_desktop.gui.widgets.actions import make_action


class RunActions:
    """Train, Pause, Resume, Stop, Set as Champion, Archive and Delete.

    Args:
        parent: the tab that owns the actions (their shortcuts work while it is shown).
    """

    def __init__(self, parent: QWidget) -> None:
        self.train = make_action(parent, "&Train", "Queue a run with these settings and start "
                                 "its worker", "Ctrl+Return")
        self.pause = make_action(parent, "&Pause", "Pause the run after its current step")
        self.resume = make_action(parent, "&Resume", "Continue the run (from its last "
                                  "checkpoint if its worker is gone)")
        self.stop = make_action(parent, "&Stop", "Stop the run; it is still evaluated and "
                                "registered from its best epoch")
        self.champion = make_action(parent, "Set as &Champion", "Point the model's "
                                    "“champion” alias at this run's version")
        self.archive = make_action(parent, "&Archive", "Hide the run (its metrics and model "
                                   "stay; its checkpoints are freed)")
        self.delete = make_action(parent, "&Delete…", "Delete the run with its metrics, "
                                  "checkpoints and model version")

    def run_actions(self) -> list[QAction]:
        """The actions on selected runs, in menu order."""
        return [self.pause, self.resume, self.stop, self.champion, self.archive, self.delete]

    def update(
        self, runs: Sequence[Run], current: Run | None, stale: set[int],
        model: ModelVersion | None,
    ) -> None:
        """Enable what the selected runs (``current``: the focused one) allow."""
        is_stale = current is not None and current.id in stale
        status = current.status if current else ""
        self.pause.setEnabled(status == "running" and not is_stale)
        self.stop.setEnabled(status in ("running", "paused") and not is_stale)
        self.resume.setEnabled(current is not None and can_resume(current, is_stale))
        self.champion.setEnabled(model is not None and "champion" not in model.aliases)
        idle = bool(runs) and not any(is_active(r) and r.id not in stale for r in runs)
        self.archive.setEnabled(idle)
        archived = bool(runs) and all(r.archived for r in runs)
        self.archive.setText("Un&archive" if archived else "&Archive")
        self.delete.setEnabled(idle)

    def fill_menu(self, menu: QMenu) -> None:
        """The runs table's context menu."""
        menu.addActions([self.pause, self.resume, self.stop])
        menu.addSeparator()
        menu.addAction(self.champion)
        menu.addSeparator()
        menu.addActions([self.archive, self.delete])


def can_resume(run: Run, stale: bool) -> bool:
    """Paused runs continue in their worker; interrupted, stopped, failed or stale ones
    continue from their last checkpoint (archived runs have none). A run whose worker
    never started (still queued) has nothing to continue from."""
    if run.archived or run.status == "queued":
        return False
    return stale or run.resumable
