"""Metric logging: Lepton's batched writes into the project file against MLflow's per-step
``mlflow.log_metric`` into a SQLite tracking store.

Run from the repository root::

    .venv/bin/python -m bench.metric_logging                 # both parts, 3 rounds
    .venv/bin/python -m bench.metric_logging --part rows --repeat 1

MLflow is not a dependency of Lepton: the bench keeps it in its own virtualenv,
``bench/out/venv-mlflow`` (``bench/out/`` is git-ignored), made on first use with
``python -m venv`` and ``pip install torch==<our torch version> mlflow``. Every
method runs in its own fresh interpreter (the MLflow ones with that venv's python)
and prints one JSON result line for this parent to read.

Part 1, ``rows``: metric rows per second into a fresh file.

- ``lepton RunTracker``: what training does. The training thread calls
  ``tracker.step(step, epoch, loss_tensor)`` per step; the tracker's writer thread
  converts the losses and inserts them with ``executemany``, one transaction per
  ~0.5 s flush. Timed from the first ``step()`` until ``close()`` returns, so every
  row is in the file.
- ``lepton add_metrics``: the store call alone, ``--batch-rows`` rows per transaction.
- ``mlflow log_metric`` (the anchor): one ``mlflow.log_metric("loss", v, step=i)``
  per row, into ``sqlite:///...``, the way per-step logging is usually written.
- ``mlflow log_batch`` (for reference): ``MlflowClient.log_batch`` with
  ``--batch-rows`` metrics a call: MLflow's own batched route.

Set-up (creating the project or the MLflow store, its experiment and run) is outside
the clock. Rows are counted in the written file afterwards, never assumed.

Part 2, ``train``: how much per-step logging slows a small model's training. The same
tiny MLP (32 -> 64 -> 2, batch 64, Adam) trains ``--steps`` steps with no logging,
with a ``RunTracker`` (as Lepton's loop calls it), and with ``mlflow.log_metric`` per
step (which needs ``loss.item()``). The no-logging floor runs in both interpreters, and
each slowdown is against the floor of its own interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import REPO, RESULT_MARKER, emit_result, machine_line, markdown_table

MODULE = "bench.metric_logging"
VENV = REPO / "bench" / "out" / "venv-mlflow"
ROW_METHODS = ("lepton-tracker", "lepton-add-metrics", "mlflow-log-metric", "mlflow-log-batch")
TRAIN_METHODS = ("none", "lepton-tracker", "none@mlflow-venv", "mlflow-log-metric")
LABELS = {
    "lepton-tracker": "lepton RunTracker (step() + writer thread)",
    "lepton-add-metrics": "lepton add_metrics (batched executemany)",
    "mlflow-log-metric": "mlflow log_metric per step (anchor)",
    "mlflow-log-batch": "mlflow log_batch (batched, for reference)",
    "none": "no logging (floor)",
    "none@mlflow-venv": "no logging (floor), MLflow's venv",
}
ANCHOR = "mlflow-log-metric"
GOAL_FACTOR = 500
FEATURES, HIDDEN, BATCH = 32, 64, 64


# -- MLflow's interpreter -------------------------------------------------------------------


def venv_python() -> Path:
    """The python of the bench's MLflow venv."""
    return VENV / "bin" / "python"


def ensure_mlflow_venv() -> Path:
    """Make ``bench/out/venv-mlflow`` with MLflow and our torch version, unless it works."""
    python = venv_python()
    check = [str(python), "-c", "import mlflow, torch"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    import torch

    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    print(f"making {VENV} (python -m venv; pip install {torch_pin} mlflow) ...",
          file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, torch_pin], check=True)  # first, so mlflow keeps this torch
    subprocess.run([*pip, "mlflow"], check=True)
    return python


