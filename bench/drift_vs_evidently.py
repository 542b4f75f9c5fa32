"""Drift over a long request log: ours (sketches kept by the writer) vs Evidently's preset.

A project gets a 20-feature table (``--reference`` training rows once split: default
100,000; ten features as normal, lognormal or integer-valued columns, ten more of the
same kinds) and a model trained on it (one epoch: the model is not what is measured);
then ``--rows`` logged requests (default 1,000,000, one row each, over 24 hours),
shipped through the journal shipper's own store function in batches of 5,000, with
features 0-9 drifted (shifted by 0.2-0.6 standard deviations, or scaled) and 10-19 as
trained. Then, each in a fresh process (peak memory its own):

- ``ours``: ``Project.open`` and the drift of everything logged
  (:func:`lepton_desktop.core.monitoring.drift.evaluate`: a sum of the per-minute
  sketches, Evidently's default tests on the counts);
- ``evidently``: Evidently's ``DataDriftPreset`` on the training rows (read from the
  stored split) against the logged inputs (parsed from the request log into float
  arrays, the cheapest way): the report's time, and with loading;
- ``scipy``: the same tests per column with scipy on the same arrays (``ks_2samp``
  below 1,000 reference rows, ``wasserstein_distance`` over the reference's std above),
  the plain-code floor the issue measured;
- ``write``: what keeping the sketches costs the writer: shipping ``--write-rows``
  (100,000) rows with and without the drift step.

Goal (issue 11): ours ≥ 10× faster than Evidently, peak memory ≤ ½, the same verdicts.

    .venv/bin/python -m bench.drift_vs_evidently                      # 1M rows (~15 min)
    .venv/bin/python -m bench.drift_vs_evidently --rows 100000 --reference 20000   # quick
    .venv/bin/python -m bench.drift_vs_evidently --project /tmp/d.lepton  # reuse a build
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import emit_result, machine_line, markdown_table, run_child
from bench._common import peak_rss_mb as rusage_peak_mb


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM, which exec resets; ru_maxrss carries over the
    parent's peak into a child on Linux, and the parent built the project)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rusage_peak_mb()

FEATURES = [f"f{i:02d}" for i in range(20)]
MODEL = "bench"
HOURS = 24
GOAL_SPEEDUP = 10.0
GOAL_MEMORY = 0.5
SHIP_ROWS = 5000


def _columns(rng: np.random.Generator, n: int, drifted: bool) -> dict[str, np.ndarray]:
    """Feature i: kind i % 3 (normal, lognormal, integer); drifted: 0-9 moved."""
    out = {}
    for i, name in enumerate(FEATURES):
        kind = i % 3
        if kind == 0:
            values = rng.normal(10 + i, 1 + i / 10, n)
        elif kind == 1:
            values = rng.lognormal(1.0, 0.5, n)
        else:
            values = rng.poisson(20 + i, n).astype(float)
        if drifted and i < 10:
            shift = (0.2 + 0.04 * i) * float(np.std(values))
            values = values * 1.5 if i % 4 == 3 else values + shift
        out[name] = np.round(values, 4)
    return out


def build(path: Path, rows: int, reference: int) -> dict[str, float]:
    """The project: table, model, reference, and the logged requests; seconds per step."""
    import orjson

    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.monitoring import reference as drift_reference
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    rng = np.random.default_rng(0)
    times: dict[str, float] = {}
    started = time.perf_counter()
    table = _columns(rng, round(reference / 0.7), drifted=False)
    table["y"] = (table["f00"] + rng.normal(0, 1, len(table["f00"]))).round(3)
    csv = path.with_suffix(".csv")
    with open(csv, "w") as handle:
        handle.write(",".join([*FEATURES, "y"]) + "\n")
        np.savetxt(handle, np.column_stack([table[c] for c in [*FEATURES, "y"]]),
                   delimiter=",", fmt="%.6g")  # fmt: skip
    with Project.create(path) as project:
        project.import_dataset(csv, "bench", target="y")
        prepared = project.prep("bench", PrepOptions(split=(0.7, 0.15, 0.15), seed=0))
        project.train(prepared.ref, arch="mlp", epochs=1, model_name=MODEL)
        times["train_s"] = time.perf_counter() - started
        t = time.perf_counter()
        drift_reference.ensure(project.ctx, MODEL, 1)  # as `serve` does when it starts
        times["reference_s"] = time.perf_counter() - t
        t = time.perf_counter()
        # Arrival times over the last 24 hours, in order: each shipped batch covers the
        # few minutes it arrived in, as the journal shipper's batches do.
        arrivals = time.time() - HOURS * 3600 + np.sort(rng.uniform(0, HOURS * 3600 - 5, rows))
        for first in range(0, rows, SHIP_ROWS):
            n = min(SHIP_ROWS, rows - first)
            batch = _columns(rng, n, drifted=True)
            ts = arrivals[first : first + n]
            requests = [
                (1, float(ts[i]), uuid.uuid4().hex, "POST", "/predict", "native", MODEL, 1,
                 200, 1.0, 1,
                 orjson.dumps([{name: float(batch[name][i]) for name in FEATURES}]).decode(),
                 '[{"value": 1.0}]', None)
                for i in range(n)
            ]  # fmt: skip
            serving_store.ship_journal(project.conn, requests, [])
        times["log_s"] = time.perf_counter() - t
    csv.unlink()
    return times


# -- the children ------------------------------------------------------------------------


def child_ours(path: Path) -> dict[str, Any]:
    from lepton_desktop.core.monitoring import drift, window
    from lepton_desktop.core.project import Project

    t0 = time.perf_counter()
    with Project.open(path) as project:
        found = drift.evaluate(project.ctx, window.parse("all"), MODEL, None)
    seconds = time.perf_counter() - t0
    verdicts = {f.feature: f.drifted for f in found.features if f.role == "feature"}
    scores = {f.feature: f.statistic for f in found.features if f.role == "feature"}
    tests = {f.feature: f.test for f in found.features if f.role == "feature"}
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "verdicts": verdicts,
            "scores": scores, "tests": tests, "rows": found.rows,
            "reference_rows": found.reference.get("rows", 0),
            "dataset_drift": found.dataset_drift}  # fmt: skip


def _arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Training rows (from the stored split) and the logged inputs, as float arrays."""
    import orjson

    conn = sqlite3.connect(path)
    table = conn.execute(
        "SELECT v.id FROM dataset_versions v WHERE v.id = "
        "(SELECT dataset_version_id FROM model_versions LIMIT 1)"
    ).fetchone()[0]
    names = [r[0] for r in conn.execute(
        "SELECT name FROM dataset_columns WHERE version_id = ? ORDER BY position", (table,)
    )]  # fmt: skip
    rows = np.array(conn.execute(f"SELECT * FROM ds_{table} WHERE _split = 0").fetchall(),
                    dtype=object)  # fmt: skip
    reference = {name: rows[:, names.index(name)].astype(float) for name in FEATURES}
    count = conn.execute("SELECT COUNT(*) FROM request_log").fetchone()[0]
    current = {name: np.empty(count) for name in FEATURES}
    for i, (inputs,) in enumerate(conn.execute("SELECT inputs FROM request_log ORDER BY id")):
        record = orjson.loads(inputs)[0]
        for name in FEATURES:
            current[name][i] = record[name]
    conn.close()
    return reference, current


