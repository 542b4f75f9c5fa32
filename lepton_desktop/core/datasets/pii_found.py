"""What was found of personal data in a version's columns, read without pyarrow.

The scan (:mod:`~lepton_desktop.core.datasets.pii`) stores each flagged column's kind
and share in its statistics (``stats["pii"]``); ``info``, the warnings, the model card
and the server's redaction read them back through this module, which imports nothing
heavy (a server starting, ``info`` answering).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

#: The kinds of personal data found, most specific first (a cell is counted once).
KINDS = ("email", "iban", "card", "national_id", "ip", "date_of_birth", "phone", "name")


@dataclasses.dataclass(frozen=True)
class Finding:
    """A column holding personal data: its kind and the share of non-empty cells."""

    column: str
    kind: str
    share: float

    def to_dict(self) -> dict[str, Any]:
        """``{column, kind, share}`` as ``info --json`` lists it."""
        return {"column": self.column, "kind": self.kind, "share": round(self.share, 4)}


def findings_of(columns: Any) -> list[Finding]:
    """The findings stored in a version's column statistics (``stats["pii"]``)."""
    found = []
    for column in columns:
        pii = column.stats.get("pii")
        if isinstance(pii, dict) and pii.get("kind") in KINDS:
            found.append(Finding(column.name, str(pii["kind"]), float(pii.get("share", 0.0))))
    return found


def personal_columns_of(conn: sqlite3.Connection, version_id: int | None) -> dict[str, str]:
    """Column -> kind of personal data along a dataset version's chain (itself, parents).

    A column prepared away (hashed, dropped) in a later version still held personal
    data in the raw rows: what a client sends to a model trained on it is raw.
    """
    from lepton_desktop.core.errors import NotFoundError
    from lepton_desktop.core.store import datasets as dataset_store

    found: dict[str, str] = {}
    while version_id is not None:
        try:
            version = dataset_store.get_version(conn, version_id)
        except NotFoundError:
            break
        for finding in findings_of(version.columns):
            found.setdefault(finding.column, finding.kind)
        version_id = version.parent_id
    return found


def describe(findings: list[Finding]) -> str:
    """One sentence for a warning: which columns hold which kind of personal data."""
    parts = ", ".join(f"{f.column} ({f.kind.replace('_', ' ')}, {f.share:.0%})" for f in findings)
    return (
        f"personal data found in {len(findings)} column(s): {parts}; drop, hash or mask them "
        "with prep --pii before sharing or training"
    )
