"""What core's feature modules need of an open project: its file and its connection.

The :class:`~lepton_desktop.core.project.Project` facade sits on top of the feature
packages (datasets, training, tuning, registry, serving, export) and hands each of them
a :class:`ProjectContext`; none of them imports the facade. A context belongs to the
thread that opened its connection, like the connection itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3


@dataclasses.dataclass(frozen=True)
class ProjectContext:
    """An open project file as the feature modules see it.

    Attributes:
        path: the ``.lepton`` file (workers and Optuna open their own connections to it).
        conn: this thread's connection (see :func:`~lepton_desktop.core.store.db.connect`).
    """

    path: Path
    conn: sqlite3.Connection
