"""Serving: a server process killed under load: how long until answers flow again, how
many requests fail.

The 16-feature MLP of ``bench.serving_latency`` is served by

* **Lepton** ``lepton-desktop serve PROJECT --workers N`` (request log on): its
  supervisor restarts a dead server process with backoff;
* **uvicorn --workers N** (the anchor): ``bench.serving_latency``'s bare FastAPI
  under uvicorn's own process manager, which also replaces a dead worker.

Eight clients post predictions as fast as they can; after ``--warmup`` seconds one
server process gets SIGKILL. Measured: the requests that failed (connection reset or
refused, or a non-200), the longest gap between two answers after the kill, and the
time until the replacement process answers its first request (the process count is
back). With N = 1 the gap is the whole restart; with N = 2 the other process keeps
answering and only the requests in flight on the killed one can fail.

    .venv/bin/python -m bench.serving_recovery [--workers 1,2] [--warmup 3] [--after 12]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from bench._common import machine_line, markdown_table
from bench.serving_latency import FEATURES, REPO, make_project

CLIENTS = 8


class Clients:
    """Clients posting as fast as they can; every answer's time and every failure."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        self.url, self.body = url, body
        self.answers: list[float] = []
        self.failed = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    ok = client.post("/predict", json=self.body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with self._lock:
                    if ok:
                        self.answers.append(time.monotonic())
                    else:
                        self.failed += 1


def _children(pid: int) -> list[int]:
    """The live server processes under ``pid`` (not multiprocessing's resource tracker)."""
    import psutil

    out = []
    for child in psutil.Process(pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                child.cmdline()
            ):
                out.append(child.pid)
        except psutil.Error:  # gone (or a zombie) meanwhile
            continue
    return out


def _start(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    import httpx

    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{argv[:4]} did not start")


def measure(argv: list[str], port: int, body: dict[str, Any], workers: int, warmup: float,
            after: float) -> dict[str, float]:  # fmt: skip
    """Kill one server process under load; what the clients saw."""
    process = _start(argv, port)
    try:
        deadline = time.monotonic() + 60
        while len(_children(process.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        with Clients(f"http://127.0.0.1:{port}", body) as clients:
            time.sleep(warmup)
            # uvicorn with one worker runs in one process: killing it is the end of it.
            victim = (_children(process.pid) or [process.pid])[0]
            killed = time.monotonic()
            failed_before = clients.failed
            os.kill(victim, signal.SIGKILL)
            back = None
            while time.monotonic() - killed < after:
                alive = [p for p in _children(process.pid) if p != victim] \
                    if process.poll() is None else []  # fmt: skip
                if back is None and len(alive) >= workers:
                    back = time.monotonic() - killed
                time.sleep(0.05)
            answers = [t for t in clients.answers if t >= killed]
            gaps = [b - a for a, b in zip([killed, *answers], answers, strict=False)]
            rate = len([t for t in clients.answers if killed - warmup / 2 <= t < killed])
            return {"failed": clients.failed - failed_before,
                    "longest_gap_s": max(gaps) if gaps else after,
                    "replaced_s": back if back is not None else float("nan"),
                    "rps_before": rate / (warmup / 2)}  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="server processes, comma-separated")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before")
    parser.add_argument("--after", type=float, default=12.0, help="seconds watched after")
    args = parser.parse_args(argv)
    path, record, features = make_project()
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        lepton = measure(
            [sys.executable, "-m", "lepton_desktop", "serve", str(path), "--port", "8811",
             "--workers", str(workers)], 8811, {"records": [record]}, workers, args.warmup,
            args.after)  # fmt: skip
        anchor = measure(
            [sys.executable, "-m", "uvicorn", "bench.serving_latency:floor_app", "--factory",
             "--port", "8812", "--workers", str(workers), "--loop", "uvloop", "--http",
             "httptools", "--log-level", "warning"], 8812, {"inputs": [features]}, workers,
            args.warmup, args.after)  # fmt: skip
        for label, m in (("Lepton", lepton), ("uvicorn --workers (anchor)", anchor)):
            rows.append([f"{label}, {workers} process(es)", f"{m['rps_before']:.0f}",
                         f"{m['failed']:.0f}", f"{m['longest_gap_s']:.2f} s",
                         f"{m['replaced_s']:.2f} s"])  # fmt: skip
    print(f"# Serving: one server process SIGKILLed under load ({CLIENTS} clients, "
          f"{FEATURES}-feature MLP)\n")  # fmt: skip
    print(machine_line() + f", load {os.getloadavg()[0]:.2f}\n")
    header = ["server", "req/s before", "failed requests", "longest gap without an answer",
              "process replaced after"]  # fmt: skip
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
