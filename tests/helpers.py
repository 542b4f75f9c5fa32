"""Assertions shared by tests: a project's observable state, to prove nothing changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def snapshot(path: Path) -> dict[str, Any]:
    """Everything a failed operation must leave as it was (read-only look)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = sorted(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )
        # A full-text index's shadow tables (``*_fts_data``, ``_idx``, ...) hold its b-tree
        # segments: a row inserted and deleted again leaves segments behind while the
        # index's documents (``*_fts`` itself, counted) are as before.
        counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables
                  if not _fts_shadow(t)}  # fmt: skip
        versions = conn.execute(
            "SELECT id, dataset_id, version, status, n_rows FROM dataset_versions ORDER BY id"
        ).fetchall()
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return {"tables": tables, "counts": counts, "versions": versions, "integrity": integrity}


def _fts_shadow(table: str) -> bool:
    return any(table.endswith(f"_fts_{part}") for part in ("data", "idx", "docsize", "config"))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """Write a small CSV file and return its path."""
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
