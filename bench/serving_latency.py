"""Serving: latency at concurrency 1 and 32, throughput, cold start; wrk as the client.

One 16-feature MLP classifier (trained here on synthetic data) served by:

* **bare FastAPI** (the floor): one ``async`` endpoint doing JSON -> forward -> JSON on
  the same torch module, under uvicorn with uvloop and httptools (the best uvicorn
  setup); it gets the already-preprocessed features;
* **Lepton** ``lepton-desktop serve PROJECT``: raw records in (the stored scaling is
  applied), labels and probabilities out, with its request log ON (every request is
  written into the project file; the count is checked afterwards), dynamic batching
  on; once with one process and once with ``--workers 2``;
* with ``--variants``: Lepton without its captured inputs (``--no-capture``); then, in a
  phase of their own (the other servers stopped, runs of at least ``PAIR_SECONDS``), the
  same model exported as a bundle, served without and with ``--log PROJECT``: monitoring
  off vs on on one server, checked against the issue's goals (p99 <= 1.1x, req/s >= 0.95x);
* **MLflow** ``mlflow models serve --env-manager local`` and a **leptonai Photon**, when
  their venvs exist (``bench/out/venv-mlflow``, ``bench/out/venv-photon``).

The load comes from ``wrk`` (Debian's package; C, a few microseconds of client CPU per
request): ``-c1`` for latency at concurrency 1, ``-c32`` for latency and throughput at
32. Every server is started first; then each round measures every server in turn, and
the table shows the median of the rounds, so a change in the machine's load hits all
servers alike. Client and servers share the same cores.
Cold start: from spawning the server's process to its first answered request.

Usage: ``python -m bench.serving_latency [--rounds 3] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "serving"
MLFLOW_PYTHON = REPO / "bench" / "out" / "venv-mlflow" / "bin" / "python"
PHOTON_PYTHON = REPO / "bench" / "out" / "venv-photon" / "bin" / "python"
#: Seconds per wrk run of the monitoring on/off pair at least: three times the time the
#: journal shipper waits while a server is busy (``journal.MAX_LAG_S``), so that most of
#: each run ships under load instead of waiting it out.
PAIR_SECONDS = 30.0
FEATURES = 16


@dataclasses.dataclass
class Target:
    """One server to measure: how to start it and what to send."""

    label: str
    argv: list[str]
    port: int
    path: str
    body: bytes
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    note: str = ""


@dataclasses.dataclass
class Result:
    """What one server achieved."""

    label: str
    cold_start_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p50_c32_ms: float | None = None
    p99_c32_ms: float | None = None
    rps: float | None = None
    errors: int = 0
    answered: int = 0  # every answer the clients got (to check the request log)
    note: str = ""


# -- the model ------------------------------------------------------------------------


def make_project() -> tuple[Path, dict[str, Any], list[float]]:
    """A project with one trained 16-feature MLP: (path, a raw record, its features)."""
    import numpy as np

    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.project import Project

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "serving-bench.lepton"
    for stale in OUT.glob("serving-bench.lepton*"):  # the file, its WAL, its journal folder
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(4000, FEATURES))
    y = np.digitize(x[:, :4].sum(axis=1) + rng.normal(0, 1, 4000), [4.0, 12.0])
    csv = OUT / "synthetic16.csv"
    header = ",".join(f"f{i}" for i in range(FEATURES)) + ",label\n"
    lines = (",".join(f"{v:.5f}" for v in row) + f",c{k}\n" for row, k in zip(x, y, strict=True))
    body = "".join(lines)
    csv.write_text(header + body, encoding="utf-8")
    with Project.create(path) as project:
        project.import_dataset(csv, "syn", target="label")
        project.prep("syn", _scaling())
        project.train("syn", arch="mlp", epochs=4, model_name="syn")
        predictor = Predictor.from_project(project, "syn")
    record = {f"f{i}": float(x[0, i]) for i in range(FEATURES)}
    features = predictor.encode([record])[0].tolist()
    _save_module(predictor)
    return path, record, features


def _scaling() -> Any:
    from lepton_desktop.core.datasets.prep import PrepOptions

    return PrepOptions(scale="standard")


def _save_module(predictor: Any) -> None:
    import torch

    torch.save(predictor.module.state_dict(), OUT / "weights.pt")
    (OUT / "spec.json").write_text(json.dumps(predictor.parts.params["spec"]), encoding="utf-8")


def _load_module() -> Any:
    import torch

    from lepton_desktop.core.training.models import build

    module = build(json.loads((OUT / "spec.json").read_text(encoding="utf-8")))
    module.load_state_dict(torch.load(OUT / "weights.pt", weights_only=True))
    return module.eval()


# -- the anchors' servers (run as ``python -m bench.serving_latency --floor PORT``) ----


def floor_app() -> Any:
    """The floor: bare FastAPI, JSON -> forward -> JSON (also ``uvicorn --factory``'s app)."""
    import torch
    from fastapi import FastAPI

    torch.set_num_threads(1)
    module = _load_module()
    app = FastAPI()

    @app.post("/predict")
    async def predict(payload: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode():
            outputs = module(torch.tensor(payload["inputs"], dtype=torch.float32))
        return {"outputs": outputs.tolist()}

    return app


def floor_server(port: int) -> None:
    """Serve :func:`floor_app` with uvicorn's best setup (uvloop, httptools)."""
    import uvicorn

    uvicorn.run(floor_app(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, loop="uvloop", http="httptools")  # fmt: skip


def save_mlflow_model() -> None:
    """In MLflow's venv: ``mlflow.pytorch.save_model`` of the module (with a signature)."""
    import shutil

    import mlflow.pytorch
    import numpy as np
    from mlflow.models import infer_signature

    target = OUT / "mlflow-model"
    shutil.rmtree(target, ignore_errors=True)
    module = _load_module()
    example = np.zeros((1, FEATURES), dtype=np.float32)
    import torch

    with torch.inference_mode():
        output = module(torch.from_numpy(example)).numpy()
    mlflow.pytorch.save_model(
        module, str(target), signature=infer_signature(example, output), input_example=example
    )


PHOTON_SOURCE = """
import json, torch
from leptonai.photon import Photon
from bench.serving_latency import _load_module

class Classifier(Photon):
    def init(self):
        torch.set_num_threads(1)
        self.module = _load_module()

    @Photon.handler
    def predict(self, inputs: list) -> dict:
        with torch.inference_mode():
            return {"outputs": self.module(torch.tensor(inputs, dtype=torch.float32)).tolist()}
"""


def photon_server(port: int) -> None:
    """In the Photon venv: serve the module as a leptonai Photon."""
    sys.path.insert(0, str(OUT))
    (OUT / "photon_classifier.py").write_text(PHOTON_SOURCE, encoding="utf-8")
    from photon_classifier import Classifier  # type: ignore[import-not-found]

    Classifier(name="classifier").launch(host="127.0.0.1", port=port)


# -- the load generator: wrk ------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "WRK-RESULT %d %d %d %d %d\\n", latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
"""


@dataclasses.dataclass
class Load:
    """What one wrk run measured."""

    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    errors: int


def wrk(target: Target, connections: int, seconds: float) -> Load:
    """Run wrk against ``target`` and parse its result line."""
    OUT.mkdir(parents=True, exist_ok=True)
    script = OUT / f"wrk-{target.port}.lua"
    script.write_text(WRK_SCRIPT.format(body=_lua_string(target.body)), encoding="utf-8")
    threads = 1 if connections == 1 else 2
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s",
            "-s", str(script), f"http://127.0.0.1:{target.port}{target.path}"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK-RESULT"))
    p50, p99, requests, duration_us, errors = (int(v) for v in line.split()[1:])
    return Load(p50 / 1000, p99 / 1000, requests / (duration_us / 1e6), requests, errors)


def _lua_string(body: bytes) -> str:
    return "'" + body.decode().replace("\\", "\\\\").replace("'", "\\'") + "'"


def cold_start(target: Target, started: float, process: subprocess.Popen[bytes]) -> float:
    """Seconds from ``started`` to the first 200 answer."""
    import http.client

    while time.perf_counter() - started < 120:
        if process.poll() is not None:
            raise OSError(f"{target.label} exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
        try:
            connection.request("POST", target.path, target.body,
                               {"Content-Type": "application/json"})  # fmt: skip
            if connection.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.02)
    raise TimeoutError(f"{target.label} did not answer within 120 s")


def start(target: Target) -> tuple[subprocess.Popen[bytes], Result]:
    """Start one server and wait for its first answer (its cold start)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_DISABLE_TELEMETRY="true", **target.env)
    started = time.perf_counter()
    process = subprocess.Popen(
        target.argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    result = Result(target.label, note=target.note)
    try:
        result.cold_start_s = cold_start(target, started, process)
        result.answered = 1
    except (TimeoutError, OSError) as exc:
        result.note = f"failed: {exc}; {_tail(process)}"
    return process, result


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _tail(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None or process.stderr is None:
        return ""
    return process.stderr.read().decode(errors="replace")[-300:]


def settle(project: Path, timeout: float = 120.0) -> None:
    """Wait until the servers' request log is shipped (neither the journals nor the
    log's newest row change for a second): a server catching up on its log must not run
    beside the next measurement."""
    import sqlite3

    journals = project.with_name(project.name + "-requests")
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{project}?mode=ro", uri=True, timeout=30)
        try:
            newest = conn.execute("SELECT max(rowid) FROM request_log").fetchone()[0]
        finally:
            conn.close()
        sizes = sorted((p.name, p.stat().st_size) for p in journals.glob("*.journal")
                       if p.exists())  # fmt: skip
        if (newest, sizes) == last:
            return
        last = (newest, sizes)
        time.sleep(1.0)


def measure_rounds(
    targets_: list[Target], results: list[Result], rounds: int, seconds: float,
    project: Path | None = None,
) -> None:
    """Each round: every live server at c1, then at c32; keep the medians. With
    ``project``, each run waits until its request log is shipped (see :func:`settle`)."""
    runs: dict[str, dict[int, list[Load]]] = {t.label: {1: [], 32: []} for t in targets_}
    live = [(t, r) for t, r in zip(targets_, results, strict=True) if r.cold_start_s]
    for target, result in live:  # warm-up: caches, allocators, the first batches
        for load in (wrk(target, 1, 1.0), wrk(target, 32, 1.0)):
            result.answered += load.requests
    for _ in range(rounds):
        for target, result in live:
            for connections in (1, 32):
                if project is not None:
                    settle(project)
                load = wrk(target, connections, seconds)
                runs[target.label][connections].append(load)
                result.answered += load.requests
                result.errors += load.errors
    for target, result in live:
        c1, c32 = runs[target.label][1], runs[target.label][32]
        result.p50_ms = statistics.median(x.p50_ms for x in c1)
        result.p99_ms = statistics.median(x.p99_ms for x in c1)
        result.p50_c32_ms = statistics.median(x.p50_ms for x in c32)
        result.p99_c32_ms = statistics.median(x.p99_ms for x in c32)
        result.rps = statistics.median(x.rps for x in c32)


# -- the run --------------------------------------------------------------------------


def targets(
    project: Path, record: dict[str, Any], features: list[float], variants: bool = False
) -> list[Target]:
    """Every server this run measures (anchors whose venv is missing are noted).

    ``variants`` adds Lepton without the captured inputs (the monitoring on/off pair is
    :func:`monitoring_pair`).
    """
    raw = json.dumps({"records": [record]}).encode()
    tensor = json.dumps({"inputs": [features]}).encode()
    me = [sys.executable, "-m", "bench.serving_latency"]
    serve = [sys.executable, "-m", "lepton_desktop", "serve", str(project), "--model", "syn"]
    found = [
        Target("bare FastAPI (floor)", [*me, "--floor", "18101"], 18101, "/predict", tensor),
        Target("Lepton /predict", [*serve, "--port", "18102"], 18102, "/predict", raw,
               note="raw record, scaling applied, log on"),
        Target("Lepton /predict --workers 2", [*serve, "--port", "18103", "--workers", "2"],
               18103, "/predict", raw, note="raw record, log on"),
    ]  # fmt: skip
    if variants:
        found.append(Target("Lepton /predict --no-capture",
                            [*serve, "--port", "18106", "--no-capture"], 18106, "/predict",
                            raw, note="log on, inputs not kept"))  # fmt: skip
    if MLFLOW_PYTHON.exists():
        mlflow = [str(MLFLOW_PYTHON), "-m", "mlflow", "models", "serve", "-m",
                  str(OUT / "mlflow-model"), "--env-manager", "local", "-p", "18104",
                  "-h", "127.0.0.1"]  # fmt: skip
        path = {"PATH": f"{MLFLOW_PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        found.append(  # it starts `uvicorn` from PATH: its venv's bin goes first
            Target("MLflow models serve", mlflow, 18104, "/invocations", tensor, env=path)
        )
    if _photon_ok():
        photon = [str(PHOTON_PYTHON), "-m", "bench.serving_latency", "--photon", "18105"]
        found.append(Target("leptonai Photon 0.27.3", photon, 18105, "/predict", tensor))
    return found


def monitoring_pair(project: Path, record: dict[str, Any]) -> list[Target]:
    """Monitoring off and on, on one server: the same exported bundle served without a
    log and with ``--log PROJECT`` (inputs captured, shipped into the project, rollups
    and drift sketches kept). Measured in a phase of their own, see :func:`main`."""
    raw = json.dumps({"records": [record]}).encode()
    serve = [sys.executable, "-m", "lepton_desktop", "serve", str(OUT / "syn.zip")]
    return [
        Target("Lepton bundle, no log", [*serve, "--port", "18107"], 18107, "/predict", raw,
               note="the same model from a bundle, nothing logged"),
        Target("Lepton bundle, log on", [*serve, "--port", "18108", "--log", str(project)],
               18108, "/predict", raw,
               note="the same bundle, --log PROJECT: monitoring on"),
    ]  # fmt: skip


def _export_bundle(project: Path) -> None:
    from lepton_desktop.core.project import Project

    (OUT / "syn.zip").unlink(missing_ok=True)
    with Project.open(project) as opened:
        opened.export("syn", "bundle", OUT / "syn.zip")


def _photon_ok() -> bool:
    if not PHOTON_PYTHON.exists():
        return False
    check = [str(PHOTON_PYTHON), "-c", "import leptonai.photon, torch"]
    return subprocess.run(check, capture_output=True, check=False).returncode == 0


def logged_requests(project: Path) -> tuple[int, int]:
    """(requests logged, deployments) in the bench project after the run."""
    from lepton_desktop.core.project import Project

    with Project.open(project) as opened:
        deployments = opened.serving.list()
        return sum(opened.serving.request_count(d.id) for d in deployments), len(deployments)


def table(results: list[Result]) -> str:
    """The markdown table, with ratios to the floor."""
    floor = next(r for r in results if r.label.startswith("bare"))
    lines = [
        "| server | cold start s | p50 ms c1 | p99 ms c1 | p50 ms c32 | p99 ms c32 | req/s c32 "
        "| p50 c1 / floor | p99 c1 / floor | p99 c32 / floor | req/s / floor | errors | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {_f(r.cold_start_s, 2)} | {_f(r.p50_ms, 2)} | {_f(r.p99_ms, 2)} "
            f"| {_f(r.p50_c32_ms, 1)} | {_f(r.p99_c32_ms, 1)} | {_f(r.rps, 0)} "
            f"| {_ratio(r.p50_ms, floor.p50_ms)} | {_ratio(r.p99_ms, floor.p99_ms)} "
            f"| {_ratio(r.p99_c32_ms, floor.p99_c32_ms)} | {_ratio(r.rps, floor.rps)} "
            f"| {r.errors} | {r.note} |"
        )
    return "\n".join(lines)


def goals(results: list[Result]) -> list[str]:
    """The issue's goals against the floor, PASS or FAIL (request log on)."""
    floor = next(r for r in results if r.label.startswith("bare"))
    one = next(r for r in results if r.label == "Lepton /predict")
    two = next(r for r in results if r.label.startswith("Lepton /predict --workers"))
    checks = [
        ("p50 at c1 <= 1.0x floor", one.p50_ms, floor.p50_ms, 1.0, "le"),
        ("p99 at c1 <= 1.5x floor", one.p99_ms, floor.p99_ms, 1.5, "le"),
        ("p50 at c32 <= 1.0x floor", one.p50_c32_ms, floor.p50_c32_ms, 1.0, "le"),
        ("p99 at c32 <= 1.5x floor", one.p99_c32_ms, floor.p99_c32_ms, 1.5, "le"),
        ("req/s at c32 >= 1.0x floor (one process)", one.rps, floor.rps, 1.0, "ge"),
        ("req/s at c32 >= 1.5x floor (--workers 2)", two.rps, floor.rps, 1.5, "ge"),
        ("p99 at c1 <= 1.5x floor (--workers 2)", two.p99_ms, floor.p99_ms, 1.5, "le"),
    ]
    off = next((r for r in results if r.label == "Lepton bundle, no log"), None)
    on = next((r for r in results if r.label == "Lepton bundle, log on"), None)
    if off is not None and on is not None:  # issue 11: monitoring on vs off
        checks += [
            ("monitoring on vs off: p99 at c1 <= 1.1x", on.p99_ms, off.p99_ms, 1.1, "le"),
            ("monitoring on vs off: p99 at c32 <= 1.1x", on.p99_c32_ms, off.p99_c32_ms, 1.1,
             "le"),
            ("monitoring on vs off: req/s at c32 >= 0.95x", on.rps, off.rps, 0.95, "ge"),
        ]  # fmt: skip
    lines = []
    for name, ours, anchor, bound, sense in checks:
        if not ours or not anchor:
            lines.append(f"- {name}: not measured")
            continue
        ratio = ours / anchor
        ok = ratio <= bound if sense == "le" else ratio >= bound
        lines.append(f"- {name}: {ratio:.2f}x {'PASS' if ok else 'FAIL'}")
    return lines


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def run_phase(
    found: list[Target], args: argparse.Namespace, project: Path, seconds: float | None = None
) -> list[Result]:
    """Start ``found``, measure them in rounds, stop them; their results."""
    started = [start(t) for t in found]
    results = [r for _, r in started]
    try:
        measure_rounds(found, results, args.rounds, seconds or args.seconds, project)
    finally:
        for process, _ in started:
            _stop(process)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (median)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--variants", action="store_true",
                        help="also Lepton without captured inputs and without a log")
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--photon", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--save-mlflow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        floor_server(args.floor)
        return 0
    if args.photon:
        photon_server(args.photon)
        return 0
    if args.save_mlflow:
        save_mlflow_model()
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    project, record, features = make_project()
    if MLFLOW_PYTHON.exists():
        env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_DISABLE_TELEMETRY="true")
        subprocess.run([str(MLFLOW_PYTHON), "-m", "bench.serving_latency", "--save-mlflow"],
                       cwd=REPO, env=env, check=True)  # fmt: skip
    load_before = os.getloadavg()[0]
    results = run_phase(targets(project, record, features, args.variants), args, project)
    if args.variants:
        # Monitoring on vs off is measured with only those two servers up: the other
        # servers of the project would check its alerts and gauges over the rows the
        # logging one ships, work that is theirs, not this server's monitoring. Each run
        # lasts long enough that the shipper, which waits up to MAX_LAG_S while the
        # server is busy, ships under load for most of it.
        _export_bundle(project)
        seconds = max(args.seconds, PAIR_SECONDS)
        results += run_phase(monitoring_pair(project, record), args, project, seconds)
    logged, deployments = logged_requests(project)
    answered = sum(r.answered for r in results if r.label.startswith("Lepton"))
    print(table(results))
    print()
    print("\n".join(goals(results)))
    print(f"\nrequest log: {logged:,} rows written by {deployments} Lepton servers for "
          f"{answered:,} answers wrk counted (wrk does not count the requests in flight "
          "when a run ends; the server logs them)")  # fmt: skip
    print(f"machine: {os.cpu_count()} CPUs shared by wrk and the servers; load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{args.rounds} rounds x {args.seconds:g} s per concurrency, medians")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
