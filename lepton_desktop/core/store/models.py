"""The model registry: named models, numbered versions, aliases (MLflow's idea)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from lepton_desktop.core.entities import ModelVersion
from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.names import check_name
from lepton_desktop.core.store.db import transaction

_COLUMNS = (
    "v.id, v.model_id, m.name, v.version, v.run_id, v.dataset_version_id, v.arch, v.task, "
    "v.metrics, v.params, v.pipeline, v.signature, v.notes, v.archived, v.created_at"
)
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _version(conn: sqlite3.Connection, row: Sequence[Any]) -> ModelVersion:
    aliases = tuple(
        r[0]
        for r in conn.execute(
            "SELECT alias FROM model_aliases WHERE version_id = ? ORDER BY alias", (row[0],)
        )
    )
    return ModelVersion(
        id=row[0],
        model_id=row[1],
        name=row[2],
        version=row[3],
        run_id=row[4],
        dataset_version_id=row[5],
        arch=row[6],
        task=row[7],
        metrics=json.loads(row[8]),
        params=json.loads(row[9]),
        pipeline=json.loads(row[10]),
        signature=json.loads(row[11]),
        notes=row[12],
        archived=bool(row[13]),
        aliases=aliases,
        created_at=row[14],
    )


def register(
    conn: sqlite3.Connection,
    name: str,
    *,
    weights: bytes,
    arch: str,
    task: str,
    run_id: int | None = None,
    dataset_version_id: int | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    pipeline: list[dict[str, Any]] | None = None,
    signature: dict[str, Any] | None = None,
) -> ModelVersion:
    """Add the next version of model ``name`` (created on first use).

    A run registers one version: registering again for the same ``run_id`` (a run
    resumed after a kill that came right after its registration) returns the version
    it has. The look and the insert share one write transaction, so two processes
    cannot both register.
    """
    check_name(name, "model name")
    with transaction(conn):
        registered = _version_of_run(conn, run_id)
        if registered is not None:
            return get(conn, registered)
        row = conn.execute("SELECT id FROM models WHERE name = ?", (name,)).fetchone()
        model_id = (
            row[0]
            if row
            else conn.execute(
                "INSERT INTO models (name, created_at) VALUES (?, ?)", (name, time.time())
            ).lastrowid
        )
        number = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_id = ?",
            (model_id,),
        ).fetchone()[0]
        cur = conn.execute(
            "INSERT INTO model_versions (model_id, version, run_id, dataset_version_id, arch, "
            "task, metrics, params, pipeline, signature, weights, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                model_id,
                number,
                run_id,
                dataset_version_id,
                arch,
                task,
                json.dumps(metrics or {}),
                json.dumps(params or {}),
                json.dumps(pipeline or []),
                json.dumps(signature or {}),
                weights,
                time.time(),
            ),
        )
    return get(conn, int(cur.lastrowid or 0))


def _version_of_run(conn: sqlite3.Connection, run_id: int | None) -> int | None:
    if run_id is None:
        return None
    row = conn.execute(
        "SELECT id FROM model_versions WHERE run_id = ? ORDER BY id LIMIT 1", (run_id,)
    ).fetchone()
    return None if row is None else int(row[0])


def get(conn: sqlite3.Connection, version_id: int) -> ModelVersion:
    """A model version by id. Raises NotFoundError."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id "
        "WHERE v.id = ?",
        (version_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no model version {version_id}")
    return _version(conn, row)


def list_versions(
    conn: sqlite3.Connection, *, include_archived: bool = True
) -> list[ModelVersion]:
    """Every model version, by name then version."""
    where = "" if include_archived else "WHERE v.archived = 0"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id {where} "
        "ORDER BY m.name, v.version"
    ).fetchall()
    return [_version(conn, r) for r in rows]


def tuned_version(conn: sqlite3.Connection, study: str, trial: int) -> ModelVersion | None:
    """The version registered for trial ``trial`` of study ``study`` (its lineage), if any.

    An archived version does not count: its owner retired it.
    """
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id "
        "WHERE json_extract(v.params, '$.study') = ? AND json_extract(v.params, '$.trial') = ? "
        "AND v.archived = 0 ORDER BY v.id LIMIT 1",
        (study, trial),
    ).fetchone()
    return None if row is None else _version(conn, row)


