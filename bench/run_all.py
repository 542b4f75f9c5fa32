"""Run every benchmark and write one Markdown report of their side-by-side tables.

Each bench runs in its own interpreter (``python -m bench.<name> ...``) with the
options below (``--quick``: smaller inputs that keep the whole report to minutes), and
its standard output (the tables: ours, anchor, ratio) goes into the report under its
name, with the command, the wall time and the machine's load before and after, so a
number is read with what else the machine was doing. A bench that fails is reported
as failed (its last lines) and the others still run; the exit status is 1 then.

    .venv/bin/python -m bench.run_all                  # full sizes (about an hour)
    .venv/bin/python -m bench.run_all --quick          # minutes
    .venv/bin/python -m bench.run_all --only serving_latency,cli_startup --out r.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench._common import REPO

#: name -> (full options, quick options). Order: cheap first.
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "cli_startup": ([], ["--repeat", "3"]),
    "app_start": ([], ["--repeat", "3"]),
    "tune_overhead": ([], ["--trials", "100"]),
    "request_search": ([], ["--rows", "50000", "--repeat", "1"]),
    "request_log_browse": ([], ["--rows", "100000"]),
    "import_bench": ([], ["--rows", "200000"]),
    "pii_scan": ([], ["--rows", "200000", "--anchor-rows", "5000", "--labelled", "500"]),
    "metric_logging": ([], ["--rows", "50000", "--steps", "500", "--repeat", "1"]),
    "serving_latency": (["--variants"], ["--rounds", "1", "--seconds", "3"]),
    "serving_recovery": ([], ["--workers", "2", "--after", "8"]),
    "explain_speed": ([], ["--rows", "10", "--seconds", "3", "--rounds", "1"]),
    "monitoring_read": ([], ["--rows", "1000000"]),
    "live_quality": ([], ["--labels", "200000", "--write-labels", "20000"]),
    "study_plots": ([], ["--trials", "2000"]),
    "gui_responsiveness": ([], ["--rows", "200000"]),
    "tune_scaling": ([], ["--trials", "8", "--epochs", "10"]),
    "train_throughput": ([], ["--rows", "50000", "--images", "3000", "--repeat", "1",
                              "--ab-seconds", "10"]),
    "train_quality": ([], ["--seeds", "0"]),
    "dp_training": ([], ["--quick"]),
    "strong_baseline_cost": ([], ["--quick"]),
    "drift_vs_evidently": ([], ["--rows", "100000", "--reference", "20000",
                                "--write-rows", "20000"]),
    "encrypted_project": ([], ["--rows", "50000", "--metrics", "50000", "--rounds", "1",
                               "--seconds", "3"]),
}  # fmt: skip


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()} · {platform.system()} {platform.machine()} · "
        f"{os.cpu_count()} CPUs · Python {platform.python_version()} · load {load}"
    )


def run_one(name: str, options: list[str]) -> tuple[str, bool]:
    """Run one bench; return its report section and whether it succeeded."""
    command = [sys.executable, "-m", f"bench.{name}", *options]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    shown = " ".join(["python", "-m", f"bench.{name}", *options])
    header = [
        f"## {name}",
        "",
        f"`{shown}` · {seconds:.0f} s · load (1 min) {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after",
        "",
    ]
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        return "\n".join([*header, f"**failed** (exit {done.returncode}):", "",
                          "```", tail, "```", ""]), False  # fmt: skip
    return "\n".join([*header, done.stdout.strip(), ""]), True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs (minutes)")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "report.md")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benches: {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    started = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sections, failed = [], []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        section, ok = run_one(name, BENCHES[name][1 if args.quick else 0])
        sections.append(section)
        if not ok:
            failed.append(name)
    mode = "quick sizes" if args.quick else "full sizes"
    report = "\n".join([
        "# Lepton Desktop benchmarks", "",
        f"{started} · {mode} · {machine()}", "",
        "Every table compares us with an anchor measured in the same run (see "
        "bench/README.md for what each one runs).", "",
        *sections,
    ])  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
