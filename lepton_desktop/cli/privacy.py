"""Privacy: ``forget`` served requests, ``share`` a copy without private data."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, open_project, print_json
from lepton_desktop.core.errors import InvalidOptionError


def _add_forget(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "forget", help="clear captured inputs and delete feedback of served requests"
    )
    p.add_argument("project", type=Path)
    p.add_argument("--request", metavar="ID", help="one request (its X-Request-ID)")
    p.add_argument("--since", metavar="T", help="from this time (ISO 8601 or Unix seconds)")
    p.add_argument("--until", metavar="T", help="up to this time, excluded (default: now)")
    p.add_argument("--model", metavar="NAME", help="only the requests this model answered")
    p.add_argument("--json", action="store_true")
    return p


def _add_share(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "share", help="write a copy without request inputs, feedback (and dataset rows)"
    )
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, help="the new file (never an existing one)")
    p.add_argument("--without-data", action="store_true", help="leave out every dataset row")
    p.add_argument("--json", action="store_true")
    return p


def parse_time(text: str | None, flag: str) -> float | None:
    """``2026-12-06``, ``2026-12-06T10:30``, ``...+01:00`` or Unix seconds -> seconds.

    A time without a zone is the local time, as the request log shows it.
    """
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidOptionError(
            f"{flag} {text!r}: give a time like 2026-12-06T10:30 (or Unix seconds)"
        ) from None
    return moment.timestamp()


def cmd_forget(args: argparse.Namespace) -> None:
    """``forget PROJECT (--request ID | --since T [--until T]) [--model M] [--json]``."""
    import time

    since = parse_time(args.since, "--since")
    until = parse_time(args.until, "--until")
    if since is not None and until is None:
        until = time.time()
    with open_project(args.project) as project:
        project.check_intact()
        result = project.forget_requests(
            request_id=args.request, since=since, until=until, model=args.model
        )
    if args.json:
        print_json(result)
        return
    print(
        f"forgot {result['requests']:,} request(s): {result['inputs_cleared']:,} captured "
        f"input(s) cleared, {result['feedback_deleted']:,} feedback label(s) deleted"
    )


def cmd_share(args: argparse.Namespace) -> None:
    """``share PROJECT OUT [--without-data] [--json]``."""
    with open_project(args.project) as project:
        result = project.share(args.out, without_data=args.without_data)
    if args.json:
        print_json(result)
        return
    print(f"wrote {result['path']} ({result['bytes']:,} bytes), leaving out:")
    for what, count in result["left_out"].items():
        print(f"  {what.replace('_', ' ')}: {count:,}")


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (
    Command("forget", _add_forget, cmd_forget),
    Command("share", _add_share, cmd_share),
)
