"""Browsing and exporting the request log: keyset pages and a streamed export.

Run from the repository root::

    .venv/bin/python -m bench.request_log_browse                  # 1,000,000 requests
    .venv/bin/python -m bench.request_log_browse --rows 200000

One project gets a synthetic log (``bench.request_search``'s rows: three models, 2%
errors, captured inputs and outputs), shipped as a server's supervisor ships it.

Part 1, pages of one model's answered requests (``--model iris-mlp --status 2xx``,
200 rows a page), newest first:

- **ours**: ``RequestLog.page``, a keyset page (``id < last id``) down the
  ``request_log_by_model`` index (m017);
- **anchor (offset)**: the usual pager, ``LIMIT 200 OFFSET k`` with the same filter
  and order, the first page and a page deep in the log;
- **anchor (pandas)**: ``pandas.read_sql`` of the filtered log, then the newest 200,
  as a notebook would.

Part 2, exporting that selection to Parquet, each method in a fresh process (its own
peak memory): **ours** ``RequestLog.export`` (5,000-row chunks, one row group each)
against **anchor** ``pandas.read_sql`` of the selection then ``DataFrame.to_parquet``
(pyarrow), the common one-liner.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import emit_result, machine_line, markdown_table, peak_rss_mb, run_child

PAGE = 200
WHERE = "model = 'iris-mlp' AND status BETWEEN 200 AND 299"


def build(path: Path, rows: int) -> None:
    from bench.request_search import make_project, ship, synthetic_rows

    make_project(path, indexed=True)
    ship(path, synthetic_rows(rows), 5_000)


def best_of(fn: Any, times: int = 9) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(times):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def pages(path: Path, deep: int) -> list[list[str]]:
    """Part 1's table rows."""
    import pandas as pd

    from lepton_desktop.core.monitoring.requests import RequestFilter
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    selection = RequestFilter(model="iris-mlp", status="2xx")
    table = []
    with Project.open(path) as project:
        log, conn = project.request_log, project.conn

        def offset_page(skip: int) -> list[Any]:
            rows = conn.execute(
                f"SELECT {serving_store.REQUEST_COLUMNS} FROM request_log WHERE {WHERE} "
                "ORDER BY id DESC LIMIT ? OFFSET ?", (PAGE, skip)).fetchall()  # fmt: skip
            return [serving_store.request_record(r) for r in rows]

        # the keyset id of the deep page: the last id of the page before it
        before = conn.execute(
            f"SELECT id FROM request_log WHERE {WHERE} ORDER BY id DESC LIMIT 1 OFFSET ?",
            (deep - 1,)).fetchone()[0]  # fmt: skip
        first_s, first = best_of(lambda: log.page(selection, None, PAGE))
        deep_s, deep_rows = best_of(lambda: log.page(selection, before, PAGE))
        offset_first_s, offset_first = best_of(lambda: offset_page(0))
        offset_deep_s, offset_deep = best_of(lambda: offset_page(deep))
        assert [r.id for r in first] == [r.id for r in offset_first]
        assert [r.id for r in deep_rows] == [r.id for r in offset_deep]
        pandas_s, frame = best_of(lambda: pd.read_sql(
            f"SELECT * FROM request_log WHERE {WHERE}", conn
        ).sort_values("id", ascending=False).head(PAGE), times=2)  # fmt: skip
        assert list(frame["id"]) == [r.id for r in first]
    table.append(["first page", f"{first_s * 1000:.2f} ms", f"{offset_first_s * 1000:.2f} ms",
                  f"{offset_first_s / first_s:.1f}×"])  # fmt: skip
    table.append(
        [
            f"page after {deep:,} rows",
            f"{deep_s * 1000:.2f} ms",
            f"{offset_deep_s * 1000:.2f} ms",
            f"{offset_deep_s / deep_s:.1f}×",
        ]
    )
    table.append(["first page, pandas.read_sql of the selection", f"{first_s * 1000:.2f} ms",
                  f"{pandas_s * 1000:.0f} ms", f"{pandas_s / first_s:.0f}×"])  # fmt: skip
    return table


def child(method: str, project: str, out: str) -> None:
    """One export in this process (or the log's building: ``build``); emits seconds,
    rows and peak memory."""
    from lepton_desktop.core.project import Project

    if method == "build":  # a child of its own: the parent stays small, and Linux's
        build(Path(project), int(out))  # peak RSS of a forked child starts at its parent's
        emit_result({"seconds": 0.0, "rows": int(out), "peak_rss_mb": peak_rss_mb()})
        return
    if method == "ours":
        from lepton_desktop.core.monitoring.requests import RequestFilter

        with Project.open(project) as opened:
            started = time.perf_counter()
            rows = opened.request_log.export(RequestFilter(model="iris-mlp", status="2xx"),
                                             out)["rows"]  # fmt: skip
            seconds = time.perf_counter() - started
    else:
        import pandas as pd

        with Project.open(project) as opened:
            started = time.perf_counter()
            frame = pd.read_sql(f"SELECT * FROM request_log WHERE {WHERE} ORDER BY id",
                                opened.conn)  # fmt: skip
            frame.to_parquet(out)
            seconds = time.perf_counter() - started
            rows = len(frame)
    emit_result({"seconds": seconds, "rows": rows, "peak_rss_mb": peak_rss_mb()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "PROJECT", "OUT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.lepton"
        run_child("bench.request_log_browse", ["--child", "build", str(path), str(args.rows)])
        # the exports first: a child's peak RSS starts at its parent's, and the pages'
        # pandas anchor grows this process
        exports = {m: run_child("bench.request_log_browse",
                                ["--child", m, str(path), str(Path(folder) / f"{m}.parquet")])
                   for m in ("ours", "anchor")}  # fmt: skip
        deep = args.rows // 3 // 2  # half way down the model's answered requests
        page_rows = pages(path, deep)
    print(f"# Request log: pages and export ({args.rows:,} requests)\n")
    print(machine_line() + "\n")
    print(markdown_table(["200 answered requests of one model", "ours (keyset)",
                          "anchor", "anchor / ours"], page_rows))  # fmt: skip
    print()
    ours, anchor = exports["ours"], exports["anchor"]
    assert ours["rows"] == anchor["rows"], (ours, anchor)
    print(markdown_table(
        [f"export {ours['rows']:,} rows to Parquet", "ours (5,000-row chunks)",
         "anchor (pandas.read_sql + to_parquet)", "ours / anchor"],
        [["seconds", f"{ours['seconds']:.2f}", f"{anchor['seconds']:.2f}",
          f"{ours['seconds'] / anchor['seconds']:.2f}"],
         ["peak memory (MiB, whole process)", f"{ours['peak_rss_mb']:.0f}",
          f"{anchor['peak_rss_mb']:.0f}", f"{ours['peak_rss_mb'] / anchor['peak_rss_mb']:.2f}"]],
    ))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