def resolve(conn: sqlite3.Connection, ref: str) -> ModelVersion:
    """``name`` (latest unarchived), ``name:3`` or ``name@alias``. Raises NotFoundError."""
    base = (
        f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id = v.model_id "
        "WHERE m.name = ?"
    )
    if "@" in ref:
        name, alias = ref.split("@", 1)
        row = conn.execute(
            base + " AND v.id = (SELECT a.version_id FROM model_aliases a WHERE "
            "a.model_id = m.id AND a.alias = ?)",
            (name, alias),
        ).fetchone()
    elif ":" in ref and ref.rsplit(":", 1)[1].isdigit():
        name, number = ref.rsplit(":", 1)
        row = conn.execute(base + " AND v.version = ?", (name, int(number))).fetchone()
    else:
        row = conn.execute(
            base + " AND v.archived = 0 ORDER BY v.version DESC LIMIT 1", (ref,)
        ).fetchone()
    if row is None:
        known = ", ".join(v.ref for v in list_versions(conn)) or "none yet"
        raise NotFoundError(f"no model {ref!r} (registered: {known})")
    return _version(conn, row)


def registry_stamp(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """A cheap fingerprint of the registry: it changes when a version is added, deleted,
    archived or restored, an alias moves, or a model's personal-data capture is switched
    (a running server polls it every second)."""
    versions = conn.execute(
        "SELECT COALESCE(MAX(id), 0), COUNT(*), "
        "COALESCE(GROUP_CONCAT(CASE WHEN archived THEN id END), '') FROM model_versions"
    ).fetchone()
    aliases = conn.execute(
        "SELECT model_id, alias, version_id FROM model_aliases ORDER BY model_id, alias"
    ).fetchall()
    # The models opted in to keep personal data in captured inputs: the server's
    # redaction follows the setting as it follows an alias.
    capture = conn.execute(
        "SELECT value FROM lepton_meta WHERE key = 'capture_pii_models'"
    ).fetchone()
    return (*versions, tuple(aliases), capture[0] if capture else "")


def weights(conn: sqlite3.Connection, version_id: int) -> bytes:
    """The serialized weights (a ``torch.save`` state dict) of a version."""
    row = conn.execute("SELECT weights FROM model_versions WHERE id = ?", (version_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no model version {version_id}")
    return bytes(row[0])


def set_alias(conn: sqlite3.Connection, version: ModelVersion, alias: str) -> None:
    """Point ``alias`` (e.g. ``champion``) of the version's model at this version."""
    check_name(alias, "alias")
    if not _ALIAS.fullmatch(alias):
        raise InvalidOptionError(f"alias {alias!r}: use letters, digits, '-' or '_'")
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO model_aliases (model_id, alias, version_id) VALUES (?, ?, ?)",
            (version.model_id, alias, version.id),
        )


def remove_alias(conn: sqlite3.Connection, model_name: str, alias: str) -> None:
    """Drop an alias of a model (no error if it does not exist)."""
    with transaction(conn):
        conn.execute(
            "DELETE FROM model_aliases WHERE alias = ? AND model_id = "
            "(SELECT id FROM models WHERE name = ?)",
            (alias, model_name),
        )


def update(
    conn: sqlite3.Connection,
    version_id: int,
    *,
    notes: str | None = None,
    archived: bool | None = None,
) -> None:
    """Change a version's notes or archived flag."""
    with transaction(conn):
        if notes is not None:
            conn.execute("UPDATE model_versions SET notes = ? WHERE id = ?", (notes, version_id))
        if archived is not None:
            conn.execute(
                "UPDATE model_versions SET archived = ? WHERE id = ?", (int(archived), version_id)
            )


def delete_for_run(conn: sqlite3.Connection, run_id: int) -> int:
    """Delete the model versions a run registered (their weights go with them)."""
    with transaction(conn):
        cur = conn.execute("DELETE FROM model_versions WHERE run_id = ?", (run_id,))
        conn.execute(
            "DELETE FROM models WHERE NOT EXISTS "
            "(SELECT 1 FROM model_versions v WHERE v.model_id = models.id)"
        )
    return cur.rowcount
