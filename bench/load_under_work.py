"""Serving under load while the project works: nothing fails, everything is logged, the
GUI stays responsive.

The 16-feature MLP project of ``bench.serving_latency`` is served by
``lepton-desktop serve`` while, at the same time, a training run streams its metrics
(``lepton-desktop train --epochs 400``), a tuning study runs (``lepton-desktop tune``),
and the real main window (offscreen) shows the Serving tab, which polls the request log
live; a 5 ms probe timer in the window measures event-loop stalls. ``--clients`` (64)
concurrent clients, in their own process, post predictions for ``--seconds`` (60).

Anchor, in the same run: the same clients against the same server, the same window
open, with no training run and no study. Reported: failed requests (goal 0), answered
vs logged rows (goal equal), requests/s under work against the anchor's, and the
window's longest stall (goal <= 50 ms) beside the anchor's.

    .venv/bin/python -m bench.load_under_work [--clients 64] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import machine_line, markdown_table
from bench.serving_latency import make_project

PORT = 8821


def clients_child(url: str, clients: int, seconds: float) -> None:
    """In its own process: ``clients`` threads posting for ``seconds``; prints a JSON line."""
    import httpx

    body = json.loads(os.environ["BENCH_BODY"])
    answered, failed, lock = [0], [0], threading.Lock()
    why: dict[str, int] = {}  # each failure's status code or exception, counted
    stop = time.monotonic() + seconds

    def run() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < stop:
                try:
                    status = client.post("/predict", json=body).status_code
                    reason = str(status)
                except httpx.HTTPError as exc:
                    status, reason = 0, type(exc).__name__
                with lock:
                    (answered if status == 200 else failed)[0] += 1
                    if status != 200:
                        why[reason] = why.get(reason, 0) + 1

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"answered": answered[0], "failed": failed[0], "why": why}), flush=True)


def _cli(*args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen([sys.executable, "-m", "lepton_desktop", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _load(url: str, record: dict[str, Any], clients: int, seconds: float) -> subprocess.Popen[str]:
    env = dict(os.environ, BENCH_BODY=json.dumps({"records": [record]}),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "bench.load_under_work", "--clients-child", url,
         "--clients", str(clients), "--seconds", str(seconds)],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_up(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


def _logged(path: Path) -> int:
    from lepton_desktop.core.project import Project

    with Project.open(path) as project:  # opening ships anything still in a journal
        return sum(
            1 for d in project.serving.list(1000)
            for r in project.serving.requests_since(d.id, 0, limit=10_000_000)
            if r.path == "/predict" and r.status == 200
        )  # fmt: skip


def run(clients: int, seconds: float, busy: bool) -> dict[str, Any]:
    """One measurement: with the work and the window (busy) or without (the anchor)."""
    path, record, _ = make_project()
    url = f"http://127.0.0.1:{PORT}"
    # The model named: training and tuning register new models while it serves, and a
    # request naming none is then ambiguous (a 400).
    server = _cli("serve", str(path), "--model", "syn", "--port", str(PORT), "--workers", "1")
    others: list[subprocess.Popen[bytes]] = []
    try:
        _wait_up(url)
        stalls: dict[str, float] = {}
        if busy:
            others = [_cli("train", str(path), "syn", "--arch", "mlp", "--epochs", "400"),
                      _cli("tune", str(path), "syn", "--arch", "mlp", "--trials", "40",
                           "--epochs", "4")]  # fmt: skip
            time.sleep(3)
        load = _load(url, record, clients, seconds)
        # The window on the same project in both runs: the anchor's is idle (no training,
        # no study) so its stalls are what the machine itself costs.
        stalls = _window_stalls(path, seconds)
        out, _ = load.communicate(timeout=seconds + 120)
        result = json.loads(out.strip().splitlines()[-1])
    finally:
        for process in others:
            process.send_signal(signal.SIGINT)
        for process in others:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:  # a starved machine: the log is shipped on open
            server.kill()
            server.wait(30)
    return {**result, "logged": _logged(path), **stalls}


def _window_stalls(path: Path, seconds: float) -> dict[str, float]:
    """The main window on the project, Serving tab shown, for ``seconds``: its stalls."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from bench.gui_responsiveness import StallProbe, _run_until, _window

    app, window = _window(Path(tempfile.mkdtemp(prefix="bench-load-")))
    window.opener.open(path)
    _run_until(app, lambda: window.session is not None and window.session.is_open, 60)
    window.tabs.setCurrentWidget(window.serving_tab)
    probe = StallProbe()
    probe.start()
    end = time.perf_counter() + seconds
    _run_until(app, lambda: time.perf_counter() >= end, seconds + 10)
    probe.stop()
    window.session.close()
    summary = probe.summary()
    return {"stall_max_ms": summary["max_ms"], "stall_p99_ms": summary["p99_ms"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clients_child:
        clients_child(args.clients_child, args.clients, args.seconds)
        return 0
    anchor = run(args.clients, args.seconds, busy=False)
    busy = run(args.clients, args.seconds, busy=True)
    rows = []
    for label, r in (("serving + GUI (anchor)", anchor),
                     ("serving + training + tuning + GUI (ours)", busy)):  # fmt: skip
        rows.append([label, f"{r['answered'] / args.seconds:,.0f}", f"{r['failed']}",
                     f"{r['answered']:,}", f"{r['logged']:,}",
                     f"{r['stall_max_ms']:.0f} ms" if "stall_max_ms" in r else "",
                     f"{r['stall_p99_ms']:.0f} ms" if "stall_p99_ms" in r else ""])  # fmt: skip
    print(f"# Serving under load while the project works ({args.clients} clients, "
          f"{args.seconds:.0f} s)\n")  # fmt: skip
    print(machine_line() + f", load {os.getloadavg()[0]:.2f}\n")
    print(markdown_table(["what runs", "req/s", "failed", "answered", "logged",
                          "GUI stall max", "GUI stall p99"], rows))  # fmt: skip
    for label, r in (("anchor", anchor), ("ours", busy)):
        if r.get("why"):
            counts = ", ".join(f"{k} x{v:,}" for k, v in r["why"].items())
            print(f"\nFailures ({label}): {counts}")
    ratio = busy["answered"] / max(anchor["answered"], 1)
    print(f"\nThroughput under work: {ratio:.2f}x the anchor's. Goals: 0 failed "
          f"({'met' if busy['failed'] == 0 else 'NOT met'}), logged = answered "
          f"({'met' if busy['logged'] == busy['answered'] else 'NOT met'}), stall <= 50 ms "
          f"({'met' if busy.get('stall_max_ms', 1e9) <= 50 else 'NOT met'}).")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