def child_evidently(path: Path) -> dict[str, Any]:
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    t0 = time.perf_counter()
    reference, current = _arrays(path)
    reference_frame, current_frame = pd.DataFrame(reference), pd.DataFrame(current)
    del reference, current
    loaded = time.perf_counter()
    definition = DataDefinition(numerical_columns=FEATURES)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current_frame, data_definition=definition),
        reference_data=Dataset.from_pandas(reference_frame, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    done = time.perf_counter()
    verdicts, scores, share = {}, {}, 0.0
    for metric in metrics:
        config = metric["config"]
        if "column" not in config:
            share = metric["value"]["share"]
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        distance = "distance" in config["method"]
        verdicts[config["column"]] = bool(value >= threshold if distance else value <= threshold)
        scores[config["column"]] = value
    return {"seconds": done - loaded, "load_s": loaded - t0, "rss_mb": peak_rss_mb(),
            "verdicts": verdicts, "scores": scores, "dataset_drift": share >= 0.5,
            "rows": len(current_frame)}  # fmt: skip


def child_scipy(path: Path) -> dict[str, Any]:
    from scipy import stats

    t0 = time.perf_counter()
    reference, current = _arrays(path)
    loaded = time.perf_counter()
    verdicts = {}
    for name in FEATURES:
        if len(reference[name]) <= 1000:
            verdicts[name] = bool(stats.ks_2samp(reference[name], current[name]).pvalue <= 0.05)
        else:
            norm = max(float(np.std(reference[name])), 0.001)
            value = stats.wasserstein_distance(reference[name], current[name]) / norm
            verdicts[name] = bool(value >= 0.1)
    return {"seconds": time.perf_counter() - loaded, "load_s": loaded - t0,
            "rss_mb": peak_rss_mb(), "verdicts": verdicts}  # fmt: skip


def child_write(path: Path, workdir: Path, rows: int) -> dict[str, Any]:
    """Ship the same rows into two copies of the project, with and without the drift step."""
    from lepton_desktop.core.store import drift
    from lepton_desktop.core.store import serving as serving_store
    from lepton_desktop.core.store.db import connect

    source = sqlite3.connect(path)
    logged = source.execute(
        "SELECT deployment_id, ts + 86400, request_id || '-again', method, path, protocol, "
        "model, version, status, latency_ms, n_rows, inputs, outputs, error "
        "FROM request_log ORDER BY id LIMIT ?", (rows,),
    ).fetchall()  # fmt: skip
    source.close()
    out = {}
    keep = drift.roll_up
    for label in ("with", "without"):
        copy = workdir / f"write-{label}.lepton"
        shutil.copy(path, copy)
        drift.roll_up = keep if label == "with" else (lambda conn, after_id: None)
        conn = connect(copy)
        started = time.perf_counter()
        for first in range(0, len(logged), SHIP_ROWS):
            serving_store.ship_journal(conn, logged[first : first + SHIP_ROWS], [])
        out[f"{label}_s"] = time.perf_counter() - started
        conn.close()
        copy.unlink()
    drift.roll_up = keep
    out["rows"] = len(logged)
    return out


# -- the table ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="logged requests")
    parser.add_argument("--reference", type=int, default=100_000, help="training rows")
    parser.add_argument("--write-rows", type=int, default=100_000)
    parser.add_argument("--project", type=Path, help="use (or build) this project file")
    parser.add_argument("--child", choices=("ours", "evidently", "scipy", "write"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        children = {"ours": lambda: child_ours(args.project),
                    "evidently": lambda: child_evidently(args.project),
                    "scipy": lambda: child_scipy(args.project),
                    "write": lambda: child_write(args.project, args.workdir,
                                                 args.write_rows)}  # fmt: skip
        emit_result(children[args.child]())
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    try:
        path = args.project or workdir / "drift.lepton"
        built = None
        if not path.exists():
            print(f"building {args.rows:,} logged requests ...", file=sys.stderr, flush=True)
            built = build(path, args.rows, args.reference)
        common = ["--project", str(path), "--workdir", str(workdir),
                  "--write-rows", str(args.write_rows)]  # fmt: skip
        results = {m: run_child("bench.drift_vs_evidently", ["--child", m, *common])
                   for m in ("ours", "evidently", "scipy", "write")}  # fmt: skip
        print(report(results, path, built))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(results: dict[str, dict[str, Any]], path: Path, built: dict[str, float] | None
           ) -> str:  # fmt: skip
    ours, theirs, plain, write = (results[k] for k in ("ours", "evidently", "scipy", "write"))
    speedup = theirs["seconds"] / ours["seconds"]
    memory = ours["rss_mb"] / theirs["rss_mb"]
    agree = [f for f in FEATURES if ours["verdicts"][f] == theirs["verdicts"][f]]
    rows = [
        ["ours: drift from the sketches (open + read + tests)", f"{ours['seconds']:.3f}",
         f"{ours['rss_mb']:.0f}", "1.0×", "1.00", ""],
        ["Evidently DataDriftPreset (report only)", f"{theirs['seconds']:.2f}",
         f"{theirs['rss_mb']:.0f}", f"{speedup:.0f}× slower",
         f"{theirs['rss_mb'] / ours['rss_mb']:.1f}", f"+{theirs['load_s']:.1f} s to load the log"],
        ["scipy, the same tests per column", f"{plain['seconds']:.2f}", f"{plain['rss_mb']:.0f}",
         f"{plain['seconds'] / ours['seconds']:.0f}× slower",
         f"{plain['rss_mb'] / ours['rss_mb']:.1f}", f"+{plain['load_s']:.1f} s to load the log"],
    ]  # fmt: skip
    size = path.stat().st_size / 1e9
    deltas = [abs(ours["scores"][f] - theirs["scores"][f]) for f in FEATURES]
    lines = [
        f"# Drift: {ours['rows']:,} logged rows × {len(FEATURES)} features against "
        f"{ours['reference_rows']:,} training rows ({size:.2f} GB file"
        + (f"; built in {sum(built.values()):.0f} s: logging {built['log_s']:.0f} s, "
           f"reference {built['reference_s']:.1f} s" if built else "") + ")",
        "",
        machine_line() + f", load {os.getloadavg()[0]:.2f}",
        "",
        markdown_table(
            ["method", "seconds", "peak RSS MB", "time vs ours", "memory vs ours", "note"], rows
        ),
        "",
        f"Speed: {speedup:.0f}× faster than Evidently (goal ≥ {GOAL_SPEEDUP:.0f}×: "
        f"{'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}); memory {memory:.2f} of "
        f"Evidently's (goal ≤ {GOAL_MEMORY}: {'met' if memory <= GOAL_MEMORY else 'NOT met'}).",
        f"Verdicts: {len(agree)}/{len(FEATURES)} features the same "
        f"(ours drifted: {sorted(f for f in FEATURES if ours['verdicts'][f])}); dataset "
        f"drift {ours['dataset_drift']} vs {theirs['dataset_drift']}; scipy agrees with "
        f"Evidently on {sum(plain['verdicts'][f] == theirs['verdicts'][f] for f in FEATURES)}.",
        f"Tests: {sorted(set(ours['tests'].values()))}; largest |ours − Evidently| statistic "
        f"{max(deltas):.2e} (median {float(np.median(deltas)):.2e}).",
        f"Writer: shipping {write['rows']:,} rows took {write['with_s']:.2f} s with the drift "
        f"sketches and anomaly flags, {write['without_s']:.2f} s without "
        f"({write['with_s'] / write['without_s']:.2f}× the time; "
        f"{write['rows'] / write['with_s']:,.0f} rows/s).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
