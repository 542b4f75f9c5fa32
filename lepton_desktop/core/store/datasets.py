"""Datasets, their immutable versions, column metadata and the row tables.

Each version's rows live in their own table ``ds_<version id>`` with columns
``c0 .. cN`` (user column names may be anything, so they are kept in
``dataset_columns``), an optional ``_split`` (0 train, 1 val, 2 test) and, for image
datasets, an ``_image`` blob. Row ``i`` (0-based) has ``rowid = i + 1``, so a page of
the preview is a primary-key range scan, whatever the table's size.

A version is written in short transactions while ``status = 'importing'`` (other
writers, heartbeats included, go on meanwhile) and becomes visible only when
:func:`finish_version` flips it to ``ready``. A failed, cancelled or killed import is
removed with :func:`discard_version`, so nothing half-imported is ever seen.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from lepton_desktop.core.entities import SPLIT_NAMES, Column, DatasetVersion, Histogram
from lepton_desktop.core.errors import InvalidOptionError, LeptonError, NotFoundError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.names import check_name
from lepton_desktop.core.store.db import transaction

#: Most columns a version may have. A version's rows are one SQLite table with a
#: column per dataset column plus ``_split`` and ``_image``; SQLite's compiled-in
#: limit is 2,000 columns per table (SQLITE_MAX_COLUMN).
MAX_COLUMNS = 2000 - 2
_VERSION_COLUMNS = (
    "v.id, v.dataset_id, d.name, v.version, d.kind, v.status, v.source, v.n_rows, v.target, "
    "v.time_column, v.parent_id, v.operations, v.pipeline, v.splits, v.created_at"
)


def _version(conn: sqlite3.Connection, row: Sequence[Any]) -> DatasetVersion:
    cols = conn.execute(
        "SELECT position, name, dtype, stats FROM dataset_columns WHERE version_id = ? "
        "ORDER BY position",
        (row[0],),
    ).fetchall()
    return DatasetVersion(
        id=row[0],
        dataset_id=row[1],
        name=row[2],
        version=row[3],
        kind=row[4],
        status=row[5],
        source=row[6],
        n_rows=row[7],
        target=row[8],
        time_column=row[9],
        parent_id=row[10],
        operations=json.loads(row[11]),
        pipeline=json.loads(row[12]),
        splits=json.loads(row[13]) if row[13] else None,
        created_at=row[14],
        columns=tuple(Column(p, n, t, json.loads(s)) for p, n, t, s in cols),
    )


def list_versions(conn: sqlite3.Connection) -> list[DatasetVersion]:
    """Return every ready version, grouped by dataset name, oldest version first."""
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions v JOIN datasets d "
        "ON d.id = v.dataset_id WHERE v.status = 'ready' ORDER BY d.name, v.version"
    ).fetchall()
    return [_version(conn, r) for r in rows]


def get_version(conn: sqlite3.Connection, version_id: int) -> DatasetVersion:
    """Return a version by id (ready or not). Raises NotFoundError."""
    row = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions v JOIN datasets d "
        "ON d.id = v.dataset_id WHERE v.id = ?",
        (version_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no dataset version with id {version_id}")
    return _version(conn, row)


def resolve(conn: sqlite3.Connection, ref: str) -> DatasetVersion:
    """Return the version named ``name`` (its latest) or ``name:version``.

    Raises:
        NotFoundError: no such dataset or version; the message lists what exists.
    """
    name, _, number = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if number and not number.isdigit():
        name, number = ref, ""
    sql = (
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions v JOIN datasets d "
        "ON d.id = v.dataset_id WHERE d.name = ? AND v.status = 'ready'"
    )
    if number:
        row = conn.execute(sql + " AND v.version = ?", (name, int(number))).fetchone()
    else:
        row = conn.execute(sql + " ORDER BY v.version DESC LIMIT 1", (name,)).fetchone()
    if row is None:
        known = sorted({v.ref for v in list_versions(conn)})
        hint = ", ".join(known) if known else "the project has no datasets yet"
        raise NotFoundError(f"no dataset {ref!r} (known: {hint})")
    return _version(conn, row)


def begin_version(
    conn: sqlite3.Connection,
    *,
    name: str,
    kind: str,
    source: str,
    sql_types: Sequence[str],
    parent_id: int | None = None,
    job_id: int | None = None,
    with_image: bool = False,
) -> int:
    """Create a hidden ``importing`` version and its empty row table; return its id.

    The dataset is created on first use. Importing under an existing name adds a
    version, which must be of the same kind.
    """
    check_name(name, "dataset name")
    check_width(len(sql_types), f"dataset {name!r}")
    with transaction(conn):
        dataset_id = _dataset_id(conn, name, kind)
        cur = conn.execute(
            "INSERT INTO dataset_versions (dataset_id, version, parent_id, status, source, "
            "created_at, job_id) VALUES (?, -1, ?, 'importing', ?, ?, ?)",
            (dataset_id, parent_id, source, time.time(), job_id),
        )
        version_id = int(cur.lastrowid or 0)
        # A temporary negative number keeps UNIQUE(dataset_id, version) satisfied until
        # finish_version hands out the real, gap-free number.
        conn.execute(
            "UPDATE dataset_versions SET version = ? WHERE id = ?", (-version_id, version_id)
        )
        cols = [f"c{i} {t}" for i, t in enumerate(sql_types)] + ["_split INTEGER"]
        if with_image:
            cols.append("_image BLOB")
        conn.execute(f"CREATE TABLE ds_{version_id} ({', '.join(cols)})")
    return version_id


def check_kind(conn: sqlite3.Connection, name: str, kind: str) -> None:
    """Refuse ``kind`` data under ``name`` when that dataset holds another kind (reads only).

    Raises:
        InvalidOptionError: the dataset exists and is of another kind.
    """
    row = conn.execute("SELECT kind FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != kind:
        raise InvalidOptionError(
            f"dataset {name!r} holds {row[0]} data; choose another name for {kind} data"
        )


def check_width(
    columns: int, what: str, error: type[LeptonError] = InvalidOptionError
) -> None:
    """Refuse a version of more than :data:`MAX_COLUMNS` columns, before its table exists.

    Raises:
        InvalidOptionError: (or ``error``) naming ``what`` (the file, the dataset), its
            width and the limit.
    """
    if columns > MAX_COLUMNS:
        raise error(
            f"{what}: {columns:,} columns; a dataset holds at most {MAX_COLUMNS:,} "
            "(keep the columns you need, or reshape the table into fewer, longer ones)"
        )


def _dataset_id(conn: sqlite3.Connection, name: str, kind: str) -> int:
    check_kind(conn, name, kind)
    row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        cur = conn.execute(
            "INSERT INTO datasets (name, kind, created_at) VALUES (?, ?, ?)",
            (name, kind, time.time()),
        )
        return int(cur.lastrowid or 0)
    return int(row[0])


def insert_rows(
    conn: sqlite3.Connection, version_id: int, width: int, rows: Iterable[Sequence[Any]]
) -> None:
    """Append rows (tuples of ``width`` values, then split and image if present)."""
    marks = ", ".join("?" * width)
    with transaction(conn):
        conn.executemany(f"INSERT INTO ds_{version_id} VALUES ({marks})", rows)
    kill_point("after-rows")


def insert_values(
    conn: sqlite3.Connection, version_id: int, width: int, rows: Iterable[Sequence[Any]]
) -> None:
    """Append rows of ``width`` column values only (``_split`` stays NULL).

    A fresh import has no split; not binding a column of NULLs for it saves about a
    fifth of the import's CPU time.
    """
    names = ", ".join(f"c{i}" for i in range(width))
    marks = ", ".join("?" * width)
    with transaction(conn):
        conn.executemany(f"INSERT INTO ds_{version_id} ({names}) VALUES ({marks})", rows)
    kill_point("after-rows")


def finish_version(
    conn: sqlite3.Connection,
    version_id: int,
    *,
    columns: Sequence[Column],
    target: str | None = None,
    time_column: str | None = None,
    operations: list[dict[str, Any]] | None = None,
    pipeline: list[dict[str, Any]] | None = None,
) -> DatasetVersion:
    """Record columns and counts, number the version and make it visible."""
    with transaction(conn):
        n_rows = conn.execute(f"SELECT COUNT(*) FROM ds_{version_id}").fetchone()[0]
        splits = _split_counts(conn, version_id)
        conn.executemany(
            "INSERT INTO dataset_columns (version_id, position, name, dtype, stats) "
            "VALUES (?, ?, ?, ?, ?)",
            [(version_id, c.position, c.name, c.dtype, json.dumps(c.stats)) for c in columns],
        )
        dataset_id = conn.execute(
            "SELECT dataset_id FROM dataset_versions WHERE id = ?", (version_id,)
        ).fetchone()[0]
        number = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions "
            "WHERE dataset_id = ? AND status = 'ready'",
            (dataset_id,),
        ).fetchone()[0]
        conn.execute(
            "UPDATE dataset_versions SET status = 'ready', version = ?, n_rows = ?, "
            "target = ?, time_column = ?, operations = ?, pipeline = ?, splits = ? WHERE id = ?",
            (
                number,
                n_rows,
                target,
                time_column,
                json.dumps(operations or []),
                json.dumps(pipeline or []),
                json.dumps(splits) if splits else None,
                version_id,
            ),
        )
    return get_version(conn, version_id)


def _split_counts(conn: sqlite3.Connection, version_id: int) -> dict[str, int] | None:
    rows = conn.execute(
        f"SELECT _split, COUNT(*) FROM ds_{version_id} WHERE _split IS NOT NULL GROUP BY _split"
    ).fetchall()
    if not rows:
        return None
    counts = dict.fromkeys(SPLIT_NAMES, 0)
    for split, count in rows:
        counts[SPLIT_NAMES[split]] = count
    return counts


def sort_rows(conn: sqlite3.Connection, version_id: int, column: Column) -> None:
    """Rewrite the rows of an unfinished version in ``column`` order (rowids 1..n)."""
    table = f"ds_{version_id}"
    with transaction(conn):
        create_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_unsorted")
        conn.execute(create_sql)
        conn.execute(
            f"INSERT INTO {table} SELECT * FROM {table}_unsorted ORDER BY {column.sql_name}, rowid"
        )
        conn.execute(f"DROP TABLE {table}_unsorted")


def repeated_values(
    conn: sqlite3.Connection, version_id: int, column: Column
) -> tuple[int, Any]:
    """How many rows repeat an earlier row's value of ``column``, and the first such value."""
    col, table = column.sql_name, f"ds_{version_id}"
    count = conn.execute(f"SELECT COUNT({col}) - COUNT(DISTINCT {col}) FROM {table}").fetchone()
    if not count[0]:
        return 0, None
    example = conn.execute(
        f"SELECT {col} FROM {table} GROUP BY {col} HAVING COUNT(*) > 1 ORDER BY {col} LIMIT 1"
    ).fetchone()
    return int(count[0]), example[0]


