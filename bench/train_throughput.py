"""Training throughput: a plain PyTorch loop against the same training through Lepton.

Run from the repository root::

    .venv/bin/python -m bench.train_throughput                  # MLP and CNN, 3 rounds + A/B
    .venv/bin/python -m bench.train_throughput --archs mlp --repeat 5
    .venv/bin/python -m bench.train_throughput --lepton-src /tmp/patched   # a change's effect

The same model on the same seeded synthetic data, for the same epochs, trained by:

- ``plain`` (the floor): manual batching with ``torch.randperm``, Adam, cross-entropy,
  nothing else: no logging, no validation, no checkpoints;
- ``lepton``: ``Project.train(...)`` on the dataset imported into a project, as the
  CLI and the Python API run it: live per-step loss through the run tracker (writer
  thread, batched inserts every 0.5 s), system samples, heartbeats, per-epoch
  train/val evaluation, checkpoints, then test evaluation and model registration.

Both use identical hyperparameters (``patience=0, schedule="none"``, no gradient
clipping, no weight decay, no dropout, no augmentation) so the optimizer does the same
work, and the same ``torch.set_num_threads``. Each run is a fresh interpreter; the
order rotates from round to round and medians are reported.

Throughput (samples/s) is reported five ways:

- *steps*: the optimizer steps alone, from per-step end timestamps (for Lepton the
  ``t`` of the loss rows it logged; the plain loop appends ``time.time()`` per step),
  each epoch from the end of its first step to the end of its last. The goal
  (ratio >= 0.97) is about this figure, judged on the median of per-round ratios.
- *median step*: batch size over the median gap between consecutive steps (a burst of
  load from other programs moves it less than a total).
- *epochs per CPU-second*: samples over the process CPU time (all threads: the
  tracker's writer and the heartbeat included) spent in the epochs.
- *fit*: ``Trainer.fit`` as a whole (Lepton adds per-epoch evaluation of the train
  and val splits and checkpoint serialization); for the plain loop, its epoch loop.
- *end-to-end*: Lepton's whole ``Project.train`` (job row, loading the data from the
  project file, fit, test evaluation, registration) against the plain child's data
  set-up plus loop.

Then an in-process A/B per architecture: plain steps and ``Trainer._train_epoch`` (with
a real RunTracker) alternate every ``--ab-block`` steps for ``--ab-seconds``, timed in
process CPU time. It resolves a per-step overhead of a few microseconds, which separate
runs on a shared machine cannot.

``--lepton-src DIR`` also runs everything with the ``lepton_desktop`` package in DIR (a
patched copy), in the same rounds, so a proposed change is measured against the
committed code and the same floor.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import REPO, RESULT_MARKER, emit_result, machine_line, markdown_table, run_child

MODULE = "bench.train_throughput"
METHODS = ("plain", "lepton")
#: A third method with ``--lepton-src``: Lepton trained from another copy of the code.
ALT = "lepton-src"
ARCHS = ("mlp", "cnn")
GOAL_RATIO = 0.97
MIN_AB_ROUNDS = 10
TRAIN_FRACTION = 0.7  # Lepton's default split is 70/15/15; the plain loop takes 70%
MLP_HIDDEN = (256, 256)
CNN_CHANNELS = (32, 64)
N_CLASSES_IMAGES = 4
LR = 1e-3


# -- the data (made once by the parent) -------------------------------------------------


def make_tabular(path: Path, rows: int, features: int, seed: int) -> None:
    """A seeded two-class table: ``features`` normal columns ``f*`` and ``target``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y = _tabular_arrays(rows, features, seed)
    columns = {f"f{i}": x[:, i] for i in range(features)}
    columns["target"] = y
    pq.write_table(pa.table(columns), path)


def _tabular_arrays(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=features)
    # Label noise as large as the signal: ~75% is the best accuracy, so the loss stays
    # well above zero (near-zero losses bring denormal floats and odd timings).
    y = ((x @ w + np.sqrt(features) * rng.normal(size=rows)) > 0).astype(np.int64)
    return x, y


