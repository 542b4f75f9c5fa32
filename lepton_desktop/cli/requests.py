"""``lepton-desktop requests PROJECT``: what servers answered, from the request log.

Lists the newest requests (filtered by model, version, status, time, anomaly flags,
feedback, deployment, or a full-text search), and acts on the filtered selection:
``--export OUT.csv|OUT.parquet`` writes every match, ``--replay-on MODEL:VERSION``
answers the matches' captured inputs with another version and diffs the answers.
``--retention 30d|1000000rows|off`` sets how long the log keeps rows (and applies it
now); ``--delete-deployment N`` with ``--keep-log`` or ``--delete-log`` deletes a
stopped server's record.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.cli.common import Command, open_project, print_json
from lepton_desktop.core.errors import InvalidOptionError

if TYPE_CHECKING:
    from lepton_desktop.core.entities import RequestRecord
    from lepton_desktop.core.monitoring.requests import RequestFilter
    from lepton_desktop.core.project import Project

#: ``requests`` lists this many unless told (``--limit``); a replay replays this many.
DEFAULT_LISTED = 50
DEFAULT_REPLAYED = 10_000
#: Error text beyond this many characters is cut in the table (``--json`` has all of it).
ERROR_CHARS = 60
#: Changed rows a replay prints (``--json`` lists more).
PRINTED_CHANGES = 20


def _add_requests(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("requests", help="browse, export, replay and trim the request log")
    p.add_argument("project", type=Path)
    p.add_argument(
        "--search", metavar="TEXT",
        help='a full-text query over request id, path, model, status, error, inputs and '
        'outputs (SQLite FTS5: words, "a phrase", OR, NOT, prefix*)',
    )  # fmt: skip
    p.add_argument("--model", metavar="NAME[:VERSION]", help="only this model's (version's)")
    p.add_argument("--status", metavar="CODE", help="a status (404) or 2xx, 4xx, 5xx, error")
    p.add_argument(
        "--since",
        metavar="SPAN|TIME",
        help="from a span ago (15m, 24h, 7d) or a time (2026-01-31T12:00)",
    )
    p.add_argument("--until", metavar="TIME", help="before this time (2026-01-31T13:00)")
    p.add_argument("--anomalous", action="store_true", help="only requests flagged anomalous")
    labelled = p.add_mutually_exclusive_group()
    labelled.add_argument("--has-feedback", dest="feedback", action="store_true", default=None,
                          help="only requests with a label sent back")  # fmt: skip
    labelled.add_argument("--no-feedback", dest="feedback", action="store_false",
                          help="only requests without one")  # fmt: skip
    p.add_argument("--deployment", type=int, metavar="N", help="only this deployment's")
    p.add_argument(
        "--before",
        type=int,
        metavar="ID",
        help="the page below this log id (the next page of a listing)",
    )
    p.add_argument("--limit", type=int, metavar="N",
                   help=f"the newest N (default {DEFAULT_LISTED}; a replay: "
                   f"{DEFAULT_REPLAYED:,})")  # fmt: skip
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--export", type=Path, metavar="OUT", help="write every match to OUT.csv or OUT.parquet"
    )
    action.add_argument(
        "--replay-on",
        metavar="MODEL:VERSION",
        help="answer the matches again with this version and diff",
    )
    action.add_argument(
        "--retention",
        metavar="30d|1000000rows|off",
        help="keep requests this long / this many (applied now and by servers)",
    )
    action.add_argument(
        "--delete-deployment",
        type=int,
        metavar="N",
        help="delete a stopped deployment (with --keep-log or --delete-log)",
    )
    fate = p.add_mutually_exclusive_group()
    fate.add_argument("--keep-log", action="store_true", help="keep its requests")
    fate.add_argument("--delete-log", action="store_true", help="delete its requests too")
    p.add_argument("--json", action="store_true")
    return p


def cmd_requests(args: argparse.Namespace) -> None:
    """``requests PROJECT [filters] [--export OUT | --replay-on M:V | --retention R |
    --delete-deployment N --keep-log|--delete-log] [--json]``."""
    _check_combination(args)
    selection = selection_of(args)
    with open_project(args.project) as project:
        if args.export is not None:
            bar = _progress("exporting")
            try:
                result = project.request_log.export(selection, args.export, bar)
            finally:
                bar.close()
            _emit(
                result,
                args.json,
                lambda r: f"wrote {r['rows']:,} requests to {r['path']} ({r['bytes']:,} bytes)",
            )
        elif args.replay_on is not None:
            _replay(project, selection, args)
        elif args.retention is not None:
            _retention(project, args)
        elif args.delete_deployment is not None:
            _delete_deployment(project, args)
        else:
            _list(project, selection, args)


def _check_combination(args: argparse.Namespace) -> None:
    if args.delete_deployment is not None and not (args.keep_log or args.delete_log):
        raise InvalidOptionError(
            "--delete-deployment: say what becomes of its requests: --keep-log or --delete-log"
        )
    if (args.keep_log or args.delete_log) and args.delete_deployment is None:
        raise InvalidOptionError("--keep-log and --delete-log go with --delete-deployment N")
    if args.search and (args.export or args.replay_on):
        raise InvalidOptionError("--search lists requests; export and replay take the filters")


def selection_of(args: argparse.Namespace) -> RequestFilter:
    """The filter the options describe."""
    from lepton_desktop.core.monitoring.requests import RequestFilter, parse_status

    model, version = model_ref(args.model, "--model")
    return RequestFilter(
        model=model, version=version, status=parse_status(args.status),
        since=_time(args.since, "--since", spans=True), until=_time(args.until, "--until"),
        anomalous=args.anomalous, has_feedback=args.feedback, deployment_id=args.deployment,
    )  # fmt: skip


def model_ref(text: str | None, flag: str) -> tuple[str | None, int | None]:
    """``NAME`` or ``NAME:VERSION`` -> ``(name, version)``."""
    if text is None:
        return None, None
    name, _, number = text.partition(":")
    if not name or (number and not number.isdigit()):
        raise InvalidOptionError(f"{flag} {text!r}: give NAME or NAME:VERSION")
    return name, int(number) if number else None


def _time(text: str | None, flag: str, spans: bool = False) -> float | None:
    if text is None:
        return None
    if spans:
        from lepton_desktop.core.monitoring.window import parse

        try:
            return parse(text).since
        except InvalidOptionError:
            pass  # not a span: a time, then
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        hint = "a span (15m, 24h, 7d) or " if spans else ""
        raise InvalidOptionError(
            f"{flag} {text!r}: give {hint}a time such as 2026-01-31T12:00"
        ) from None
    return moment.timestamp()


def _list(project: Project, selection: RequestFilter, args: argparse.Namespace) -> None:
    from lepton_desktop.core.serving.manager import MAX_LISTED

    limit = DEFAULT_LISTED if args.limit is None else args.limit
    asked = limit + 1 if 1 <= limit < MAX_LISTED else limit  # one more: are there more?
    if args.before is not None:
        if args.search:
            raise InvalidOptionError("--before pages a listing; a search shows its newest")
        newest_first = project.request_log.page(selection, args.before, asked)
    else:
        newest_first = project.serving.list_requests(
            search=args.search, deployment_id=args.deployment, limit=asked,
            selection=selection,
        )  # fmt: skip
    more = len(newest_first) > limit
    records = newest_first[:limit][::-1]  # read like a log: the newest at the bottom
    if args.json:
        print_json({
            "requests": [dataclasses.asdict(r) for r in records], "count": len(records),
            "limit": limit, "more": more, "search": args.search,
            "deployment": args.deployment, "filter": dataclasses.asdict(selection),
            "next_before": records[0].id if more and records else None,
            "retention": project.request_log.retention().label(),
        })  # fmt: skip
        return
    if not records:
        print("no requests match" if args.search or args.before else "no requests logged")
        return
    for record in records:
        print(request_line(record))
    if more:
        print(f"(the newest {limit}; --before {records[0].id} shows the page before)",
              file=sys.stderr)  # fmt: skip


def _replay(project: Project, selection: RequestFilter, args: argparse.Namespace) -> None:
    limit = DEFAULT_REPLAYED if args.limit is None else args.limit
    bar = _progress(f"replaying on {args.replay_on}")
    try:
        result = project.replay_requests(selection, args.replay_on, limit=limit, reporter=bar)
    finally:
        bar.close()
    if args.json:
        print_json(result)
        return
    print(format_replay(result))


def format_replay(result: dict[str, Any]) -> str:
    """A replay's result for a terminal: agreement, quality, the first changed rows."""
    if not result["rows"]:
        return (
            f"nothing to replay on {result['target']}: {result['skipped']} requests "
            f"without captured records, {result['failed']} refused"
            + (f" ({result['first_failure']})" if result["first_failure"] else "")
        )
    lines = [
        f"replayed {result['requests']:,} requests ({result['rows']:,} rows) on "
        f"{result['target']}: {result['agreement']:.1%} agree, {result['changed']:,} rows "
        f"changed" + (f", mean |diff| {result['mean_abs_diff']:.4g}"
                      if result["mean_abs_diff"] is not None else ""),
    ]  # fmt: skip
    if result["skipped"] or result["failed"]:
        lines.append(
            f"skipped {result['skipped']:,} without captured records, "
            f"{result['failed']:,} refused"
            + (f" ({result['first_failure']})" if result["first_failure"] else "")
        )
    quality = result["quality"]
    if quality:
        lines.append(
            f"{quality['metric']} on {result['labelled']:,} labelled rows: "
            f"{quality['before']:.4g} as answered, {quality['after']:.4g} replayed"
        )
    for change in result["changes"][:PRINTED_CHANGES]:
        truth = "" if change["truth"] is None else f"  (truth {change['truth']})"
        lines.append(
            f"  {_shown(change['request_id'])} row {change['row']}: "
            f"{_shown(str(change['before']))} -> {_shown(str(change['after']))}{truth}"
        )
    if result["changed"] > PRINTED_CHANGES:
        lines.append(f"  ... {result['changed'] - PRINTED_CHANGES:,} more (--json lists them)")
    if result["truncated"]:
        lines.append("(the selection was cut at --limit)")
    return "\n".join(lines)


