"""CSV import into SQLite: Lepton's streaming import against pandas and sqlite-utils.

Run from the repository root::

    .venv/bin/python -m bench.import_bench              # 1,000,000 rows x 20 columns
    .venv/bin/python -m bench.import_bench --rows 100000   # a quick run

A seeded CSV (14 float, 3 integer, 2 categorical string columns and an integer
target, with some empty cells) is generated once, then each method imports it into
a fresh SQLite file in its own fresh interpreter, so peak memory is that method's
alone:

- ``lepton``: ``Project.create(db)`` then ``project.import_dataset(csv, ...)``, the
  code path behind ``lepton-desktop import``;
- ``pandas``: ``pandas.read_csv`` then ``DataFrame.to_sql`` (defaults, ``index=False``);
- ``sqlite-utils``: ``csv.DictReader`` into ``Table.insert_all`` through a
  ``TypeTracker``, then ``Table.transform`` to the detected types: what
  ``sqlite-utils insert --csv --detect-types`` does.

Timing covers the work only (modules are imported before the clock starts) and rows
are counted in the written table afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench._common import (
    Measurement,
    Stopwatch,
    emit_result,
    machine_line,
    markdown_table,
    peak_rss_mb,
    run_child,
)

MODULE = "bench.import_bench"
METHODS = ("lepton", "pandas", "sqlite-utils")
ANCHOR = "pandas"
MEMORY_GOAL_MB = 1024
N_FLOAT, N_INT = 14, 3
MISSING_FRACTION = 0.01


# -- the data --------------------------------------------------------------------


def generate_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write a seeded ``rows`` x 20 CSV with mixed types and ~1% empty cells.

    Columns: ``f0..f13`` floats (6 decimals), ``i0..i2`` integers, ``cat0`` (5
    colours) and ``cat1`` (40 codes) strings, and ``target`` (0, 1 or 2).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(N_FLOAT):
        values = np.round(rng.normal(loc=i, scale=1 + i, size=rows), 6)
        # Odd-numbered float columns have gaps: a mix of complete and gappy columns.
        columns[f"f{i}"] = pa.array(values, mask=_missing(rng, rows, gappy=i % 2 == 1))
    for i in range(N_INT):
        values = rng.integers(0, 10 ** (i + 2), size=rows)
        # One integer column has empty cells, as exported databases often do.
        columns[f"i{i}"] = pa.array(values, mask=_missing(rng, rows, gappy=i == 2))
    colours = np.array(["red", "green", "blue", "amber", "violet"])
    codes = np.array([f"C{n:03d}" for n in range(40)])
    cat0 = colours[rng.integers(0, len(colours), rows)]
    columns["cat0"] = pa.array(cat0, mask=_missing(rng, rows, gappy=True))
    columns["cat1"] = pa.array(codes[rng.integers(0, len(codes), rows)])
    columns["target"] = pa.array(rng.integers(0, 3, size=rows))
    pacsv.write_csv(pa.table(columns), path)


def _missing(rng: np.random.Generator, rows: int, gappy: bool) -> np.ndarray | None:
    # A null mask with about MISSING_FRACTION empty cells, or None for a full column.
    return rng.random(rows) < MISSING_FRACTION if gappy else None


# -- the methods (each runs in its own child process) -----------------------------


def run_lepton(csv_path: Path, db_path: Path) -> tuple[Stopwatch, int, str]:
    """Our import, exactly as ``lepton-desktop import`` runs it (minus the job row)."""
    from lepton_desktop.core.datasets import tabular  # noqa: F401  (import before the clock)
    from lepton_desktop.core.project import Project

    with Stopwatch() as clock, Project.create(db_path) as project:
        version = project.import_dataset(csv_path, "bench", target="target")
    return clock, _count(db_path, version.table), "Project.import_dataset (streaming pyarrow)"


def run_pandas(csv_path: Path, db_path: Path) -> tuple[Stopwatch, int, str]:
    """pandas' everyday route: the whole file into a DataFrame, then ``to_sql``."""
    import pandas as pd

    with Stopwatch() as clock:
        frame = pd.read_csv(csv_path)
        conn = sqlite3.connect(db_path)
        try:
            frame.to_sql("t", conn, index=False)
            conn.commit()
        finally:
            conn.close()
    note = f"read_csv + to_sql(index=False), pandas {pd.__version__}"
    return clock, _count(db_path, "t"), note


def run_sqlite_utils(csv_path: Path, db_path: Path) -> tuple[Stopwatch, int, str]:
    """sqlite-utils' CSV route: DictReader -> insert_all via TypeTracker -> transform."""
    import csv
    import importlib.metadata

    import sqlite_utils
    from sqlite_utils.utils import TypeTracker

    with Stopwatch() as clock:
        db = sqlite_utils.Database(db_path)
        tracker = TypeTracker()
        with csv_path.open(newline="", encoding="utf-8") as fh:
            db["t"].insert_all(tracker.wrap(csv.DictReader(fh)))
        db["t"].transform(types=tracker.types)  # type: ignore[union-attr]
        db.close()
    version = importlib.metadata.version("sqlite-utils")
    note = f"csv.DictReader -> insert_all(TypeTracker) -> transform, sqlite-utils {version}"
    return clock, _count(db_path, "t"), note


