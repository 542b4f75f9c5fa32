"""``lepton-desktop serve PROJECT|BUNDLE``: the local server in the foreground (what
it answered is read by ``lepton-desktop requests``, in :mod:`.requests`).

With a project, the command records a deployment and runs its ``serve`` job here
(the same code as the GUI's worker): requests are logged into the project file and
new versions or moved aliases are picked up while it runs. With a bundle (``.zip``
from ``export --format bundle``) there is no project: nothing is logged unless
``--log FILE.lepton`` names a project file to log into. Ctrl-C (or SIGTERM) stops it
gracefully.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, number, open_project, run_queued_job
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.serving.options import (
    DEFAULT_OPTIONS,
    MAX_COUNTS,
    parse_canary,
    parse_shadow,
)

#: The token can come from the environment, where ``ps`` does not show it.
TOKEN_ENV = "LEPTON_SERVE_TOKEN"


def _add_serve(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve models over HTTP (KServe V2, MLflow, native)")
    p.add_argument("source", type=Path, help="a project file, or a bundle .zip")
    p.add_argument(
        "--model", action="append", default=[], metavar="NAME[:VERSION]",
        help="a model to serve (repeatable; NAME@ALIAS too); default: every model",
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to bind (others need --token)")
    p.add_argument("--port", type=number(0, 65535, whole=True), default=8765,
                   help="port (0: any free port)")  # fmt: skip
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' (or ${TOKEN_ENV})")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN")
    p.add_argument("--no-capture", action="store_true", help="do not log request inputs")
    p.add_argument("--canary", action="append", default=[], metavar="MODEL:VERSION=SHARE",
                   help="a candidate version answering SHARE (0-1) of MODEL's requests that "
                   "name no version (the answer names the version)")  # fmt: skip
    p.add_argument("--shadow", action="append", default=[], metavar="MODEL:VERSION",
                   help="a candidate version predicting a copy of every answered request, "
                   "after the answer; logged as shadow rows, never returned")  # fmt: skip
    p.add_argument(
        "--capture-pii",
        action="store_true",
        help="keep personal-data columns in logged inputs (redacted by default)",
    )
    _add_limits(p)
    p.add_argument("--log", type=Path, metavar="FILE.lepton", help="bundle: log requests here")
    return p


def _add_limits(p: argparse.ArgumentParser) -> None:
    counts = MAX_COUNTS
    p.add_argument("--max-batch", type=number(1, counts["max_batch"], whole=True), default=32,
                   help="rows per forward pass")  # fmt: skip
    p.add_argument("--max-wait-ms", type=number(0, 3600), default=2.0,
                   help="batching wait under load")  # fmt: skip
    p.add_argument("--workers", type=number(1, counts["workers"], whole=True), default=1,
                   help="server processes sharing the port")  # fmt: skip
    p.add_argument("--max-body-mb", type=number(0.001, counts["max_body_bytes"] >> 20),
                   default=8.0, help="largest request body")  # fmt: skip
    p.add_argument("--timeout", type=number(0, 3600), default=30.0, help="seconds before a 504")
    p.add_argument("--max-connections", type=number(1, counts["max_connections"], whole=True),
                   default=DEFAULT_OPTIONS["max_connections"],
                   help="open connections per server process; beyond, the oldest idle one "
                   "is closed")  # fmt: skip
    p.add_argument("--header-timeout", type=number(0.01, 3600),
                   default=DEFAULT_OPTIONS["header_timeout_s"],
                   help="seconds a client has to send a request's headers")  # fmt: skip
    p.add_argument("--body-timeout", type=number(0.01, 3600),
                   default=DEFAULT_OPTIONS["body_timeout_s"],
                   help="seconds a client has to send a request's body (then 408)")  # fmt: skip


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cors": list(args.cors),
        "capture_inputs": not args.no_capture,
        "capture_pii": args.capture_pii,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "workers": args.workers,
        "max_body_bytes": max(1, int(args.max_body_mb * 1024 * 1024)),
        "timeout_s": args.timeout,
        "max_connections": args.max_connections,
        "header_timeout_s": args.header_timeout,
        "body_timeout_s": args.body_timeout,
        "canary": [parse_canary(text) for text in args.canary],
        "shadow": [parse_shadow(text) for text in args.shadow],
    }


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve PROJECT|BUNDLE [--model M]... [--host H] [--port N] [--token T] ...``."""
    source: Path = args.source
    if not source.exists():
        raise LeptonError(f"{source}: no such file")
    args.token = args.token or os.environ.get(TOKEN_ENV) or None
    if not _is_project(source):
        return _serve_bundle(args)
    if args.log is not None:
        raise LeptonError("--log is for bundles: a project logs requests into itself")
    return _serve_project(args)