def _retention(project: Project, args: argparse.Namespace) -> None:
    setting = project.request_log.set_retention(args.retention)
    deleted = project.request_log.apply_retention()
    _emit(
        {
            "retention": setting.label(),
            "days": setting.days,
            "rows": setting.rows,
            "deleted": deleted,
        },
        args.json,
        lambda r: f"retention {r['retention']}: {r['deleted']:,} old requests deleted",
    )


def _delete_deployment(project: Project, args: argparse.Namespace) -> None:
    deleted = project.request_log.delete_deployment(args.delete_deployment,
                                                    keep_log=args.keep_log)  # fmt: skip
    _emit({"deployment": args.delete_deployment, "kept_log": args.keep_log,
           "requests_deleted": deleted}, args.json,
          lambda r: f"deleted deployment {r['deployment']}; "
          + ("its requests were kept" if r["kept_log"]
             else f"{r['requests_deleted']:,} requests deleted with it"))  # fmt: skip


def _emit(result: dict[str, Any], as_json: bool, line: Any) -> None:
    if as_json:
        print_json(result)
    else:
        print(line(result))


def _progress(description: str) -> Any:
    from lepton_desktop.cli.progress import TerminalProgress

    return TerminalProgress(description, unit="request")


def request_line(record: RequestRecord) -> str:
    """One request as a log line (what a client sent made safe for a terminal)."""
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
COMMANDS = (Command("requests", _add_requests, cmd_requests),)