def run_in(python: Path | str, args: list[str], timeout_s: float = 1800) -> dict[str, Any]:
    """``python -m bench.metric_logging *args`` in a fresh interpreter; its result.

    Raises:
        RuntimeError: the child failed or printed no result; its stderr is included.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network here; nothing to send
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    proc = subprocess.run([str(python), "-m", MODULE, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return dict(json.loads(line[len(RESULT_MARKER):]))
    raise RuntimeError(f"{MODULE} {' '.join(args)} exited {proc.returncode} without a "
                       f"result:\n{proc.stderr[-4000:]}")


# -- part 1: rows per second (each function runs in its own child) ----------------------------


def lepton_run(workdir: Path) -> tuple[Any, int]:
    """A fresh project with a tiny dataset and one queued run: ``(project, run id)``."""
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.training.config import TrainConfig

    path = workdir / f"metrics-{time.time_ns()}.lepton"
    csv = workdir / "tiny.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)), encoding="utf-8")
    project = Project.create(path)
    project.import_dataset(csv, "tiny", target="y")
    run, _ = project.runs.queue("tiny", TrainConfig(arch="mlp", epochs=1))
    return project, run.id


def count_lepton_rows(path: Path, run_id: int) -> int:
    """Metric rows of ``run_id`` in the project file (read back, not assumed)."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        query = "SELECT COUNT(*) FROM run_metrics WHERE run_id = ? AND name = 'loss'"
        return int(conn.execute(query, (run_id,)).fetchone()[0])
    finally:
        conn.close()


def rows_lepton_tracker(rows: int, batch_rows: int, workdir: Path) -> dict[str, Any]:
    """Per-step ``RunTracker.step`` calls, as the training loop makes them, until close()."""
    import torch

    from lepton_desktop.core.training.tracking import RunTracker

    project, run_id = lepton_run(workdir)
    losses = list(torch.rand(rows))  # 0-d tensors, like the loop's detached losses
    tracker = RunTracker(project.path, run_id)
    start = time.perf_counter()
    for step, loss in enumerate(losses, 1):
        tracker.step(step, 1, loss)
        tracker.control()
    tracker.close()
    seconds = time.perf_counter() - start
    project.close()
    return {"seconds": seconds, "rows": count_lepton_rows(project.path, run_id),
            "note": "flush every 0.5 s by the writer thread; timed until close()"}


def rows_lepton_add_metrics(rows: int, batch_rows: int, workdir: Path) -> dict[str, Any]:
    """``core.store.runs.add_metrics`` with ``batch_rows`` rows per transaction."""
    import random

    from lepton_desktop.core.store import runs as run_store
    from lepton_desktop.core.store.db import connect

    project, run_id = lepton_run(workdir)
    conn = connect(project.path)  # the writer thread's own connection, as in training
    now = time.time()
    data = [(run_id, "loss", i, 1, random.random(), now + i * 1e-3) for i in range(rows)]
    start = time.perf_counter()
    for begin in range(0, rows, batch_rows):
        run_store.add_metrics(conn, data[begin : begin + batch_rows])
    seconds = time.perf_counter() - start
    conn.close()
    project.close()
    return {"seconds": seconds, "rows": count_lepton_rows(project.path, run_id),
            "note": f"{batch_rows} rows per transaction (WAL, synchronous=NORMAL)"}


def mlflow_run(workdir: Path) -> tuple[Any, str, Path]:
    """A fresh SQLite tracking store with one active run: ``(mlflow, run id, db path)``."""
    import mlflow

    db = workdir / f"mlflow-{time.time_ns()}.db"
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_experiment("bench")
    run = mlflow.start_run()
    mlflow.log_metric("warmup", 0.0, step=0)  # first write outside the clock
    return mlflow, run.info.run_id, db