def discard_version(conn: sqlite3.Connection, version_id: int) -> None:
    """Remove an unfinished version, its rows, and its dataset if nothing else is left."""
    with transaction(conn):
        row = conn.execute(
            "SELECT dataset_id FROM dataset_versions WHERE id = ?", (version_id,)
        ).fetchone()
        conn.execute(f"DROP TABLE IF EXISTS ds_{version_id}")
        conn.execute("DELETE FROM dataset_versions WHERE id = ?", (version_id,))
        if row is not None:
            conn.execute(
                "DELETE FROM datasets WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM dataset_versions WHERE dataset_id = ?)",
                (row[0], row[0]),
            )


def unfinished_versions(
    conn: sqlite3.Connection, job_ids: Sequence[int] | None = None
) -> list[int]:
    """Ids of ``importing`` versions (of the given jobs, or with no live job at all)."""
    if job_ids is not None:
        marks = ", ".join("?" * len(job_ids))
        sql = f"SELECT id FROM dataset_versions WHERE status = 'importing' AND job_id IN ({marks})"
        return [r[0] for r in conn.execute(sql, list(job_ids))]
    sql = (
        "SELECT v.id FROM dataset_versions v LEFT JOIN jobs j ON j.id = v.job_id "
        "WHERE v.status = 'importing' AND (j.id IS NULL OR j.status NOT IN ('queued', 'running'))"
    )
    return [r[0] for r in conn.execute(sql)]


