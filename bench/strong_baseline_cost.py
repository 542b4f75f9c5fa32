"""What the strong baseline costs a training run, and how often the network beats it.

For each dataset (the sample and scikit-learn/statsmodels sets of ``bench.train_quality``:
tables, yearly and monthly series, digit images) the bench creates a fresh project,
prepares a stored split and trains with DEFAULT settings (``project.train(version,
arch=ARCH, seed=seed)``), as a user would. Each run fits its strong baseline in the
same worker code after training; the run records both times:

- the anchor: the network's own training time (``network_fit_seconds``, the epochs);
- ours: the strong baseline's fit time (all candidates fitted, ``fit_seconds``) and
  the wall time the whole strong-baseline stage added to the run (fits, scoring on
  validation and test), measured around the same call here, plus the import of
  scikit-learn's estimators, which each training worker (one process per run) pays once,
  measured in a fresh interpreter.

Ratio = added wall time (stage + import) / network training time (goal: at most 20% on
tables). The
last columns say which classical model was kept and whether the network beat it on
the test split (accuracy, R², or MSE for forecasts), with the count at the end.

    .venv/bin/python -m bench.strong_baseline_cost                    # every case, seed 0
    .venv/bin/python -m bench.strong_baseline_cost --only iris,digits --seeds 0,1
"""

from __future__ import annotations

import argparse
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


#: Seconds of the last strong-baseline stage (see :func:`time_the_stage`).
STAGE: dict[str, float] = {}


def time_the_stage() -> None:
    """Wrap the training service's strong-baseline stage to time it in this process."""
    from lepton_desktop.core.training import service, strong_baseline

    timing = STAGE
    fit = strong_baseline.fit_strong_baseline

    def timed(*args: Any, **kwargs: Any) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            return fit(*args, **kwargs)
        finally:
            timing["stage"] = time.perf_counter() - began

    service.strong_baseline.fit_strong_baseline = timed  # type: ignore[assignment]
    return timing


def run_case(case: Case, seed: int, folder: Path) -> dict[str, Any] | str:
    """Train ``case`` once with default settings; its times and the comparison."""
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.project import Project

    work = folder / f"{case.name}-{seed}"
    work.mkdir()
    try:
        source, target = case.source(work)
    except ImportError as exc:
        return f"skipped: {exc.name} is not installed"
    with Project.create(work / "p.lepton") as project:
        project.import_dataset(source, case.name, kind=case.kind, target=target)
        version = project.prep(f"{case.name}:1", PrepOptions(split=SPLIT, seed=seed))
        result = project.train(version.ref, arch=case.arch, seed=seed)
    evaluation = result.run.evaluation or {}
    strong = evaluation["strong_baseline"]
    key = strong["gain"]["metric"]
    return {
        "network": float(evaluation["network_fit_seconds"]),
        "fit": float(strong["fit_seconds"]),
        "stage": STAGE["stage"],
        "name": strong["name"],
        "metric": key,
        "ours": float(result.metrics[key]),
        "strong": float(strong["metrics"][key]),
        "gain": float(strong["gain"]["value"]),
        "epochs": int(result.run.epochs_done or 0),
        "rows": int(evaluation.get("n_test", 0)),
    }


def import_seconds() -> float:
    """Seconds a training worker takes to import the strong baseline's estimators (once
    per run: numpy, torch and the training code are loaded before, as in a worker);
    imported here too, so that the stages timed afterwards hold only fit and scoring."""
    code = (  # what a training worker has loaded by then is loaded first
        "import time, numpy, torch, lepton_desktop.core.training.service; "
        "t = time.perf_counter(); "
        "import sklearn.linear_model, sklearn.ensemble, sklearn.exceptions, threadpoolctl; "
        "print(time.perf_counter() - t)"
    )
    times = [  # the least of three: the files in the page cache, as after a first run
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=REPO).stdout.strip())
        for _ in range(3)
    ]  # fmt: skip
    import sklearn.ensemble
    import sklearn.linear_model  # noqa: F401

    return min(times)


def table(rows: list[tuple[Case, int, dict[str, Any] | str]], imports: float) -> str:
    """The Markdown table, one line per case and seed, with totals per kind; the ratio
    counts the stage plus the estimators' import (``imports`` seconds, once per run)."""
    lines: list[list[str]] = []
    ratios: dict[str, list[float]] = {"tabular": [], "images": [], "timeseries": []}
    staged: dict[str, list[float]] = {"tabular": [], "images": [], "timeseries": []}
    outcomes = {"yes": 0, "tie": 0, "no": 0}
    for case, seed, r in rows:
        if isinstance(r, str):
            lines.append([case.name, str(seed), case.kind, r, "", "", "", "", "", "", ""])
            continue
        network = max(r["network"], 1e-9)
        ratio, stage_ratio = (r["stage"] + imports) / network, r["stage"] / network
        ratios[case.kind].append(ratio)
        staged[case.kind].append(stage_ratio)
        outcome = "yes" if r["gain"] > 0 else "tie" if r["gain"] == 0 else "no"
        outcomes[outcome] += 1
        lines.append([
            case.name, str(seed), f"{case.kind}/{case.arch}",
            f"{r['network']:.2f} s ({r['epochs']} ep)", f"{r['fit']:.2f} s",
            f"{r['stage']:.2f} + {imports:.2f} s", f"{stage_ratio:.1%}", f"{ratio:.1%}",
            r["name"],
            f"{r['metric']} {r['ours']:.4g} vs {r['strong']:.4g}",
            outcome,
        ])  # fmt: skip
    header = ["dataset", "seed", "kind", "network training (anchor)", "strong fit",
              "strong stage + import (ours)", "ratio: stage", "ratio: with import",
              "strong baseline",
              "test: network vs strong", "network wins"]  # fmt: skip
    summary = [
        f"- {kind}: median ratio {_median(staged[kind]):.1%} for the stage alone (max "
        f"{max(staged[kind]):.1%}), {_median(v):.1%} with the import (max {max(v):.1%}); "
        f"goal on tables: at most {GOAL:.0%}"
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
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(QUICK if args.quick else DEFAULT)
    cases = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in cases]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    time_the_stage()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    imports = import_seconds()  # paid once per worker process, so once per run
    rows: list[tuple[Case, int, dict[str, Any] | str]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for seed in seeds:
                rows.append((cases[name], seed, run_case(cases[name], seed, Path(folder))))
                print(f"  {name} seed {seed}: {rows[-1][2]}", file=sys.stderr, flush=True)
    print(f"Strong baseline cost per training run, default settings · {machine_line()}\n")
    print(table(rows, imports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