def make_images(folder: Path, count: int, size: int, seed: int) -> None:
    """``count`` seeded grayscale PNGs in ``N_CLASSES_IMAGES`` class folders.

    Each class is a faint bar at its own angle in strong noise: learnable, but the
    loss stays well above zero.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    for label in range(N_CLASSES_IMAGES):
        (folder / f"c{label}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = i % N_CLASSES_IMAGES
        angle = np.pi * label / N_CLASSES_IMAGES + rng.normal(scale=0.1)
        distance = np.abs(xx * np.sin(angle) - yy * np.cos(angle))
        pixels = 0.3 * np.exp(-distance) + rng.normal(loc=0.5, scale=0.3, size=(size, size))
        image = np.clip(pixels * 255, 0, 255).astype(np.uint8)
        Image.fromarray(image, mode="L").save(folder / f"c{label}" / f"{i:06d}.png")


def make_project(path: Path, table: Path, images: Path | None) -> None:
    """A project holding the table (``tab``) and, if given, the images (``img``)."""
    from lepton_desktop.core.project import Project

    with Project.create(path) as project:
        project.import_dataset(table, "tab", target="target")
        if images is not None:
            project.import_dataset(images, "img", kind="images")


# -- the plain PyTorch loop (the floor) ---------------------------------------------------


def plain_model(arch: str, in_shape: tuple[int, ...], n_out: int) -> Any:
    """The same layers Lepton builds for its ``mlp`` / ``cnn`` specs (dropout 0)."""
    from torch import nn

    if arch == "mlp":
        width, layers = in_shape[0], []
        for size in MLP_HIDDEN:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        return nn.Sequential(*layers, nn.Linear(width, n_out))
    channels, height, _ = in_shape
    blocks: list[nn.Module] = []
    for out in CNN_CHANNELS:
        blocks += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        if height >= 4:
            blocks.append(nn.MaxPool2d(2))
            height //= 2
        channels = out
    pooled = min(4, height)
    return nn.Sequential(
        *blocks, nn.AdaptiveAvgPool2d(pooled), nn.Flatten(),
        nn.Linear(channels * pooled * pooled, 128), nn.ReLU(), nn.Linear(128, n_out),
    )


def plain_arrays(arch: str, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The training inputs and labels the plain loop uses (70% of the rows, scaled)."""
    if arch == "mlp":
        import pyarrow.parquet as pq

        table = pq.read_table(data / "table.parquet")
        y = table.column("target").to_numpy().astype(np.int64)
        x = np.column_stack([table.column(n).to_numpy() for n in table.column_names
                             if n != "target"]).astype(np.float32)
    else:
        from PIL import Image

        files = sorted((data / "images").glob("*/*.png"))
        x = np.stack([np.asarray(Image.open(f), dtype=np.float32)[None] / 255 for f in files])
        y = np.array([int(f.parent.name[1:]) for f in files], dtype=np.int64)
    order = np.random.default_rng(0).permutation(len(y))[: int(len(y) * TRAIN_FRACTION)]
    x = x[order]
    return ((x - x.mean()) / (x.std() or 1.0)).astype(np.float32), y[order]


