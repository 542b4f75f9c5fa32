"""``selftest [--json]``: the whole loop on a throwaway project, one timed line per step.

What an installed (or frozen) app is checked with: a project in a temporary folder,
the sample iris table imported and prepared, one short training run in a real
worker process, a two-trial tuning study, a real server on 127.0.0.1 answering a
real HTTP client, a bundle exported and served without its project. Each step runs
as the app would run it (worker and commands through this installation's own
executable, :func:`~lepton_desktop.core.system.launch.cli_argv`), each has a time limit,
and the first failure ends the test naming its step (exit status 1).

The human output is one line per step, flushed as it ends (the GUI's Help → Run
Self-Test shows these lines as they come); ``--json`` prints one object at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lepton_desktop import __version__, paths
from lepton_desktop.cli.common import Command, print_json
from lepton_desktop.core.system import launch

#: Seconds a step may take before it counts as failed (a worker starts a fresh Python
#: and imports torch; a loaded 2-core machine needs tens of seconds for some steps).
STEP_TIMEOUT_S = 180.0
#: A setosa, a versicolor and a virginica from the sample table, as clients send them.
RECORDS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.4, "sepal_width": 3.2, "petal_length": 4.5, "petal_width": 1.5},
    {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5},
]
_URL = re.compile(r"http://127\.0\.0\.1:\d+")


class StepFailed(Exception):
    """A step's check did not hold (the message says what was found)."""


@dataclasses.dataclass
class Step:
    """One step's outcome: its name, whether it passed, its time and what it found."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclasses.dataclass
class Loop:
    """What the steps hand on to each other, in one temporary folder."""

    folder: Path
    project: Path = Path()
    dataset: str = ""
    model: str = ""
    served: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _add_selftest(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("selftest", help="check the installation: the whole loop, headless")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (debugging)")
    return p


def cmd_selftest(args: argparse.Namespace) -> int:
    """Run every step in order; exit 0 when all passed, 1 at the first failure."""
    # Help → Run Self-Test stops a running test with SIGTERM: clean up as for Ctrl-C
    # (its workers and servers stop with it: they watch their launcher).
    signal.signal(signal.SIGTERM, _interrupt)
    folder = Path(tempfile.mkdtemp(prefix="lepton-selftest-"))
    loop = Loop(folder)
    steps: list[Step] = []
    started = time.perf_counter()
    try:
        for name, run in STEPS:
            step = _run_step(name, run, loop)
            steps.append(step)
            if not args.json:
                _print_step(step)
            if not step.ok:
                break
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    total = time.perf_counter() - started
    failed = next((s.name for s in steps if not s.ok), None)
    if args.json:
        print_json({"ok": failed is None, "failed": failed, "seconds": round(total, 3),
                    "version": __version__, "folder": str(folder) if args.keep else None,
                    "steps": [dataclasses.asdict(s) for s in steps]})  # fmt: skip
    else:
        verdict = f"failed at: {failed}" if failed else "all steps passed"
        print(f"selftest: {verdict} ({total:.1f} s)", flush=True)
    return 0 if failed is None else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_step(name: str, run: Callable[[Loop], str], loop: Loop) -> Step:
    started = time.perf_counter()
    try:
        detail = run(loop)
        ok = True
    except Exception as exc:  # any failure is this step's: named, never a traceback
        detail, ok = f"{exc.__class__.__name__}: {exc}".strip(), False
    return Step(name, ok, round(time.perf_counter() - started, 3), detail)


def _print_step(step: Step) -> None:
    mark = "ok  " if step.ok else "FAIL"
    print(f"{mark} {step.name:<22} {step.seconds:6.2f} s  {step.detail}", flush=True)


# -- the steps ---------------------------------------------------------------------------


def _create(loop: Loop) -> str:
    from lepton_desktop.core.project import Project

    loop.project = loop.folder / "selftest.lepton"
    Project.create(loop.project).close()
    return str(loop.project)


def _import(loop: Loop) -> str:
    from lepton_desktop.core.project import Project

    source = paths.sample_data_dir() / "iris.csv"
    with Project.open(loop.project) as project:
        version = project.import_dataset(source, "iris", target="species")
    _expect(version.n_rows == 150, f"150 rows imported, found {version.n_rows}")
    return f"{version.ref}: {version.n_rows} rows from {source.name}"


def _prep(loop: Loop) -> str:
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.project import Project

    options = PrepOptions(scale="standard", split=(0.7, 0.15, 0.15), seed=0)
    with Project.open(loop.project) as project:
        ready = project.prep("iris:1", options)
    loop.dataset = ready.ref
    return f"{ready.ref}: split {ready.splits}"


def _train(loop: Loop) -> str:
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.training.config import TrainConfig

    with Project.open(loop.project) as project:
        run, job_id = project.runs.queue(loop.dataset, TrainConfig(arch="mlp", epochs=30))
    done = _run_isolated(launch.worker_argv("train", loop.project, job_id))
    with Project.open(loop.project) as project:
        job, run = project.job(job_id), project.runs.get(run.id)
        model = next((m for m in project.models.list() if m.run_id == run.id), None)
    _expect(
        done.returncode == 0 and job.status == "succeeded" and model is not None,
        f"worker exited {done.returncode}, job {job.status}: {job.error or _tail(done)}",
    )
    assert model is not None
    loop.model = model.name
    accuracy = model.metrics.get("accuracy")
    score = f", test accuracy {accuracy:.2f}" if isinstance(accuracy, float) else ""
    return f"run {run.id}: {run.epochs_done} epochs in a worker process{score}, {model.ref}"


def _tune(loop: Loop) -> str:
    result = _command_json("tune", loop.project, loop.dataset, "--arch", "mlp", "--trials", "2",
                           "--epochs", "3", "--seed", "0")  # fmt: skip
    complete = result["trials"]["complete"] + result["trials"]["pruned"]
    _expect(result["n_trials"] == 2 and complete == 2, f"2 finished trials, found {result}")
    return f"study {result['study']}: 2 trials, best {result['metric']} {result['best_value']:.3g}"


def _serve_project(loop: Loop) -> str:
    with _Server(loop.project, "--model", loop.model) as server:
        loop.served = server.predict(loop.model)
    return f"{server.url}: {_labels(loop.served)}"


def _export(loop: Loop) -> str:
    out = loop.folder / "iris.zip"
    result = _command_json("export", loop.project, loop.model, "--format", "bundle", "--out", out)
    _expect(out.is_file(), f"{out} was not written")
    return f"{out.name}: {result['bytes']:,} bytes, checked on {result['checked_on']}"


def _serve_bundle(loop: Loop) -> str:
    with _Server(loop.folder / "iris.zip") as server:
        answers = server.predict(loop.model)
    for ours, theirs in zip(answers, loop.served, strict=True):
        _expect(ours["label"] == theirs["label"], f"bundle said {ours}, project {theirs}")
        for label, p in ours["probabilities"].items():
            _expect(
                abs(p - theirs["probabilities"][label]) < 1e-4,
                f"probability of {label}: bundle {p}, project {theirs['probabilities']}",
            )
    return f"{server.url}: the project's answers"


STEPS: tuple[tuple[str, Callable[[Loop], str]], ...] = (
    ("create project", _create),
    ("import sample data", _import),
    ("prepare", _prep),
    ("train in a worker", _train),
    ("tune two trials", _tune),
    ("serve the project", _serve_project),
    ("export a bundle", _export),
    ("serve the bundle", _serve_bundle),
)


# -- helpers ---------------------------------------------------------------------------


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _run_isolated(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` the way the app starts its workers (isolated environment and working
    folder), capturing its output, within the step's time."""
    return subprocess.run(
        argv,
        env=launch.worker_env(),
        cwd=launch.worker_cwd(),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )


