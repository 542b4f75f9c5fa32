"""``lepton-desktop serve PROJECT|BUNDLE``: the local server in the foreground; and
``lepton-desktop requests PROJECT``: what it answered, from the request log.

With a project, the command records a deployment and runs its ``serve`` job here
(the same code as the GUI's worker): requests are logged into the project file and
new versions or moved aliases are picked up while it runs. With a bundle (``.zip``
from ``export --format bundle``) there is no project: nothing is logged unless
``--log FILE.lepton`` names a project file to log into. Ctrl-C (or SIGTERM) stops it
gracefully.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.cli.common import Command, number, open_project, print_json, run_queued_job
from lepton_desktop.core.errors import CancelledError, LeptonError
from lepton_desktop.core.serving.options import DEFAULT_OPTIONS, MAX_COUNTS

if TYPE_CHECKING:
    from lepton_desktop.core.entities import RequestRecord

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
    p.add_argument("--capture-pii", action="store_true",
                   help="keep personal-data columns in logged inputs (redacted by default)")
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
    # zipfile.is_zipfile may say yes to a project too.
    from lepton_desktop.core.store.db import SQLITE_MAGIC

    with path.open("rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


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


# -- requests ------------------------------------------------------------------------------

#: ``requests`` lists this many unless told (``--limit``).
DEFAULT_LISTED = 50
#: Error text beyond this many characters is cut in the table (``--json`` has all of it).
ERROR_CHARS = 60


def _add_requests(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("requests", help="list logged requests, or search them (full text)")
    p.add_argument("project", type=Path)
    p.add_argument(
        "--search", metavar="TEXT",
        help='a full-text query over request id, path, model, status, error, inputs and '
        'outputs (SQLite FTS5: words, "a phrase", OR, NOT, prefix*)',
    )  # fmt: skip
    p.add_argument("--deployment", type=int, metavar="N", help="only this deployment's")
    p.add_argument("--limit", type=int, default=DEFAULT_LISTED, metavar="N",
                   help=f"the newest N (default {DEFAULT_LISTED})")  # fmt: skip
    p.add_argument("--json", action="store_true")
    return p


def cmd_requests(args: argparse.Namespace) -> None:
    """``requests PROJECT [--search TEXT] [--deployment N] [--limit N] [--json]``."""
    from lepton_desktop.core.serving.manager import MAX_LISTED

    # One more than shown, to tell whether there are more (a bad --limit is refused as is).
    asked = args.limit + 1 if 1 <= args.limit < MAX_LISTED else args.limit
    with open_project(args.project) as project:
        newest_first = project.serving.list_requests(
            search=args.search, deployment_id=args.deployment, limit=asked
        )
    more = len(newest_first) > args.limit
    records = newest_first[: args.limit][::-1]  # read like a log: the newest at the bottom
    if args.json:
        print_json({
            "requests": [dataclasses.asdict(r) for r in records], "count": len(records),
            "limit": args.limit, "more": more, "search": args.search,
            "deployment": args.deployment,
        })  # fmt: skip
        return
    if not records:
        print("no requests match" if args.search else "no requests logged")
        return
    for record in records:
        print(_request_line(record))
    if more:
        print(f"(the newest {args.limit}; --limit N shows more)", file=sys.stderr)


def _request_line(record: RequestRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.ts))
    model = record.model or "-"
    if record.model and record.version is not None:
        model = f"{record.model}:{record.version}"
    error = record.error or ""
    if len(error) > ERROR_CHARS:
        error = error[: ERROR_CHARS - 1] + "…"
    path, model, request_id, error = (
        _shown(t) for t in (record.path, model, record.request_id, error)
    )
    return (
        f"{when}  d{record.deployment_id or '-':<3} {record.status:>3} "
        f"{record.latency_ms:>8.1f} ms  {_shown(record.method):<4} {path:<28} {model:<20} "
        f"{request_id}  {error}"
    ).rstrip()


def _shown(text: str) -> str:
    """Text a client sent, safe on a terminal: control and formatting characters
    (escape sequences, newlines, right-to-left overrides) are written as escapes."""
    return "".join(c if c.isprintable() else _escape(ord(c)) for c in text)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (
    Command("serve", _add_serve, cmd_serve),
    Command("requests", _add_requests, cmd_requests),
)