def delete_dataset(conn: sqlite3.Connection, name: str) -> None:
    """Delete a dataset with all its versions and rows. Raises NotFoundError."""
    with transaction(conn):
        row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no dataset {name!r}")
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM dataset_versions WHERE dataset_id = ?", (row[0],)
            )
        ]
        for version_id in ids:
            conn.execute(f"DROP TABLE IF EXISTS ds_{version_id}")
        conn.execute(
            "UPDATE dataset_versions SET parent_id = NULL WHERE parent_id IN "
            f"({', '.join('?' * len(ids))})",
            ids,
        )
        conn.execute("DELETE FROM datasets WHERE id = ?", (row[0],))


def fetch_rows(
    conn: sqlite3.Connection, version: DatasetVersion, start: int, count: int
) -> list[tuple[Any, ...]]:
    """Rows ``start .. start+count-1`` (0-based) with the split index last."""
    cols = ", ".join([c.sql_name for c in version.columns] + ["_split"])
    return conn.execute(
        f"SELECT {cols} FROM {version.table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
        (start, start + count),
    ).fetchall()


def iter_batches(
    conn: sqlite3.Connection, version: DatasetVersion, batch_size: int = 50_000
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield all rows in order, ``batch_size`` at a time (values, then split)."""
    for start in range(0, version.n_rows, batch_size):
        yield fetch_rows(conn, version, start, batch_size)


def fetch_image(conn: sqlite3.Connection, version: DatasetVersion, row: int) -> bytes:
    """The encoded image (PNG or JPEG bytes) of row ``row`` (0-based)."""
    found = conn.execute(
        f"SELECT _image FROM {version.table} WHERE rowid = ?", (row + 1,)
    ).fetchone()
    if found is None:
        raise NotFoundError(f"{version.ref} has no row {row}")
    return bytes(found[0])


def histogram(
    conn: sqlite3.Connection, version: DatasetVersion, column: Column, bins: int = 30
) -> Histogram:
    """Equal-width bins of a numeric column, or the 30 most common values otherwise."""
    col = column.sql_name
    if column.dtype != "numeric":
        rows = conn.execute(
            f"SELECT {col}, COUNT(*) AS n FROM {version.table} WHERE {col} IS NOT NULL "
            f"GROUP BY {col} ORDER BY n DESC LIMIT ?",
            (bins,),
        ).fetchall()
        return Histogram(labels=[str(r[0]) for r in rows], counts=[r[1] for r in rows])
    low, high = conn.execute(f"SELECT MIN({col}), MAX({col}) FROM {version.table}").fetchone()
    if low is None:
        return Histogram(labels=[], counts=[], edges=[])
    width = (high - low) / bins if high > low else 1.0
    rows = conn.execute(
        f"SELECT MIN(CAST(({col} - ?) / ? AS INTEGER), ?), COUNT(*) FROM {version.table} "
        f"WHERE {col} IS NOT NULL GROUP BY 1",
        (low, width, bins - 1),
    ).fetchall()
    counts = [0] * bins
    for index, count in rows:
        counts[int(index)] += count
    edges = [low + i * width for i in range(bins + 1)]
    labels = [f"{edges[i]:.4g}" for i in range(bins)]
    return Histogram(labels=labels, counts=counts, edges=edges)


def series(
    conn: sqlite3.Connection, version: DatasetVersion, columns: Sequence[Column], max_points: int
) -> list[tuple[Any, ...]]:
    """Evenly thinned rows of ``columns`` (at most about ``max_points``), for line charts."""
    step = max(1, version.n_rows // max_points)
    cols = ", ".join(c.sql_name for c in columns)
    return conn.execute(
        f"SELECT {cols} FROM {version.table} WHERE (rowid - 1) % ? = 0 ORDER BY rowid", (step,)
    ).fetchall()


def label_counts(
    conn: sqlite3.Connection, version: DatasetVersion, column: Column
) -> dict[str, int]:
    """How many rows carry each value of ``column`` (class counts)."""
    col = column.sql_name
    rows = conn.execute(
        f"SELECT {col}, COUNT(*) FROM {version.table} GROUP BY {col} ORDER BY {col}"
    ).fetchall()
    return {str(k): n for k, n in rows}


def iter_images(
    conn: sqlite3.Connection, version: DatasetVersion, batch_size: int = 256
) -> Iterator[list[bytes]]:
    """Yield the encoded images of an image dataset in row order, ``batch_size`` at a time."""
    for start in range(0, version.n_rows, batch_size):
        rows = conn.execute(
            f"SELECT _image FROM {version.table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
            (start, start + batch_size),
        ).fetchall()
        yield [bytes(r[0]) for r in rows]


def copy_rows(
    conn: sqlite3.Connection,
    source: DatasetVersion,
    version_id: int,
    picks: Iterable[tuple[int, int | None]],
) -> None:
    """Append rows of ``source`` to the unfinished version ``version_id``, inside SQLite.

    Used for image datasets, so that blobs never travel through Python. The target
    table must have the same columns as ``source`` (plus ``_split`` and ``_image``).

    Args:
        conn: the project's connection.
        source: the version the rows come from.
        version_id: the unfinished version being written.
        picks: ``(source row, new split)`` pairs (0-based rows, split 0/1/2 or None),
            in the order the rows should have in the new version.
    """
    # The new split is a bound parameter in the select list, between values and image.
    cols = [c.sql_name for c in source.columns] + ["?"]
    if source.kind == "images":
        cols.append("_image")
    selected = ", ".join(cols)
    sql = f"INSERT INTO ds_{version_id} SELECT {selected} FROM {source.table} WHERE rowid = ?"
    with transaction(conn):
        conn.executemany(sql, ((split, row + 1) for row, split in picks))