def _command_json(*args: object) -> dict[str, Any]:
    """Run ``lepton-desktop ARGS --json`` as its own process; its one JSON object."""
    done = _run_isolated([*launch.cli_argv(), *map(str, args), "--json"])
    _expect(done.returncode == 0, f"{args[0]} exited {done.returncode}: {_tail(done)}")
    return dict(json.loads(done.stdout))


def _labels(answers: list[dict[str, Any]]) -> str:
    return ", ".join(a["label"] for a in answers)


class _Server:
    """``lepton-desktop serve SOURCE --port 0`` in its own process, stopped on exit."""

    def __init__(self, source: Path, *args: str) -> None:
        argv = [*launch.cli_argv(), "serve", str(source), "--port", "0", *args]
        self._process = subprocess.Popen(
            argv, env=launch.worker_env(), cwd=launch.worker_cwd(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""

    def __enter__(self) -> _Server:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not self.url:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise StepFailed(f"no address within {STEP_TIMEOUT_S:.0f} s") from None
            if line is None:
                raise StepFailed(f"the server exited: {' '.join(self._output[-3:])}")
            found = _URL.search(line)
            self.url = found.group(0) if found else ""
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()  # SIGTERM: a clean stop (the log is shipped)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._output.append(line.strip())
            self._lines.put(line)
        self._lines.put(None)

    def predict(self, model: str) -> list[dict[str, Any]]:
        """POST :data:`RECORDS` to ``/predict``; check and return the predictions."""
        import httpx

        reply = httpx.post(f"{self.url}/predict", json={"model": model, "records": RECORDS},
                           timeout=STEP_TIMEOUT_S)  # fmt: skip
        _expect(reply.status_code == 200, f"/predict answered {reply.status_code}: {reply.text}")
        answers = list(reply.json()["predictions"])
        _expect(len(answers) == len(RECORDS), f"{len(RECORDS)} predictions, got {answers}")
        for answer in answers:
            probabilities = answer["probabilities"]
            best = max(probabilities, key=probabilities.get)
            _expect(abs(sum(probabilities.values()) - 1.0) < 1e-4 and answer["label"] == best,
                    f"an answer that does not add up: {answer}")  # fmt: skip
            _expect(set(probabilities) == {"setosa", "versicolor", "virginica"},
                    f"classes {sorted(probabilities)} instead of the iris species")  # fmt: skip
        return answers


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("selftest", _add_selftest, cmd_selftest),)
