"""What the strong baseline costs a training run, and how often the network beats it.

For each dataset (the sample and scikit-learn/statsmodels sets of ``bench.train_quality``:
tables, yearly and monthly series, digit images) the bench creates a fresh project,
prepares a stored split and trains with DEFAULT settings through the command line
(``lepton-desktop train P VERSION --arch ARCH --seed S``: a fresh process, as each
training worker is), as a user would. Each run fits its strong baseline after training
and records both times:

- the anchor: the network's own training time (``network_fit_seconds``, the epochs) in
  a run of the same case and seed with ``--no-strong-baseline``;
- ours: the wall time the strong baseline added to the run: the whole ``train``
  process's wall time with it minus without it (the strong baseline's process starts
  before torch is imported and fits beside the epochs, so what it adds is the wait
  after the evaluation, ``stage_seconds``, and whatever it slows the run by); and the
  fits alone (``fit_seconds``).

Ratio = added wall time / network training time (goal: at most 20% on tables). Both
runs share the machine with whatever else runs: on a loaded one, read several seeds
(``--repeat`` alternates the two runs and takes the median of each). The
last columns say which classical model was kept and whether the network beat it on the
test split (accuracy, R², or MSE for forecasts), with the tally at the end.

    .venv/bin/python -m bench.strong_baseline_cost                    # every case, seed 0
    .venv/bin/python -m bench.strong_baseline_cost --only iris,digits --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench._common import REPO, machine_line, markdown_table
from bench.train_quality import CASES, SPLIT, Case

#: The cases measured by default (they need only scikit-learn and statsmodels).
DEFAULT = ("iris", "wine", "breast_cancer", "anes96", "diabetes", "star98", "fair",
           "digits", "nile", "sunspots", "co2")  # fmt: skip
QUICK = ("iris", "wine", "diabetes", "digits", "nile")
GOAL = 0.20


def run_case(case: Case, seed: int, folder: Path, repeat: int = 1) -> dict[str, Any] | str:
    """Train ``case`` once with default settings; its times and the comparison."""
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.project import Project

    work = folder / f"{case.name}-{seed}"
    work.mkdir()
    try:
        source, target = case.source(work)
    except ImportError as exc:
        return f"skipped: {exc.name} is not installed"
    path = work / "p.lepton"
    with Project.create(path) as project:
        project.import_dataset(source, case.name, kind=case.kind, target=target)
        version = project.prep(f"{case.name}:1", PrepOptions(split=SPLIT, seed=seed))
    walls: dict[str, list[float]] = {"alone": [], "with": []}
    for _ in range(repeat):
        alone = _train(path, version.ref, case, seed, "--no-strong-baseline")
        if isinstance(alone, str):
            return alone
        with_it = _train(path, version.ref, case, seed)
        if isinstance(with_it, str):
            return with_it
        walls["alone"].append(alone[1])
        walls["with"].append(with_it[1])
    alone, run = alone[0], with_it[0]
    evaluation = run.evaluation or {}
    strong = evaluation["strong_baseline"]
    key = strong["gain"]["metric"]
    network = float(evaluation["network_fit_seconds"])
    return {
        "alone": float((alone.evaluation or {})["network_fit_seconds"]),
        "wall_alone": _median(walls["alone"]),
        "wall_with": _median(walls["with"]),
        "network": network,
        "fit": float(strong["fit_seconds"]),
        "stage": float(strong["stage_seconds"]),
        "name": strong["name"],
        "metric": key,
        "ours": float(evaluation["test"][key]),
        "strong": float(strong["metrics"][key]),
        "gain": float(strong["gain"]["value"]),
        "epochs": int(run.epochs_done or 0),
        "rows": int(evaluation.get("n_test", 0)),
    }


def _train(path: Path, version: str, case: Case, seed: int, *options: str) -> Any:
    """One ``train`` in a fresh process: ``(its run, the process's wall seconds)``, or
    why it failed."""
    from lepton_desktop.core.project import Project

    command = [sys.executable, "-m", "lepton_desktop", "train", str(path), version,
               "--arch", case.arch, "--seed", str(seed), "--json", *options]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        return f"failed: {done.stderr.strip()[-200:]}"
    with Project.open(path) as project:
        return project.runs.get(json.loads(done.stdout)["run_id"]), wall


def table(rows: list[tuple[Case, int, dict[str, Any] | str]]) -> str:
    """The Markdown table, one line per case and seed, with the ratios per kind."""
    lines: list[list[str]] = []
    ratios: dict[str, list[float]] = {"tabular": [], "images": [], "timeseries": []}
    fits: dict[str, list[float]] = {"tabular": [], "images": [], "timeseries": []}
    outcomes = {"yes": 0, "tie": 0, "no": 0}
    for case, seed, r in rows:
        if isinstance(r, str):
            lines.append([case.name, str(seed), case.kind, r, *[""] * 11])
            continue
        added = r["wall_with"] - r["wall_alone"]
        ratio = added / max(r["alone"], 1e-9)
        ratios[case.kind].append(ratio)
        fits[case.kind].append(r["fit"] / max(r["alone"], 1e-9))
        outcome = "yes" if r["gain"] > 0 else "tie" if r["gain"] == 0 else "no"
        outcomes[outcome] += 1
        lines.append([
            case.name, str(seed), f"{case.kind}/{case.arch}",
            f"{r['alone']:.2f} s ({r['epochs']} ep)", f"{r['network']:.2f} s",
            f"{r['wall_alone']:.2f} s", f"{r['wall_with']:.2f} s",
            f"{r['fit']:.2f} s", f"{r['stage']:.2f} s", f"{added:+.2f} s", f"{ratio:.1%}",
            f"{fits[case.kind][-1]:.1%}", r["name"],
            f"{r['metric']} {r['ours']:.4g} vs {r['strong']:.4g}",
            outcome,
        ])  # fmt: skip
    header = ["dataset", "seed", "kind", "network training alone (anchor)",
              "network training beside the strong baseline",
              "train process, without", "train process, with", "strong fits",
              "wait after the evaluation", "added wall time (ours)", "ratio",
              "ratio of the fits alone",
              "strong baseline",
              "test: network vs strong", "network wins"]  # fmt: skip
    summary = [
        f"- {kind}: median ratio {_median(v):.1%} (max {max(v):.1%}); the fits alone "
        f"{_median(fits[kind]):.1%} (max {max(fits[kind]):.1%}); goal on tables: at most "
        f"{GOAL:.0%}"
        for kind, v in ratios.items()
        if v
    ]
    summary.append(
        f"- the network beats its strong baseline on {outcomes['yes']} of "
        f"{sum(outcomes.values())} runs (ties: {outcomes['tie']}, losses: {outcomes['no']})"
    )
    return "\n".join([markdown_table(header, lines), "", *summary])


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each, alternating (median wall; default 3)")  # fmt: skip
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(QUICK if args.quick else DEFAULT)
    cases = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in cases]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    rows: list[tuple[Case, int, dict[str, Any] | str]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for seed in seeds:
                result = run_case(cases[name], seed, Path(folder), args.repeat)
                rows.append((cases[name], seed, result))
                print(f"  {name} seed {seed}: {rows[-1][2]}", file=sys.stderr, flush=True)
    print(f"Strong baseline cost per training run, default settings · {machine_line()}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
