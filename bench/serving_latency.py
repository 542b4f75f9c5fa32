"""Serving: latency at concurrency 1, throughput at concurrency 32, and cold start.

One 16-feature MLP classifier (trained here on synthetic data) served by:

* **bare FastAPI** (the floor): one ``async`` endpoint doing JSON -> forward -> JSON on
  the same torch module, under uvicorn with the same settings as ours; it gets the
  already-preprocessed features;
* **Lepton** ``lepton-desktop serve PROJECT``: raw records in (the stored scaling is
  applied), labels and probabilities out, with its request log ON (every request is
  written into the project file; the count is checked afterwards), dynamic batching
  on; once with one process and once with ``--workers 2``;
* **MLflow** ``mlflow models serve --env-manager local`` of ``mlflow.pytorch.save_model``
  of the same module (its venv: ``bench/out/venv-mlflow``, made by
  ``bench/metric_logging.py``), given the features as ``{"inputs": [[...]]}``;
* a **leptonai Photon** (``bench/out/venv-photon`` with leptonai 0.27.3 and fastapi
  0.115.14) if that venv exists and imports; otherwise the row says why it is missing.

The load generator is a minimal HTTP/1.1 keep-alive client on raw asyncio streams
(a few microseconds of client CPU per request, far less than httpx); it runs in this
process, on the same 2 cores as the server, so every server pays the same client tax.
Cold start: from spawning the server's process to its first answered request.

Usage: ``python -m bench.serving_latency [--requests 2000] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
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
    rps: float | None = None
    errors: int = 0
    answered: int = 0  # every answer this client got (to check the request log)
    note: str = ""


# -- the model ------------------------------------------------------------------------


def make_project() -> tuple[Path, dict[str, Any], list[float]]:
    """A project with one trained 16-feature MLP: (path, a raw record, its features)."""
    import numpy as np

    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.project import Project

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "serving-bench.lepton"
    for stale in OUT.glob("serving-bench.lepton*"):
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


def floor_server(port: int) -> None:
    """The floor: bare FastAPI, JSON -> forward -> JSON."""
    import torch
    import uvicorn
    from fastapi import FastAPI

    torch.set_num_threads(1)
    module = _load_module()
    app = FastAPI()

    @app.post("/predict")
    async def predict(payload: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode():
            outputs = module(torch.tensor(payload["inputs"], dtype=torch.float32))
        return {"outputs": outputs.tolist()}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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


# -- the load generator ---------------------------------------------------------------


class RawClient:
    """HTTP/1.1 keep-alive on raw asyncio streams: cheap for the client's CPU."""

    def __init__(self, port: int, path: str, body: bytes) -> None:
        self.port = port
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def call(self) -> int:
        """Send the request, read the whole answer, return its status."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            await self._chunked()
        else:
            start = lower.index(b"content-length:") + 15
            length = int(lower[start : lower.index(b"\r\n", start)])
            await self.reader.readexactly(length)
        return status

    async def _chunked(self) -> None:
        assert self.reader is not None
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def cold_start(
    target: Target, started: float, process: subprocess.Popen[bytes], timeout: float = 120
) -> float:
    """Seconds from ``started`` to the first 200 answer."""
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise OSError(f"{target.label} exited with {process.returncode}")
        client = RawClient(target.port, target.path, target.body)
        try:
            await client.open()
            if await client.call() == 200:
                return time.perf_counter() - started
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            client.close()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{target.label} did not answer within {timeout} s")


async def latency(target: Target, requests: int) -> tuple[float, float, int]:
    """p50 and p99 (ms) of ``requests`` sequential requests on one connection; errors."""
    client = RawClient(target.port, target.path, target.body)
    await client.open()
    errors = 0
    for _ in range(200):  # warm-up
        await client.call()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        errors += await client.call() != 200
        times.append((time.perf_counter() - start) * 1000)
    client.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], errors


async def throughput(
    target: Target, seconds: float, concurrency: int = 32
) -> tuple[float, int, int]:
    """Requests per second with ``concurrency`` connections for ``seconds``; errors; count."""
    clients = [RawClient(target.port, target.path, target.body) for _ in range(concurrency)]
    for client in clients:
        await client.open()
    counts = [0] * concurrency
    errors = [0] * concurrency
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            errors[i] += await clients[i].call() != 200
            counts[i] += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    for client in clients:
        client.close()
    return sum(counts) / elapsed, sum(errors), sum(counts)


def measure(target: Target, requests: int, seconds: float) -> Result:
    """Start the server, measure it, stop it."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_DISABLE_TELEMETRY="true", **target.env)
    started = time.perf_counter()
    process = subprocess.Popen(
        target.argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    result = Result(target.label, note=target.note)
    try:
        result.cold_start_s = asyncio.run(cold_start(target, started, process))
        result.p50_ms, result.p99_ms, errors = asyncio.run(latency(target, requests))
        result.rps, more, count = asyncio.run(throughput(target, seconds))
        result.errors = errors + more
        result.answered = 1 + 200 + requests + count
    except (TimeoutError, OSError) as exc:
        result.note = f"failed: {exc}; {_tail(process)}"
    finally:
        _stop(process)
    return result


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


# -- the run --------------------------------------------------------------------------


def targets(project: Path, record: dict[str, Any], features: list[float]) -> list[Target]:
    """Every server this run measures (anchors whose venv is missing are noted)."""
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
    """The markdown table, with ratios to the floor and to MLflow."""
    floor = next(r for r in results if r.label.startswith("bare"))
    mlflow = next((r for r in results if r.label.startswith("MLflow")), None)
    lines = [
        "| server | cold start s | p50 ms (c1) | p99 ms (c1) | req/s (c32) "
        "| p50 / floor | req/s / floor | req/s / MLflow | errors | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {_f(r.cold_start_s, 2)} | {_f(r.p50_ms, 2)} | {_f(r.p99_ms, 2)} "
            f"| {_f(r.rps, 0)} | {_ratio(r.p50_ms, floor.p50_ms)} | {_ratio(r.rps, floor.rps)} "
            f"| {_ratio(r.rps, mlflow.rps if mlflow else None)} | {r.errors} | {r.note} |"
        )
    return "\n".join(lines)


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests (c1)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration at c32")
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
    project, record, features = make_project()
    if MLFLOW_PYTHON.exists():
        env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_DISABLE_TELEMETRY="true")
        subprocess.run([str(MLFLOW_PYTHON), "-m", "bench.serving_latency", "--save-mlflow"],
                       cwd=REPO, env=env, check=True)  # fmt: skip
    results = [measure(t, args.requests, args.seconds) for t in targets(project, record, features)]
    if not any(r.label.startswith("MLflow") for r in results):
        results.append(Result("MLflow models serve", note="skipped: no bench/out/venv-mlflow"))
    if not any(r.label.startswith("leptonai") for r in results):
        results.append(Result("leptonai Photon 0.27.3", note="skipped: venv-photon missing"))
    logged, deployments = logged_requests(project)
    answered = sum(r.answered for r in results if r.label.startswith("Lepton"))
    print(table(results))
    print(f"\nrequest log: {logged:,} rows written by {deployments} Lepton servers for "
          f"{answered:,} answers the client got")  # fmt: skip
    print(f"machine: {os.cpu_count()} CPUs; client and servers share them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
