"""The request log's full-text index: what it costs the log writer, what it buys a search.

Run from the repository root::

    .venv/bin/python -m bench.request_search                 # 200,000 requests, 3 rounds
    .venv/bin/python -m bench.request_search --rows 50000 --repeat 1

Two project files get the same synthetic log (iris-like requests: four captured
inputs, a label with probabilities, 2% errors with their messages, three models):

- **ours**: the project as m007 makes it: ``request_log_fts`` kept by triggers.
- **anchor**: the same file with the index and its triggers dropped (the log as it
  was before m007).

Part 1, ``write``: rows per second shipped into the log the way the server's
supervisor ships its journals (``ship_journal``: ``--batch`` rows per transaction),
and the file's bytes per row afterwards. The log writer is off the request path; the
question is whether it keeps far ahead of what a server answers (a few thousand
requests per second here), and what the index adds to the file.

Part 2, ``search``: the newest 1,000 requests matching a word, through the index
(``list_requests(search=...)``, what the CLI and the GUI run) against the anchor's
only way to find text, ``LIKE '%word%'`` over the same columns with the same order
and limit. A rare word (one row in 500) and a common one (every row), all
deployments and one deployment. Median of ``--repeat`` rounds, each query run 5 times
per round (its best time: the others share the machine).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import machine_line, markdown_table

MODELS = ("iris-mlp", "diabetes-mlp", "nile-rnn")
LABELS = ("setosa", "versicolor", "virginica")
ERRORS = (
    "record 0: missing feature 'petal_width'",
    "record 0: 'sepal_length' is 'inf': a feature must be a finite number",
    "no answer within 30 s (timeout)",
)
#: One row in this many carries the rare word.
RARE_EVERY = 500
SEARCHED = ("request_id", "path", "model", "status", "error", "inputs", "outputs")


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[Any, ...]]:
    """``n`` request-log rows in ``_REQUEST_FIELDS`` order (two deployments)."""
    import orjson

    rng = random.Random(seed)
    now = time.time() - n / 1000
    rows = []
    for i in range(n):
        error = ERRORS[i % 3] if rng.random() < 0.02 else None
        inputs = [{"sepal_length": round(rng.uniform(4, 8), 1), "sepal_width": 3.1,
                   "petal_length": round(rng.uniform(1, 7), 1), "petal_width": 1.2}]
        if i % RARE_EVERY == 0:
            inputs[0]["note"] = "quasar"
        label = LABELS[i % 3]
        outputs = None if error else [{"label": label, "probabilities": {
            c: (0.9 if c == label else 0.05) for c in LABELS}}]
        rows.append((
            1 + (i * 2 >= n), now + i / 1000, f"req-{seed}-{i:08d}", "POST", "/predict",
            "predict", MODELS[i % len(MODELS)], 1, 504 if error else 200,
            1.5 + rng.random(), 1, orjson.dumps(inputs).decode(),
            orjson.dumps(outputs).decode() if outputs else None, error,
        ))  # fmt: skip
    return rows


def make_project(path: Path, indexed: bool) -> None:
    """A project with two deployments; ``indexed=False`` drops m007's request index."""
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    with Project.create(path) as project:
        for port in (8765, 8766):
            serving_store.create_deployment(
                project.conn, host="127.0.0.1", port=port, token=None, models=[], options={}
            )
        if not indexed:
            for suffix in ("ai", "ad", "au"):
                project.conn.execute(f"DROP TRIGGER request_log_{suffix}")
            project.conn.execute("DROP TABLE request_log_fts")


def ship(path: Path, rows: list[tuple[Any, ...]], batch: int) -> float:
    """Seconds to ship ``rows`` in transactions of ``batch`` rows (as the supervisor)."""
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    with Project.open(path) as project:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            serving_store.ship_journal(project.conn, rows[start : start + batch], [])
        seconds = time.perf_counter() - started
        stored = serving_store.request_count(project.conn)
    assert stored == len(rows), (stored, len(rows))
    return seconds