def count_mlflow_rows(db: Path, run_id: str) -> int:
    """``loss`` rows of ``run_id`` in MLflow's ``metrics`` table."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        query = "SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = 'loss'"
        return int(conn.execute(query, (run_id,)).fetchone()[0])
    finally:
        conn.close()


def rows_mlflow_log_metric(rows: int, batch_rows: int, workdir: Path) -> dict[str, Any]:
    """One ``mlflow.log_metric`` call per row (the usual per-step logging)."""
    import random

    mlflow, run_id, db = mlflow_run(workdir)
    values = [random.random() for _ in range(rows)]
    start = time.perf_counter()
    for step, value in enumerate(values, 1):
        mlflow.log_metric("loss", value, step=step)
    seconds = time.perf_counter() - start
    mlflow.end_run()
    return {"seconds": seconds, "rows": count_mlflow_rows(db, run_id),
            "note": f"mlflow {mlflow.__version__}, synchronous, sqlite:/// store"}


def rows_mlflow_log_batch(rows: int, batch_rows: int, workdir: Path) -> dict[str, Any]:
    """``MlflowClient.log_batch`` with ``batch_rows`` metrics per call."""
    import random

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow, run_id, db = mlflow_run(workdir)
    client = MlflowClient()
    now = int(time.time() * 1000)
    metrics = [Metric("loss", random.random(), now + i, i) for i in range(rows)]
    start = time.perf_counter()
    for begin in range(0, rows, batch_rows):
        client.log_batch(run_id, metrics=metrics[begin : begin + batch_rows])
    seconds = time.perf_counter() - start
    mlflow.end_run()
    return {"seconds": seconds, "rows": count_mlflow_rows(db, run_id),
            "note": f"mlflow {mlflow.__version__}, {batch_rows} metrics per call"}


ROW_RUNNERS = {
    "lepton-tracker": rows_lepton_tracker,
    "lepton-add-metrics": rows_lepton_add_metrics,
    "mlflow-log-metric": rows_mlflow_log_metric,
    "mlflow-log-batch": rows_mlflow_log_batch,
}


# -- part 2: a small model's training with each kind of logging ------------------------------


def tiny_training() -> tuple[Any, Any]:
    """``(model, step function)``: a seeded 32 -> 64 -> 2 MLP, one Adam step per call."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    x = torch.randn(BATCH * 64, FEATURES)
    y = (x.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)]

    def step(i: int) -> Any:
        xb, yb = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.detach()

    step(0)  # warm-up: the first step allocates Adam's state
    return model, step


def train_none(steps: int, workdir: Path) -> dict[str, Any]:
    """The floor: the steps alone."""
    _, step = tiny_training()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    return {"seconds": time.perf_counter() - start, "rows": 0, "note": "no logging"}


def train_lepton(steps: int, workdir: Path) -> dict[str, Any]:
    """Each step's loss tensor to a RunTracker, as Lepton's loop does; close() timed too."""
    from lepton_desktop.core.training.tracking import RunTracker

    _, step = tiny_training()
    project, run_id = lepton_run(workdir)
    tracker = RunTracker(project.path, run_id)
    start = time.perf_counter()
    for i in range(steps):
        tracker.step(i + 1, 1, step(i))
        tracker.control()
    tracker.close()
    seconds = time.perf_counter() - start
    project.close()
    return {"seconds": seconds, "rows": count_lepton_rows(project.path, run_id),
            "note": "RunTracker.step + control per step, close() timed"}


def train_mlflow(steps: int, workdir: Path) -> dict[str, Any]:
    """``mlflow.log_metric("loss", loss.item(), step=i)`` after every step."""
    _, step = tiny_training()
    mlflow, run_id, db = mlflow_run(workdir)
    start = time.perf_counter()
    for i in range(steps):
        mlflow.log_metric("loss", step(i).item(), step=i + 1)
    seconds = time.perf_counter() - start
    mlflow.end_run()
    return {"seconds": seconds, "rows": count_mlflow_rows(db, run_id),
            "note": f"mlflow {mlflow.__version__} log_metric per step"}


TRAIN_RUNNERS = {
    "none": train_none,
    "none@mlflow-venv": train_none,
    "lepton-tracker": train_lepton,
    "mlflow-log-metric": train_mlflow,
}


def child_main(args: argparse.Namespace) -> None:
    """Run one method in this fresh interpreter and print its result."""
    import torch

    torch.set_num_threads(args.threads)
    if args.part == "rows":
        result = ROW_RUNNERS[args.child](args.count, args.batch_rows, args.workdir)
    else:
        result = TRAIN_RUNNERS[args.child](args.count, args.workdir)
    emit_result({"method": args.child, "count": args.count, **result})


# -- the parent: rounds, tables ---------------------------------------------------------------


def interpreter(method: str) -> Path | str:
    """MLflow's methods run in MLflow's venv; the others in this interpreter."""
    return venv_python() if "mlflow" in method else sys.executable