_RUNNERS: dict[str, Callable[[Path, Path], tuple[Stopwatch, int, str]]] = {
    "lepton": run_lepton,
    "pandas": run_pandas,
    "sqlite-utils": run_sqlite_utils,
}


def _count(db_path: Path, table: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def child_main(method: str, csv_path: Path, workdir: Path) -> None:
    """Run one method in this (fresh) process and print its measurement."""
    db_path = workdir / f"{method}.db"
    for leftover in workdir.glob(f"{method}.db*"):
        leftover.unlink()
    clock, rows, note = _RUNNERS[method](csv_path, db_path)
    emit_result({
        "method": method, "seconds": clock.seconds, "cpu_seconds": clock.cpu_seconds,
        "rows": rows, "peak_rss_mb": peak_rss_mb(), "note": note,
    })


# -- the report ---------------------------------------------------------------------


def measure(methods: list[str], csv_path: Path, workdir: Path, repeat: int) -> list[Measurement]:
    """Run every method ``repeat`` times, each run in its own child process.

    Rounds are interleaved (a, b, c, a, b, c, ...) so that a burst of load from
    elsewhere on a shared machine hits every method alike; the median time and the
    highest peak memory of each method are reported.
    """
    runs: dict[str, list[Measurement]] = {m: [] for m in methods}
    for round_no in range(1, repeat + 1):
        for method in methods:
            print(f"  round {round_no}/{repeat}: {method} ...", file=sys.stderr, flush=True)
            payload = run_child(MODULE, ["--child", method, "--csv", str(csv_path),
                                         "--workdir", str(workdir)])
            runs[method].append(Measurement(**payload))
    return [_summary(results) for results in runs.values()]


def _summary(results: list[Measurement]) -> Measurement:
    seconds = [m.seconds for m in results]
    note = results[0].note
    if len(results) > 1:
        note += f" (median of {len(results)}: " + ", ".join(f"{s:.1f}" for s in seconds) + " s)"
    return dataclasses.replace(
        results[0], seconds=statistics.median(seconds),
        cpu_seconds=statistics.median(m.cpu_seconds for m in results),
        peak_rss_mb=max(m.peak_rss_mb for m in results), note=note,
    )


def report(results: list[Measurement], csv_path: Path) -> str:
    """The side-by-side table, the goals, and where they were measured."""
    by_method = {m.method: m for m in results}
    anchor = by_method.get(ANCHOR)
    rows = []
    for m in results:
        ratio = f"{m.rows_per_s / anchor.rows_per_s:.2f}x" if anchor else "n/a"
        rows.append([m.method, f"{m.seconds:.1f}", f"{m.rows_per_s:,.0f}",
                     f"{m.peak_rss_mb:,.0f}", ratio, f"{m.cpu_seconds:.1f}", f"{m.rows:,}"])
    header = ["method", "seconds", "rows/s", "peak RSS MB", f"rows/s vs {ANCHOR}", "CPU s",
              "rows"]
    parts = [markdown_table(header, rows), "", _goals(by_method), ""]
    parts += [f"- {m.method}: {m.note}" for m in results]
    parts.append("- CPU s: user + system time of the same work, all threads (wall time moves "
                 "with other load on a shared machine; CPU time much less)")
    size_mb = csv_path.stat().st_size / 1024**2
    parts.append(f"- CSV: {csv_path.name}, {size_mb:,.0f} MB; {machine_line()}")
    return "\n".join(parts)


def _goals(by_method: dict[str, Measurement]) -> str:
    ours = by_method.get("lepton")
    anchor = by_method.get(ANCHOR)
    if ours is None:
        return "goals: not checked (the lepton method was not run)"
    lines = [markdown_table(["goal", "measured", "result"], [])]
    if anchor is not None:
        ok = ours.rows_per_s >= anchor.rows_per_s
        lines.append(f"| lepton rows/s >= {ANCHOR} rows/s | {ours.rows_per_s:,.0f} vs "
                     f"{anchor.rows_per_s:,.0f} | {'PASS' if ok else 'FAIL'} |")
    ok = ours.peak_rss_mb < MEMORY_GOAL_MB
    lines.append(f"| lepton peak RSS < {MEMORY_GOAL_MB} MB | {ours.peak_rss_mb:,.0f} MB | "
                 f"{'PASS' if ok else 'FAIL'} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and ``--workdir`` are for the bench itself)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate")
    parser.add_argument("--csv", type=Path,
                        help="CSV to use; generated there if missing (default: a temp file)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per method (interleaved); the median time is reported")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate the CSV if needed, measure each method, print the table."""
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.csv, args.workdir)
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        print(f"error: unknown methods {unknown}; choose from {METHODS}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lepton-import-bench-") as tmp:
        workdir = Path(tmp)
        csv_path = args.csv or workdir / f"bench-{args.rows}.csv"
        if csv_path.exists():
            print(f"using existing {csv_path} (--rows ignored)", file=sys.stderr)
        else:
            print(f"generating {csv_path} ({args.rows:,} rows) ...", file=sys.stderr, flush=True)
            generate_csv(csv_path, args.rows, args.seed)
        results = measure(methods, csv_path, workdir, max(1, args.repeat))
        print(report(results, csv_path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