def like_search(conn: Any, word: str, deployment_id: int | None, limit: int) -> int:
    """The anchor: ``LIKE '%word%'`` over the searched columns, newest first, the rows
    made records as ours are (the same columns, JSON decoded)."""
    from lepton_desktop.core.store import serving as serving_store

    text = " OR ".join(f"{c} LIKE ?" for c in SEARCHED)
    where = f"({text})" + (" AND deployment_id = ?" if deployment_id else "")
    args: list[Any] = [f"%{word}%"] * len(SEARCHED) + ([deployment_id] if deployment_id else [])
    rows = conn.execute(
        f"SELECT {serving_store.REQUEST_COLUMNS} FROM request_log WHERE {where} "
        "ORDER BY id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return len([serving_store.request_record(r) for r in rows])


def best_of(fn: Any, times: int = 5) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(times):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def search_round(ours: Path, anchor: Path) -> list[tuple[str, float, float, int, int]]:
    """(case, ours s, anchor s, ours found, anchor found) per search case."""
    from lepton_desktop.core.project import Project

    cases = [("rare word, all deployments", "quasar", None),
             ("rare word, one deployment", "quasar", 2),
             ("common word, all deployments", "setosa", None),
             ("error word, one deployment", "timeout", 1)]  # fmt: skip
    out = []
    with Project.open(ours) as indexed, Project.open(anchor) as plain:
        for name, word, deployment in cases:
            ours_s, found = best_of(lambda w=word, d=deployment: len(
                indexed.serving.list_requests(search=w, deployment_id=d, limit=1000)))
            anchor_s, anchor_found = best_of(
                lambda w=word, d=deployment: like_search(plain.conn, w, d, 1000))
            out.append((name, ours_s, anchor_s, found, anchor_found))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="rows per shipped batch")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = synthetic_rows(args.rows)
    write: dict[str, list[float]] = {"ours": [], "anchor": []}
    sizes: dict[str, int] = {}
    searches: dict[str, list[tuple[float, float, int, int]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.repeat):
            paths = {}
            for name in ("ours", "anchor"):
                paths[name] = Path(folder) / f"{name}-{round_}.lepton"
                make_project(paths[name], indexed=name == "ours")
                write[name].append(args.rows / ship(paths[name], rows, args.batch))
                sizes[name] = paths[name].stat().st_size
            for case, *numbers in search_round(paths["ours"], paths["anchor"]):
                searches.setdefault(case, []).append(tuple(numbers))  # type: ignore[arg-type]
    print(f"# Request log full-text search ({args.rows:,} requests, {args.repeat} rounds)\n")
    print(machine_line() + "\n")
    ours_rate, anchor_rate = (statistics.median(write[k]) for k in ("ours", "anchor"))
    rate_ratio = ours_rate / anchor_rate
    print(markdown_table(
        [f"log writer (ship_journal, batches of {args.batch})", "ours (FTS index)",
         "anchor (no index)", "ours / anchor"],
        [["rows / s", f"{ours_rate:,.0f}", f"{anchor_rate:,.0f}", f"{rate_ratio:.2f}"],
         ["file bytes / row", f"{sizes['ours'] / args.rows:,.0f}",
          f"{sizes['anchor'] / args.rows:,.0f}", f"{sizes['ours'] / sizes['anchor']:.2f}"]],
    ))  # fmt: skip
    print()
    table = []
    for case, results in searches.items():
        ours_s = statistics.median(r[0] for r in results)
        anchor_s = statistics.median(r[1] for r in results)
        found, anchor_found = results[-1][2], results[-1][3]
        table.append([case, f"{ours_s * 1000:.2f} ms ({found})",
                      f"{anchor_s * 1000:.2f} ms ({anchor_found})",
                      f"{anchor_s / ours_s:.1f}× faster"])  # fmt: skip
    print(markdown_table(
        ["newest 1,000 matches (rows found)", "ours (FTS5 MATCH)", "anchor (LIKE scan)",
         "ours vs anchor"], table))  # fmt: skip


if __name__ == "__main__":
    main()