def _is_project(path: Path) -> bool:
    # By the SQLite header: a project file's weights are zip archives (torch.save), so
    # zipfile.is_zipfile may say yes to a project too. An encrypted project has no
    # header to read, and is a whole number of cipher pages (a bundle is not).
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store.db import SQLITE_MAGIC

    with path.open("rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC or Project.is_encrypted(path)


class _Announce:
    """Prints the server's address once it listens (the job's progress messages)."""

    def __init__(self) -> None:
        self._said = False

    def update(self, done: int, total: int | None, message: str = "") -> None:
        if not self._said and message.startswith("serving"):
            _say(message)
            self._said = True


def _say(message: str) -> None:
    print(f"{message}  (docs: /docs; Ctrl-C stops)", flush=True)


def _serve_project(args: argparse.Namespace) -> int:
    with open_project(args.source) as project:  # a port in use: refused, nothing recorded
        deployment, job_id = project.serving.queue(
            args.model, host=args.host, port=args.port, token=args.token, check_port=True,
            **_options(args),
        )  # fmt: skip
    job = run_queued_job(args.source, job_id, "serve", echo=_Announce())
    if job.status == "failed":
        raise LeptonError((job.error or "the server failed").strip().splitlines()[-1])
    print(f"stopped deployment {deployment.id}", file=sys.stderr)
    return 0


def _serve_bundle(args: argparse.Namespace) -> int:
    from lepton_desktop.core.inference.bundle import read_bundle
    from lepton_desktop.core.serving.manager import check_address, check_port_free
    from lepton_desktop.core.serving.options import check_options
    from lepton_desktop.core.serving.runner import ServerRunner, ServeSpec
    from lepton_desktop.core.serving.security import token_digest

    options = _options(args)
    check_address(args.host, args.port, args.token)
    check_options(options)
    if args.model:
        raise LeptonError("--model picks models of a project; a bundle serves what it holds")
    parts = read_bundle(args.source)
    check_port_free(args.host, args.port)  # before --log records a deployment
    spec = ServeSpec(
        bundle=str(args.source.resolve()), host=args.host, port=args.port,
        token=token_digest(args.token) if args.token else None, options=options,
    )  # fmt: skip
    if args.log is not None:
        spec.log_path = str(args.log)
        spec.deployment_id = _log_deployment(args.log, spec, [p.ref for p in parts])
    runner = ServerRunner(spec, parts=parts)
    previous = signal.signal(signal.SIGTERM, _raise_cancel)
    try:
        runner.start()
        _record(spec, status="running", url=runner.url, port=runner.port, started_at=time.time())
        _say(f"serving {', '.join(p.ref for p in parts)} on {runner.url}")
        while runner.alive():
            time.sleep(0.5)
    except (KeyboardInterrupt, CancelledError):
        pass
    finally:
        runner.stop()
        signal.signal(signal.SIGTERM, previous)
        _record(spec, status="stopped", stopped_at=time.time())
    return 0


def _raise_cancel(signum: int, frame: object) -> None:
    raise CancelledError("stopped by a signal")


def _log_deployment(path: Path, spec: Any, refs: list[str]) -> int:
    from lepton_desktop.core.project import Project
    from lepton_desktop.core.store import serving as serving_store

    project = open_project(path) if path.exists() else Project.create(path)
    with project:
        return serving_store.create_deployment(
            project.conn, host=spec.host, port=spec.port, token=spec.token, models=refs,
            options=spec.options,
        )  # fmt: skip


def _record(spec: Any, **fields: Any) -> None:
    if spec.log_path is None or spec.deployment_id is None:
        return
    from lepton_desktop.core.project import Project

    with Project.open(spec.log_path) as project:
        project.serving.update(spec.deployment_id, **fields)


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("serve", _add_serve, cmd_serve),)
