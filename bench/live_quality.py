"""Live quality over a million feedback labels: ours vs pandas + scikit-learn.

A project gets ``--labels`` feedback rows (default 1,000,000) on logged one-row
classification requests, written through the journal shipper's own store function
(tests/monitoring_factory.py), so each label is resolved against its answer as in
production. Then, each in a fresh process:

- ``ours``: ``Project.open``, then live quality over every label (the time window
  ``all``: accuracy, macro precision, recall, F1, per class, confusion matrix) and over
  the newest ``--labels`` labelled rows (the count window);
- ``anchor``: the same arrays loaded with pandas (the resolved true and predicted label
  of every current label), then scikit-learn's ``accuracy_score``,
  ``precision_recall_fscore_support(average="macro")`` and ``confusion_matrix``;
- ``write``: what the per-minute quality rollup (m019, kept by triggers on feedback)
  costs the feedback writer: ``--write-labels`` labels stored through the CSV import's
  store function into a project of logged requests, against the same store into a
  copy whose rollup triggers were dropped (the anchor: the writer without the rollup).

Live quality reads whole minutes from the rollup and only the window's partial edge
minutes from the raw labels; a count window finds its cut-off minute in the rollup.

Goal (issue 11): live quality over 1,000,000 feedback rows within a second.

    .venv/bin/python -m bench.live_quality                       # 1M labels (minutes to build)
    .venv/bin/python -m bench.live_quality --labels 200000       # quick
    .venv/bin/python -m bench.live_quality --project /tmp/q.lepton   # reuse a built file
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import emit_result, machine_line, markdown_table, peak_rss_mb, run_child

GOAL_S = 1.0
#: Labelled share of the logged requests (answered ones: 98% of them).
FEEDBACK_SHARE = 0.9


def build(path: Path, labels: int) -> float:
    """Log enough requests for about ``labels`` labels; return seconds taken."""
    from lepton_desktop.core.project import Project
    from tests.monitoring_factory import log_traffic

    started = time.perf_counter()
    Project.create(path).close()
    requests = int(labels / (FEEDBACK_SHARE * 0.98)) + 1
    now = time.time()
    log_traffic(path, requests, start=now - 86400, seconds=86400 - 5,
                feedback_share=FEEDBACK_SHARE, seed=0)  # fmt: skip
    return time.perf_counter() - started


def child_ours(path: Path, count: int) -> dict[str, Any]:
    from lepton_desktop.core.project import Project

    t0 = time.perf_counter()
    project = Project.open(path)
    opened = time.perf_counter()
    report = project.monitor("all", model="iris", last_labelled=count)
    read = time.perf_counter()
    # The report also reads traffic and drift: time the quality reads on their own too.
    from lepton_desktop.core.monitoring import quality, window

    q0, c0 = time.perf_counter(), time.process_time()
    timed = quality.live_quality(project.ctx, window.parse("all"), "iris", None,
                                 "classification")  # fmt: skip
    q1, c1 = time.perf_counter(), time.process_time()
    counted = quality.last_labelled(project.ctx, "iris", None, "classification", count)
    q2, c2 = time.perf_counter(), time.process_time()
    # An hour ending now, mid-minute: whole minutes from the rollup, two raw edges.
    hour = window.between(time.time() - 3600.5, time.time() - 0.25)
    quality.live_quality(project.ctx, hour, "iris", None, "classification")
    q3 = time.perf_counter()
    project.close()
    return {"open_s": opened - t0, "report_s": read - opened, "time_window_s": q1 - q0,
            "count_window_s": q2 - q1, "time_window_cpu_s": c1 - c0,
            "count_window_cpu_s": c2 - c1, "hour_window_s": q3 - q2,
            "labelled": timed.labelled,
            "counted": counted.labelled, "accuracy": timed.metrics["accuracy"],
            "f1": timed.metrics["f1"], "report_labelled": report["quality"]["labelled"],
            "rss_mb": peak_rss_mb()}  # fmt: skip


def child_anchor(path: Path) -> dict[str, Any]:
    import pandas as pd
    from sklearn import metrics

    conn = sqlite3.connect(path)
    t0, c0 = time.perf_counter(), time.process_time()
    pairs = pd.read_sql_query(
        "SELECT truth, predicted FROM feedback WHERE model = 'iris' AND superseded = 0 "
        "AND truth IS NOT NULL AND predicted IS NOT NULL", conn)  # fmt: skip
    loaded = time.perf_counter()
    accuracy = metrics.accuracy_score(pairs["truth"], pairs["predicted"])
    *_, f1, _ = metrics.precision_recall_fscore_support(
        pairs["truth"], pairs["predicted"], average="macro", zero_division=0)  # fmt: skip
    metrics.confusion_matrix(pairs["truth"], pairs["predicted"])
    done = time.perf_counter()
    conn.close()
    return {"load_s": loaded - t0, "metrics_s": done - loaded, "labelled": len(pairs),
            "cpu_s": time.process_time() - c0,
            "accuracy": float(accuracy), "f1": float(f1), "rss_mb": peak_rss_mb()}  # fmt: skip


def child_write(labels: int) -> dict[str, Any]:
    """Store ``labels`` labels with and without the rollup's triggers; seconds each."""
    import json

    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import monitoring as monitoring_store
    from lepton_desktop.core.store.db import connect
    from tests.monitoring_factory import log_traffic

    workdir = Path(tempfile.mkdtemp(prefix="bench-quality-write-"))
    try:
        path = workdir / "with.lepton"
        Project.create(path).close()
        log_traffic(path, labels, start=time.time() - 3600, seconds=3500,
                    error_share=0.0, feedback_share=0.0, seed=1)  # fmt: skip
        bare = workdir / "without.lepton"
        shutil.copy(path, bare)
        conn = connect(bare)
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND tbl_name = 'feedback'").fetchall():  # fmt: skip
            conn.execute(f"DROP TRIGGER {name}")
        conn.close()
        seconds = {}
        for key, target in (("with_s", path), ("without_s", bare)):
            conn = connect(target)
            ids = [r[0] for r in conn.execute("SELECT request_id FROM request_log ORDER BY id")]
            rows = [(1, rid, time.time(), json.dumps("setosa"), 0) for rid in ids]
            started = time.perf_counter()
            monitoring_store.store_labels(conn, rows)
            seconds[key] = time.perf_counter() - started
            conn.close()
        return {"labels": labels, **seconds}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000, help="feedback rows")
    parser.add_argument("--project", type=Path, help="use (or build) this project file")
    parser.add_argument(
        "--write-labels",
        type=int,
        default=100_000,
        help="labels stored to time the rollup's cost to the writer",
    )
    parser.add_argument("--child", choices=("ours", "anchor", "write"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        if args.child == "write":
            emit_result(child_write(args.write_labels))
        else:
            emit_result(child_ours(args.project, args.labels) if args.child == "ours"
                        else child_anchor(args.project))  # fmt: skip
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        path = args.project or workdir / "labelled.lepton"
        built = None
        if not path.exists():
            print(f"building about {args.labels:,} labels ...", file=sys.stderr, flush=True)
            built = build(path, args.labels)
        common = ["--project", str(path), "--labels", str(args.labels)]
        results = {m: run_child("bench.live_quality", ["--child", m, *common])
                   for m in ("ours", "anchor")}  # fmt: skip
        results["write"] = run_child("bench.live_quality", [
            "--child", "write", "--write-labels", str(args.write_labels)])  # fmt: skip
        print(report(results, built))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(results: dict[str, dict[str, Any]], built: float | None) -> str:
    ours, anchor, write = results["ours"], results["anchor"], results["write"]
    assert ours["labelled"] == anchor["labelled"], (ours["labelled"], anchor["labelled"])
    assert abs(ours["accuracy"] - anchor["accuracy"]) < 1e-9
    assert abs(ours["f1"] - anchor["f1"]) < 1e-9
    anchor_s = anchor["load_s"] + anchor["metrics_s"]
    rows = [
        [f"quality over {ours['labelled']:,} labels (time window: all)",
         f"{ours['time_window_s']:.3f} s", f"{anchor_s:.2f} s "
         f"(load {anchor['load_s']:.2f} + metrics {anchor['metrics_s']:.2f})",
         f"{anchor_s / ours['time_window_s']:.1f}× faster",
         "≤ 1 s: " + ("met" if ours["time_window_s"] <= GOAL_S else "NOT met")],
        ["  the same, CPU seconds (moves far less than wall time on a loaded machine)",
         f"{ours['time_window_cpu_s']:.3f} s", f"{anchor['cpu_s']:.2f} s",
         f"{anchor['cpu_s'] / max(ours['time_window_cpu_s'], 1e-9):.1f}× less", ""],
        [f"quality over the newest {ours['counted']:,} labels (count window)",
         f"{ours['count_window_s']:.3f} s (CPU {ours['count_window_cpu_s']:.3f} s)", "", "",
         "≤ 1 s: " + ("met" if ours["count_window_s"] <= GOAL_S else "NOT met")],
        ["quality over the last hour, ending mid-minute (rollup + two raw edges)",
         f"{ours['hour_window_s']:.3f} s", "", "", ""],
        [f"storing {write['labels']:,} labels (CSV import's store), rollup kept by triggers",
         f"{write['with_s']:.2f} s", f"{write['without_s']:.2f} s (no rollup)",
         f"{write['with_s'] / write['without_s']:.2f}× the time", ""],
        ["the whole monitor report (traffic, quality, estimate, drift, both windows)",
         f"{ours['report_s']:.3f} s", "", "", ""],
        ["peak memory", f"{ours['rss_mb']:.0f} MB", f"{anchor['rss_mb']:.0f} MB",
         f"{anchor['rss_mb'] / ours['rss_mb']:.1f}× less", ""],
    ]  # fmt: skip
    return "\n".join([
        f"# Live quality: {ours['labelled']:,} feedback labels"
        + (f" (built in {built:.0f} s)" if built else ""),
        "",
        machine_line() + f", load {os.getloadavg()[0]:.2f}",
        "",
        markdown_table(["what", "ours", "anchor (pandas + scikit-learn)", "ratio", "goal"], rows),
        "",
        f"Same labels, accuracy and macro F1 in both ({ours['accuracy']:.4f}, {ours['f1']:.4f}).",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