def run_plain(arch: str, data: Path, epochs: int, batch: int) -> dict[str, Any]:
    """Train with nothing but PyTorch; time the steps as Lepton's logged rows do."""
    import torch

    start = time.perf_counter()
    x_np, y_np = plain_arrays(arch, data)
    torch.manual_seed(0)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = plain_model(arch, tuple(x.shape[1:]), int(y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    n = len(y)
    stamps: list[list[float]] = []
    epoch_cpu_s, loss = 0.0, torch.zeros(())
    fit_start = time.perf_counter()
    for _ in range(epochs):
        cpu_start = time.process_time()
        model.train()
        order = torch.randperm(n, generator=generator)
        stamps.append([])
        for begin in range(0, n, batch):
            index = order[begin : begin + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            stamps[-1].append(time.time())  # what Lepton's step hook records, no more
        epoch_cpu_s += time.process_time() - cpu_start
    end = time.perf_counter()
    return {
        "n_train": n, "batch": batch, "epochs": epochs, **step_stats(stamps, n, batch),
        "epoch_cpu_s": epoch_cpu_s, "fit_s": end - fit_start, "e2e_s": end - start,
        "final_loss": float(loss.detach()), "note": f"torch {torch.__version__}",
    }


# -- through Lepton -----------------------------------------------------------------------


class _Timers:
    """Wraps a few Trainer internals (in this child only) to split the fit time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(
            ("fit", "eval", "serialize", "epoch_cpu", "load", "test_eval"), 0.0)
        self.shape: dict[str, int] = {}

    def install(self) -> None:
        """Wrap the Trainer's phases, the data loading and the test-split evaluation."""
        from lepton_desktop.core.training import data, loop, service

        loop.Trainer.fit = self._timed("fit", loop.Trainer.fit, record_shape=True)
        loop.Trainer._train_epoch = self._timed(
            "epoch_cpu", loop.Trainer._train_epoch, clock=time.process_time)
        loop.Trainer._epoch_metrics = self._timed("eval", loop.Trainer._epoch_metrics)
        loop.serialize = self._timed("serialize", loop.serialize)
        data.load = self._timed("load", data.load)
        service.evaluate = self._timed("test_eval", service.evaluate)

    def _timed(self, key: str, function: Callable[..., Any], record_shape: bool = False,
               clock: Callable[[], float] = time.perf_counter) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if record_shape:
                trainer = args[0]
                self.shape = {"n_train": len(trainer.y["train"]), "batch": trainer.batch}
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[key] += clock() - start

        return wrapper


def lepton_options(arch: str, epochs: int, batch: int) -> dict[str, Any]:
    """``Project.train`` options that make Lepton do what the plain loop does."""
    options: dict[str, Any] = {
        "arch": arch, "epochs": epochs, "batch_size": batch, "lr": LR, "optimizer": "adam",
        "patience": 0, "schedule": "none", "grad_clip": 0.0, "weight_decay": 0.0,
        "dropout": 0.0, "device": "cpu", "seed": 0,
    }
    if arch == "mlp":
        options |= {"hidden": MLP_HIDDEN, "batch_norm": False, "activation": "relu"}
    else:
        options |= {"channels": CNN_CHANNELS, "kernel": 3, "augment": False}
    return options


def run_lepton(arch: str, data: Path, epochs: int, batch: int) -> dict[str, Any]:
    """``Project.train`` on a fresh copy of the prepared project."""
    import lepton_desktop
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.training import service  # noqa: F401  (import before the clock)

    project_path = data / f"run-{time.time_ns()}.lepton"
    shutil.copyfile(data / "base.lepton", project_path)
    timers = _Timers()
    timers.install()
    start = time.perf_counter()
    with Project.open(project_path) as project:
        result = project.train("tab" if arch == "mlp" else "img",
                               **lepton_options(arch, epochs, batch))
    e2e = time.perf_counter() - start
    stamps, last_loss = _logged_steps(project_path, result.run.id)
    n, b = timers.shape["n_train"], timers.shape["batch"]
    out = {
        "n_train": n, "batch": b, "epochs": len(stamps), **step_stats(stamps, n, b),
        "epoch_cpu_s": timers.seconds["epoch_cpu"], "fit_s": timers.seconds["fit"],
        "eval_s": timers.seconds["eval"], "serialize_s": timers.seconds["serialize"],
        "load_s": timers.seconds["load"], "test_eval_s": timers.seconds["test_eval"],
        "e2e_s": e2e,
        "final_loss": last_loss, "note": f"run {result.run.id}, {result.model.ref}",
        "package": str(Path(lepton_desktop.__file__).parent.parent),
    }
    for leftover in data.glob(project_path.name + "*"):
        leftover.unlink()
    return out


def _logged_steps(project_path: Path, run_id: int) -> tuple[list[list[float]], float]:
    """Per epoch, the timestamps of the logged ``loss`` rows; and the last loss."""
    conn = sqlite3.connect(project_path)
    try:
        rows = conn.execute("SELECT epoch, t, value FROM run_metrics WHERE run_id = ? AND "
                            "name = 'loss' ORDER BY step", (run_id,)).fetchall()
    finally:
        conn.close()
    stamps: dict[int, list[float]] = {}
    for epoch, t, _ in rows:
        stamps.setdefault(epoch, []).append(float(t))
    return list(stamps.values()), float(rows[-1][2]) if rows else float("nan")


def step_stats(stamps: list[list[float]], n: int, batch: int) -> dict[str, float]:
    """Step timing from per-step end timestamps, grouped by epoch.

    ``step_s`` adds up each epoch's span from its first step's end to its last's, for
    ``step_samples`` samples (all but each epoch's first batch). ``median_step_s`` is
    the median time between consecutive steps, which a burst of load from other
    programs moves far less than a total does.
    """
    gaps = [b - a for epoch in stamps for a, b in itertools.pairwise(epoch)]
    return {
        "step_s": sum(epoch[-1] - epoch[0] for epoch in stamps if epoch),
        "step_samples": len(stamps) * (n - min(batch, n)),
        "median_step_s": statistics.median(gaps) if gaps else 0.0,
    }


# -- in-process A/B of the step loop (finely interleaved) ----------------------------------


def run_ab(arch: str, data: Path, batch: int, seconds: float, block: int) -> dict[str, Any]:
    """Plain steps against ``Trainer._train_epoch`` in one process, ``block`` steps at a time.

    Both train on the same ``block * batch`` rows; the two alternate in a random order,
    round after round for about ``seconds`` (at least ``MIN_AB_ROUNDS`` rounds), each
    block timed with ``time.process_time()`` (all threads, so the tracker's writer
    counts). Lepton's hooks are a real RunTracker writing into a copy of the prepared
    project, as in training.
    """
    import random

    import torch

    import lepton_desktop
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.training.config import TrainConfig
    from lepton_desktop.core.training.data import TrainData
    from lepton_desktop.core.training.loop import Trainer
    from lepton_desktop.core.training.models import build, model_spec
    from lepton_desktop.core.training.tracking import RunTracker

    x_np, y_np = plain_arrays(arch, data)
    x_np, y_np = x_np[: block * batch], y_np[: block * batch]
    block = -(-len(y_np) // batch)  # fewer steps when the data has fewer rows
    n_out = int(y_np.max()) + 1
    config = TrainConfig.from_dict(lepton_options(arch, 1, batch))
    train_data = TrainData(
        task="classification", x={"train": x_np, "val": x_np[:batch]},
        y={"train": y_np, "val": y_np[:batch]}, classes=[str(c) for c in range(n_out)],
        feature_names=[], groups={}, pipeline=[], target="target")
    project_path = data / f"ab-{time.time_ns()}.lepton"
    shutil.copyfile(data / "base.lepton", project_path)
    with Project.open(project_path) as project:
        run, _ = project.runs.queue("tab" if arch == "mlp" else "img", config)
    tracker = RunTracker(project_path, run.id)
    torch.manual_seed(0)
    spec = model_spec(config, tuple(x_np.shape[1:]), n_out)
    trainer = Trainer(build(spec), train_data, config, tracker, torch.device("cpu"))
    plain_step = _plain_block(arch, torch.from_numpy(x_np), torch.from_numpy(y_np), batch)
    variants = {"plain": plain_step, "lepton": trainer._train_epoch}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(cpu["plain"]) < MIN_AB_ROUNDS:
        for name in random.sample(list(variants), len(variants)):
            start = time.process_time()
            variants[name]()
            cpu[name].append((time.process_time() - start) / block)
    tracker.close()
    for leftover in data.glob(project_path.name + "*"):
        leftover.unlink()
    return {"cpu_per_step": cpu, "block": block, "rounds": len(cpu["plain"]),
            "package": str(Path(lepton_desktop.__file__).parent.parent)}


def _plain_block(arch: str, x: Any, y: Any, batch: int) -> Callable[[], None]:
    import torch

    model = plain_model(arch, tuple(x.shape[1:]), int(y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    def block() -> None:
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for begin in range(0, len(y), batch):
            index = order[begin : begin + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[index]), y[index]).backward()
            optimizer.step()

    return block


def ab_report(arch: str, results: list[dict[str, Any]]) -> str:
    """One row per package: plain and Lepton CPU us/step, the overhead and the ratio."""
    rows = []
    for result in results:
        cpu = result["cpu_per_step"]
        plain, ours = statistics.median(cpu["plain"]), statistics.median(cpu["lepton"])
        paired = statistics.median(p / q for p, q in zip(cpu["plain"], cpu["lepton"],
                                                         strict=True))
        rows.append([result["package"], f"{plain * 1e6:,.1f}", f"{ours * 1e6:,.1f}",
                     f"{(ours - plain) * 1e6:+,.1f}", f"{paired:.3f}",
                     "PASS" if paired >= GOAL_RATIO else "FAIL"])
    first = results[0]
    header = ["lepton_desktop from", "plain CPU us/step", "Lepton CPU us/step",
              "overhead us/step", "ratio (median of pairs)", f">= {GOAL_RATIO}"]
    return "\n".join([
        f"### {arch}: in-process A/B, {first['rounds']} rounds of {first['block']} steps "
        "(plain steps vs Trainer._train_epoch with a RunTracker), process CPU time", "",
        markdown_table(header, rows)])


def child_main(args: argparse.Namespace) -> None:
    """Run one method for one architecture in this fresh process; print the result."""
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "ab":
        result = run_ab(args.arch, args.workdir, args.batch_size, args.ab_seconds,
                        args.ab_block)
    else:
        runner = run_plain if args.child == "plain" else run_lepton
        result = runner(args.arch, args.workdir, args.epochs, args.batch_size)
    result["threads"] = torch.get_num_threads()
    emit_result(result)


# -- the report ---------------------------------------------------------------------------


def measure(args: argparse.Namespace, arch: str) -> dict[str, list[dict[str, Any]]]:
    """``args.repeat`` rounds of every method; the order rotates from round to round."""
    methods = METHODS + ((ALT,) if args.lepton_src else ())
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for round_no in range(args.repeat):
        shift = round_no % len(methods)
        for method in methods[shift:] + methods[:shift]:
            print(f"  {arch} round {round_no + 1}/{args.repeat}: {method} ...",
                  file=sys.stderr, flush=True)
            child_args = ["--child", "plain" if method == "plain" else "lepton",
                          "--arch", arch, "--epochs", str(args.epochs),
                          "--batch-size", str(args.batch_size), "--threads", str(args.threads),
                          "--workdir", str(args.workdir)]
            if method == ALT:
                result = run_child_from(args.lepton_src, args.workdir, child_args)
            else:
                result = run_child(MODULE, child_args)
            runs[method].append(result)
            print(f"    steps {_rate(result, 'step'):,.0f} samples/s, "
                  f"end-to-end {_rate(result, 'e2e'):,.0f}", file=sys.stderr, flush=True)
    return runs


def measure_ab(args: argparse.Namespace, arch: str) -> list[dict[str, Any]]:
    """The in-process A/B with this repository's package, then with ``--lepton-src``'s."""
    child_args = ["--child", "ab", "--arch", arch, "--batch-size", str(args.batch_size),
                  "--threads", str(args.threads), "--ab-seconds", str(args.ab_seconds),
                  "--ab-block", str(args.ab_block), "--workdir", str(args.workdir)]
    print(f"  {arch} in-process A/B ...", file=sys.stderr, flush=True)
    results = [run_child(MODULE, child_args)]
    if args.lepton_src:
        print(f"  {arch} in-process A/B with {args.lepton_src} ...", file=sys.stderr, flush=True)
        results.append(run_child_from(args.lepton_src, args.workdir, child_args))
    return results


def run_child_from(src: Path, workdir: Path, args: list[str]) -> dict[str, Any]:
    """A child that imports ``lepton_desktop`` from ``src`` (and ``bench`` from here).

    It runs in ``workdir``, with ``src`` ahead of this repository on ``PYTHONPATH``, so
    a patched copy of the package can be measured against the committed one in the
    same rounds. Raises RuntimeError when the child prints no result.
    """
    import os
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", MODULE, *args], cwd=workdir, env=env,
                          capture_output=True, text=True, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return dict(json.loads(line[len(RESULT_MARKER):]))
    raise RuntimeError(f"child from {src} exited {proc.returncode}:\n{proc.stderr[-4000:]}")


KINDS = ("step", "median_step", "epoch_cpu", "fit", "e2e")


def _rate(result: dict[str, Any], kind: str) -> float:
    if kind == "median_step":
        step = result["median_step_s"]
        return result["batch"] / step if step > 0 else 0.0
    samples = result["step_samples"] if kind == "step" else result["epochs"] * result["n_train"]
    seconds = result[f"{kind}_s"]
    return samples / seconds if seconds > 0 else 0.0


def _median_rate(results: list[dict[str, Any]], kind: str) -> float:
    return statistics.median(_rate(r, kind) for r in results)


def report(arch: str, runs: dict[str, list[dict[str, Any]]]) -> str:
    """The side-by-side table for one architecture, the goal, and Lepton's time split."""
    plain, lepton = runs["plain"], runs["lepton"]
    named = [("plain PyTorch (floor)", plain), ("Lepton Project.train", lepton)]
    if ALT in runs:
        named.append((f"Lepton from {runs[ALT][0]['package']}", runs[ALT]))
    rows = []
    for name, results in named:
        rows.append([name] + [f"{_median_rate(results, k):,.0f}" for k in KINDS]
                    + [f"{statistics.median(r['final_loss'] for r in results):.4f}"])
    for name, results in named[1:]:
        ratios = [_median_rate(results, k) / _median_rate(plain, k) for k in KINDS]
        rows.append([f"ratio ({name}) / plain"] + [f"{r:.3f}" for r in ratios] + [""])
    header = ["method", "steps samples/s", "median step samples/s", "epochs samples/CPU-s",
              "fit samples/s", "end-to-end samples/s", "last step loss"]
    first = lepton[0]
    lines = [f"### {arch}: {first['n_train']:,} training rows x {first['epochs']} epochs, "
             f"batch {first['batch']}, torch threads: plain {plain[0]['threads']}, "
             f"Lepton {first['threads']} (after its own small-batch rule), "
             f"medians of {len(plain)} rounds (order rotated)", "",
             markdown_table(header, rows), ""]
    lines += [_goal_line(name, plain, results) for name, results in named[1:]]
    lines.append(_split_line("Lepton", lepton))
    if ALT in runs:
        lines.append(_split_line(f"Lepton from {runs[ALT][0]['package']}", runs[ALT]))
    return "\n".join(lines)


def _goal_line(name: str, plain: list[dict[str, Any]], ours: list[dict[str, Any]]) -> str:
    """The goal on paired ratios: each round's run against the same round's floor.

    A ratio of two runs minutes apart moves with the machine's load; the median of
    the per-round ratios is steadier than the ratio of the medians.
    """
    paired = {k: [_rate(q, k) / _rate(p, k) for p, q in zip(plain, ours, strict=True)]
              for k in ("step", "median_step", "epoch_cpu")}
    median = {k: statistics.median(v) for k, v in paired.items()}
    verdict = "PASS" if median["step"] >= GOAL_RATIO else "FAIL"
    return (f"- {name}: goal steps ratio >= {GOAL_RATIO}: median of per-round ratios "
            f"{median['step']:.3f} {verdict} ({', '.join(f'{r:.3f}' for r in paired['step'])})"
            f"; by the median step {median['median_step']:.3f}, by CPU time "
            f"{median['epoch_cpu']:.3f}")


def _split_line(name: str, lepton: list[dict[str, Any]]) -> str:
    parts = {
        "optimizer steps (logged spans)": "step_s", "per-epoch train+val evaluation": "eval_s",
        "checkpoint serialization": "serialize_s", "whole fit": "fit_s",
        "loading the data from the project": "load_s",
        "test evaluation (metrics, baseline, permutation importance)": "test_eval_s",
        "whole Project.train": "e2e_s",
    }
    text = ", ".join(f"{label} {statistics.median(r[key] for r in lepton):.1f} s"
                     for label, key in parts.items())
    return f"- {name}, time split (median): {text}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and ``--workdir`` are for the bench itself)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", default=",".join(ARCHS), help="mlp, cnn or mlp,cnn")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the table")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--images", type=int, default=12_000, help="images for the CNN")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads in both (default 1; see README)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of separate runs (median; 0: only the A/B)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--lepton-src", type=Path,
                        help="a folder holding another (patched) lepton_desktop package: "
                             "also train with it, in the same rounds, as a third row")
    parser.add_argument("--ab-seconds", type=float, default=40,
                        help="time for each in-process A/B (0: skip it)")
    parser.add_argument("--ab-block", type=int, default=50, help="steps per A/B block")
    parser.add_argument("--child", choices=(*METHODS, "ab"), help=argparse.SUPPRESS)
    parser.add_argument("--arch", choices=ARCHS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace, archs: list[str]) -> None:
    """Write the data and the base project into ``args.workdir``."""
    print(f"preparing data in {args.workdir} ...", file=sys.stderr, flush=True)
    make_tabular(args.workdir / "table.parquet", args.rows, args.features, args.seed)
    images = None
    if "cnn" in archs:
        images = args.workdir / "images"
        make_images(images, args.images, args.image_size, args.seed)
    make_project(args.workdir / "base.lepton", args.workdir / "table.parquet", images)


def main(argv: list[str] | None = None) -> int:
    """Prepare the data once, measure each architecture, print the tables."""
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    if set(archs) - set(ARCHS) or args.repeat < 0 or args.ab_seconds < 0:
        print(f"error: --archs takes {', '.join(ARCHS)}; --repeat and --ab-seconds >= 0",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lepton-train-bench-") as tmp:
        args.workdir = Path(tmp)
        if args.lepton_src:
            args.lepton_src = args.lepton_src.resolve()
        prepare(args, archs)
        tables = [report(arch, measure(args, arch)) for arch in archs] if args.repeat else []
        if args.ab_seconds > 0:
            tables += [ab_report(arch, measure_ab(args, arch)) for arch in archs]
    print("\n\n".join(tables))
    print(f"\n- {machine_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