def measure(args: argparse.Namespace, part: str, methods: tuple[str, ...],
            counts: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """``args.repeat`` rounds over ``methods``, each run in its own child, order rotated."""
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for round_no in range(args.repeat):
        shift = round_no % len(methods)
        for method in methods[shift:] + methods[:shift]:
            child = ["--child", method, "--part", part, "--count", str(counts[method]),
                     "--batch-rows", str(args.batch_rows), "--threads", str(args.threads),
                     "--workdir", str(args.workdir)]
            result = run_in(interpreter(method), child)
            runs[method].append(result)
            print(f"  {part} round {round_no + 1}/{args.repeat}: {method}: "
                  f"{result['count'] / result['seconds']:,.0f}/s", file=sys.stderr, flush=True)
    return runs


def _per_s(result: dict[str, Any]) -> float:
    return result["count"] / result["seconds"] if result["seconds"] > 0 else 0.0


def _median(results: list[dict[str, Any]]) -> float:
    return statistics.median(_per_s(r) for r in results)


def rows_report(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Part 1's table, the goal and how each method was run."""
    anchor = _median(runs[ANCHOR])
    table = []
    for method, results in runs.items():
        rate = _median(results)
        rows_seen = ", ".join(f"{r['rows']:,}" for r in results)
        table.append([LABELS[method], f"{results[0]['count']:,}", f"{rate:,.0f}",
                      f"{rate / anchor:,.1f}x", rows_seen])
    ours = _median(runs["lepton-tracker"])
    ok = ours >= GOAL_FACTOR * anchor
    lines = [f"### Metric rows/s (median of {len(runs[ANCHOR])} rounds)", "",
             markdown_table(["method", "rows logged", "rows/s", "vs log_metric",
                             "rows found in the file"], table), "",
             f"- goal: RunTracker >= {GOAL_FACTOR}x mlflow log_metric: {ours / anchor:,.0f}x "
             f"{'PASS' if ok else 'FAIL'}"]
    lines += [f"- {LABELS[m]}: {r[0]['note']}" for m, r in runs.items()]
    return "\n".join(lines)


def train_report(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Part 2's table: steps/s and the slowdown against the same interpreter's floor."""
    floors = {"lepton-tracker": "none", "none": "none",
              "mlflow-log-metric": "none@mlflow-venv", "none@mlflow-venv": "none@mlflow-venv"}
    table = []
    for method, results in runs.items():
        rate = _median(results)
        slowdown = _median(runs[floors[method]]) / rate
        table.append([LABELS[method], f"{rate:,.0f}", f"{slowdown:.2f}x",
                      ", ".join(f"{_per_s(r):,.0f}" for r in results)])
    steps = runs["none"][0]["count"]
    return "\n".join([
        f"### A small model's training with per-step logging ({steps:,} steps, MLP "
        f"{FEATURES}->{HIDDEN}->2, batch {BATCH}, median of {len(runs['none'])} rounds)", "",
        markdown_table(["logging", "steps/s", "slowdown vs its floor", "per round"], table),
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child``, ``--count`` and ``--workdir`` are internal)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("rows", "train", "both"), default="both")
    parser.add_argument("--rows", type=int, default=200_000, help="rows for Lepton's methods")
    parser.add_argument("--mlflow-rows", type=int, default=1_000,
                        help="rows for MLflow's log_metric (~200/s: keep it small)")
    parser.add_argument("--batch-rows", type=int, default=500,
                        help="rows per add_metrics transaction / log_batch call")
    parser.add_argument("--steps", type=int, default=2_000, help="training steps in part 2")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=sorted(set(ROW_METHODS + TRAIN_METHODS)),
                        help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Make MLflow's venv if needed, run the parts, print the tables."""
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    ensure_mlflow_venv()
    reports = []
    with tempfile.TemporaryDirectory(prefix="lepton-metric-bench-") as tmp:
        args.workdir = Path(tmp)
        if args.part in ("rows", "both"):
            counts = {m: args.mlflow_rows if m == ANCHOR else args.rows for m in ROW_METHODS}
            counts["mlflow-log-batch"] = args.rows // 4  # batched MLflow is slower than ours
            reports.append(rows_report(measure(args, "rows", ROW_METHODS, counts)))
        if args.part in ("train", "both"):
            counts = dict.fromkeys(TRAIN_METHODS, args.steps)
            reports.append(train_report(measure(args, "train", TRAIN_METHODS, counts)))
    print("\n\n".join(reports))
    print(f"\n- {machine_line()}; torch.set_num_threads({args.threads})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
