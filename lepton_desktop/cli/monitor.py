"""``lepton-desktop monitor``: how the served models are doing, and alert rules.

``monitor [show] PROJECT`` reads what servers logged (requests, errors, latency,
versions, predictions), the feedback sent to them (live quality) and the drift of the
served inputs against each model's training split, with the anomalies flagged, over a
window (``--since 15m|1h|24h|7d|all``); it writes nothing and works while a server runs
or long after it stopped. ``monitor alerts add|list|remove|history|check PROJECT``
manages the alert rules a running server checks; ``monitor feedback PROJECT FILE.csv``
imports labels given later, ``monitor export PROJECT OUT.json|OUT.html`` writes the report.
``monitor compare PROJECT MODEL --candidate V [--promote]`` puts a candidate version
beside the champion (and may promote it); ``monitor retrain PROJECT MODEL`` retrains the
champion with feedback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from lepton_desktop.cli import monitor_files
from lepton_desktop.cli.common import Command, open_project, print_json
from lepton_desktop.core.errors import InvalidOptionError

ACTIONS = ("show", "alerts", "feedback", "export", "compare", "retrain")


def _add_monitor(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("monitor", help="traffic, latency, errors, live quality; alert rules")
    actions = p.add_subparsers(dest="monitor_action", required=True, parser_class=type(p))
    _add_show(actions)
    monitor_files.add_feedback(actions)
    monitor_files.add_export(actions)
    _add_compare(actions)
    retrain = actions.add_parser(
        "retrain", help="retrain the champion on its data plus the labelled served rows"
    )
    retrain.add_argument("project", type=Path)
    retrain.add_argument("model", help="the model's name")
    retrain.add_argument("--json", action="store_true")
    alerts = actions.add_parser("alerts", help="alert rules: add, list, remove, history, check")
    alert_actions = alerts.add_subparsers(dest="alert_action", required=True,
                                          parser_class=type(p))  # fmt: skip
    _add_alert_add(alert_actions)
    for name, text in (
        ("list", "the rules"),
        ("history", "the alerts raised, newest first"),
        ("check", "evaluate every rule now (a running server does it too)"),
    ):
        q = alert_actions.add_parser(name, help=text)
        q.add_argument("project", type=Path)
        q.add_argument("--json", action="store_true")
    remove = alert_actions.add_parser("remove", help="delete a rule and its alerts")
    remove.add_argument("project", type=Path)
    remove.add_argument("name")
    return p


def _add_show(actions: Any) -> None:
    p = actions.add_parser("show", help="the report of a window (the default: monitor PROJECT)")
    p.add_argument("project", type=Path)
    p.add_argument("--model", metavar="NAME[:VERSION]", help="one model (default: every model)")
    p.add_argument("--since", default="1h", help="15m, 1h, 24h, 7d, all, or N[smhdw] (default 1h)")
    p.add_argument(
        "--last-labelled",
        type=int,
        metavar="N",
        help="also the quality over the newest N labelled rows (a count window)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object (see README)")
    p.add_argument(
        "--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
        help="print again every SECONDS (default 5) until Ctrl-C",
    )  # fmt: skip


def _add_alert_add(actions: Any) -> None:
    p = actions.add_parser("add", help="a rule: METRIC above or below a threshold")
    p.add_argument("project", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--metric", required=True, help="error_rate, latency_p99_ms, accuracy, ...")
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument("--above", type=float, metavar="X", help="fire when the metric is > X")
    side.add_argument("--below", type=float, metavar="X", help="fire when the metric is < X")
    p.add_argument("--model", metavar="NAME[:VERSION]", help="one model (default: every model)")
    p.add_argument("--window", default="15m", help="the span each check looks at (default 15m)")
    p.add_argument("--min-rows", type=int, default=0, help="no verdict on fewer rows")
    p.add_argument("--cooldown", default="5m", help="quiet time after an alert resolves")
    p.add_argument("--webhook", metavar="URL", help="POST each alert here as JSON (retried)")
    p.add_argument(
        "--action",
        choices=("notify", "rollback"),
        default="notify",
        help="rollback: move the model's champion back a version when it fires",
    )
    p.add_argument("--json", action="store_true")


def _add_compare(actions: Any) -> None:
    p = actions.add_parser("compare", help="a candidate version beside the champion; promote")
    p.add_argument("project", type=Path)
    p.add_argument("model", help="the model's name")
    p.add_argument("--candidate", type=int, required=True, metavar="V", help="its version")
    p.add_argument("--limit", type=int, default=10_000, metavar="N",
                   help="compare the newest N requests (default 10,000)")  # fmt: skip
    p.add_argument("--promote", action="store_true",
                   help="then move the champion alias to the candidate")  # fmt: skip
    p.add_argument("--json", action="store_true")


def normalize(words: list[str]) -> list[str]:
    """``monitor PROJECT ...`` is ``monitor show PROJECT ...``."""
    if words and words[0] not in (*ACTIONS, "-h", "--help"):
        return ["show", *words]
    return words


def cmd_monitor(args: argparse.Namespace) -> int:
    """``monitor [show] PROJECT ...`` and ``monitor alerts ACTION PROJECT ...``."""
    if args.monitor_action == "alerts":
        return _alerts(args)
    if args.monitor_action == "feedback":
        return monitor_files.feedback(args)
    if args.monitor_action == "export":
        return monitor_files.export(args, *_model_ref(args.model))
    if args.monitor_action == "compare":
        return _compare(args)
    if args.monitor_action == "retrain":
        return _retrain(args)
    return _show(args)


def _compare(args: argparse.Namespace) -> int:
    with open_project(args.project) as project:
        result = project.compare_candidate(args.model, args.candidate, limit=args.limit)
        if args.promote:
            result["promoted"] = project.promote(args.model, args.candidate)
    if args.json:
        print_json(result)
    else:
        print(format_comparison(result))
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from lepton_desktop.cli.progress import TerminalProgress

    bar = TerminalProgress(f"retraining {args.model}", unit="step")
    try:
        with open_project(args.project) as project:
            result = project.retrain_with_feedback(args.model, reporter=bar)
    finally:
        bar.close()
    if args.json:
        print_json(result)
        return 0
    print(
        f"{result['dataset']}: {result['parent']} + {result['feedback_rows']:,} labelled "
        f"served rows from {result['requests']:,} requests"
    )
    print(
        f"trained {result['candidate']} (run {result['run_id']}) from {result['champion']}'s "
        "settings; test split (the same rows):"
    )
    for key, value in result["metrics"]["candidate"].items():
        before = result["metrics"]["champion"].get(key)
        shown = "" if not isinstance(before, int | float) else f"{before:.4g} -> "
        if isinstance(value, int | float):
            print(f"  {key:<10} {shown}{value:.4g}")
    return 0


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison for a terminal: agreement, quality, latency, live traffic."""
    model, champion, candidate = result["model"], result["champion"], result["candidate"]
    head = f"{model}:{candidate} beside the champion {model}:{champion}"
    if result["source"] == "none":
        lines = [f"{head}: no answered requests of the champion to compare on"]
    else:
        lines = [f"{head} ({result['source']}, {result['requests']:,} requests, "
                 f"{result['rows']:,} rows): {result['agreement']:.1%} agree, "
                 f"{result['changed']:,} rows differ"]  # fmt: skip
    quality = result["quality"]
    if quality:
        lines.append(
            f"{quality['metric']} on {result['labelled']:,} labelled rows: champion "
            f"{quality['champion']:.4g}, candidate {quality['candidate']:.4g}"
        )
    latency = result["latency_ms"]
    for who in ("champion", "candidate"):
        if latency.get(who):
            p99 = latency[who]["p99"]
            lines.append(
                f"latency {who}: p50 {latency[who]['p50']:.2f} ms"
                + (f", p99 {p99:.2f} ms" if p99 is not None else " per row (replayed)")
            )
    for version, live in result["live"].items():
        if live:
            lines.append(f"answered itself, {model}:{version}: {live['requests']:,} requests")
    if "promoted" in result:
        lines.append(f"promoted {model}:{candidate} to champion (was {model}:{champion})")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    model, version = _model_ref(args.model)
    if args.watch is not None and not (0.5 <= args.watch <= 3600):
        raise InvalidOptionError(f"--watch {args.watch}: give seconds from 0.5 to 3600")
    with open_project(args.project) as project:
        while True:
            report = project.monitor(
                args.since, model=model, version=version, last_labelled=args.last_labelled
            )
            if args.json:
                print_json(report)
            else:
                print(format_report(report))
            if args.watch is None:
                return 0
            sys.stdout.flush()
            try:
                time.sleep(args.watch)
            except KeyboardInterrupt:
                return 0


def _alerts(args: argparse.Namespace) -> int:
    from lepton_desktop.core.monitoring.alerts import RuleSpec
    from lepton_desktop.core.monitoring.window import span_seconds

    with open_project(args.project) as project:
        if args.alert_action == "add":
            model, version = _model_ref(args.model)
            rule = project.add_alert(RuleSpec(
                name=args.name, metric=args.metric, op=">" if args.below is None else "<",
                threshold=args.above if args.below is None else args.below, model=model,
                version=version, window=args.window, min_rows=args.min_rows,
                cooldown_s=span_seconds(args.cooldown, "--cooldown"), webhook=args.webhook,
                action=args.action,
            ))  # fmt: skip
            _print_rules([rule], args.json)
        elif args.alert_action == "list":
            _print_rules(project.alert_rules(), args.json)
        elif args.alert_action == "remove":
            project.remove_alert(args.name)
            print(f"removed alert rule {args.name!r} and its alerts")
        elif args.alert_action == "history":
            _print_history(project.alert_history(), args.json)
        else:
            changes = project.check_alerts()
            if args.json:
                print_json({"changes": [c.to_dict() for c in changes]})
            for change in [] if args.json else changes:
                print(f"{change.state}: {change.message}"
                      + (f" ({change.action_taken})" if change.action_taken else ""))  # fmt: skip
    return 0


def _rule_dict(rule: Any) -> dict[str, Any]:
    shown = dataclasses.asdict(rule)
    shown["webhook"] = "(sealed)" if rule.webhook else None  # never printed back
    return shown


def _print_rules(rules: list[Any], as_json: bool) -> None:
    if as_json:
        print_json({"rules": [_rule_dict(r) for r in rules]})
        return
    if not rules:
        print("no alert rules")
    for r in rules:
        scope = r.model + (f":{r.version}" if r.version else "") if r.model else "every model"
        extras = [f"min {r.min_rows:,} rows" if r.min_rows else "",
                  "webhook" if r.webhook else "", r.action if r.action != "notify" else "",
                  "" if r.enabled else "disabled"]  # fmt: skip
        print(f"{r.name}: {r.metric} of {scope} over {r.window} {r.op} {r.threshold:g}"
              + "".join(f" · {e}" for e in extras if e))  # fmt: skip


def _print_history(events: list[Any], as_json: bool) -> None:
    if as_json:
        print_json({"alerts": [dataclasses.asdict(e) for e in events]})
        return
    if not events:
        print("no alerts raised")
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.fired_at))
        delivered = f" · webhook {e.deliveries[-1]['status'] or e.deliveries[-1]['error']}" \
            if e.deliveries else ""  # fmt: skip
        print(f"{when}  {e.state:<8} {e.message}{delivered}")


def _model_ref(text: str | None) -> tuple[str | None, int | None]:
    if text is None:
        return None, None
    name, _, number = text.partition(":")
    if not name or (number and not number.isdigit()):
        raise InvalidOptionError(f"--model {text!r}: give NAME or NAME:VERSION")
    return name, int(number) if number else None


def format_report(report: dict[str, Any]) -> str:
    """The report as a few lines per model, for a terminal."""
    window = report["window"]["label"]
    if not report["models"]:
        return f"no requests logged ({window})"
    lines = [_model_lines(entry, window) for entry in report["models"]]
    lines.append(_anomaly_lines(report["anomalies"]))
    return "\n".join(lines)


def _model_lines(entry: dict[str, Any], window: str) -> str:
    name = entry["model"] + (f":{entry['version']}" if entry["version"] else "")
    errors = entry["errors"]
    lines = [
        f"{name}  ({window}): {entry['requests']:,} requests ({entry['requests_per_s']:.3g}/s), "
        f"errors 4xx {errors['4xx']:,} · 5xx {errors['5xx']:,} ({entry['error_rate']:.1%}), "
        f"{entry['rows']:,} rows predicted"
    ]
    latency = entry["latency_ms"]
    if latency["p50"] is not None:
        lines.append("  latency ms   " + "  ".join(
            f"{k} {latency[k]:.3g}" for k in ("p50", "p95", "p99", "mean")))  # fmt: skip
    if entry["versions"]:
        lines.append("  versions     " + " · ".join(
            f"{k} {n:,}" for k, n in entry["versions"].items()))  # fmt: skip
    if entry["predictions"]:
        lines.append("  predictions  " + _predictions(entry["predictions"]))
    lines.append("  quality      " + _quality(entry["quality"]))
    estimated = entry.get("estimated_quality") or {}
    if estimated.get("method"):
        lines.append("  estimated    " + _estimated(estimated))
    if "quality_last_labelled" in entry:
        last = entry["quality_last_labelled"]
        lines.append(f"  last {last['last']:,} labelled  " + _quality(last))
    if entry["quality"].get("reference"):
        reference = entry["quality"]["reference"]
        lines.append(f"  offline test (v{reference['version']})  " + " · ".join(
            f"{k} {v:.3f}" for k, v in reference["metrics"].items()))  # fmt: skip
    lines += _drift_lines(entry["drift"])
    return "\n".join(lines)


#: Features listed per model at most (the rest are counted).
SHOWN_FEATURES = 30


def _drift_lines(drift: dict[str, Any]) -> list[str]:
    """The verdict, then one line per feature: test, statistic or p-value, PSI, shares."""
    if not drift["features"]:
        return [f"  drift        – ({drift['note']})"]
    tested = [f for f in drift["features"] if f["role"] == "feature" and f["test"]]
    reference = drift["reference"]
    head = (f"  drift        {drift['drifted_features']} of {len(tested)} features drifted "
            f"({drift['share']:.0%}{', dataset drift' if drift['dataset_drift'] else ''}); "
            f"{drift['rows']:,} served rows vs {reference.get('dataset', '?')} "
            f"{reference.get('split', '')} ({reference.get('rows', 0):,} rows)")  # fmt: skip
    lines = [head] if not drift["note"] else [head, f"               {drift['note']}"]
    for feature in drift["features"][:SHOWN_FEATURES]:
        lines.append("    " + _feature_line(feature))
    if len(drift["features"]) > SHOWN_FEATURES:
        lines.append(f"    ... {len(drift['features']) - SHOWN_FEATURES} more (see --json)")
    return lines


def _feature_line(feature: dict[str, Any]) -> str:
    name = feature["feature"][:20].ljust(20)
    if feature["test"] is None:
        return f"{name} no values served"
    score = (
        f"p {feature['p_value']:.3g}"
        if feature["p_value"] is not None
        else f"{feature['statistic']:.3g}"
        if feature["statistic"] is not None
        else "–"
    )
    extra = [f"psi {feature['psi']:.3f}"] if feature["psi"] is not None else []
    if feature["missing_share"]:
        extra.append(f"missing {feature['missing_share']:.1%}")
    if feature["unseen_share"]:
        extra.append(f"unseen {feature['unseen_share']:.1%}")
    verdict = "DRIFTED" if feature["drifted"] else "ok"
    return f"{name} {feature['test']:<13} {score:<12} {verdict:<8} {' · '.join(extra)}".rstrip()


def _anomaly_lines(anomalies: dict[str, Any]) -> str:
    kinds = " · ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in anomalies["by_kind"].items())
    spikes = (f"latency spikes {len(anomalies['latency_spikes'])}, "
              f"error-rate spikes {len(anomalies['error_spikes'])}")  # fmt: skip
    return (f"anomalies: {anomalies['requests_flagged']:,} requests flagged ({kinds}); "
            f"{spikes}")  # fmt: skip


def _predictions(predictions: dict[str, float]) -> str:
    if set(predictions) == {"mean", "std", "min", "max"}:
        return " · ".join(f"{k} {predictions[k]:.4g}" for k in ("mean", "std", "min", "max"))
    return " · ".join(f"{label} {share:.0%}" for label, share in predictions.items())


def _estimated(estimated: dict[str, Any]) -> str:
    """CBPE's estimate, the rows it read and the calibration each version used."""
    metrics = estimated["metrics"]
    if metrics.get("accuracy") is None:
        return f"– ({estimated['note']})"
    calibration = ", ".join(f"v{v} {d.get('calibration') or d.get('note')}"
                            for v, d in estimated["versions"].items())  # fmt: skip
    return (
        f"accuracy {metrics['accuracy']:.3f} · f1 {metrics['f1']:.3f} from "
        f"{estimated['rows']:,} answered rows (CBPE; calibration: {calibration})"
    )


def _quality(quality: dict[str, Any]) -> str:
    labelled = quality["labelled"]
    if all(v is None for v in quality["metrics"].values()):
        return f"{labelled:,} labelled rows (too few for metrics)"
    shown = " · ".join(f"{k} {v:.3f}" for k, v in quality["metrics"].items())
    return f"{labelled:,} labelled rows: {shown}"


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("monitor", _add_monitor, cmd_monitor, normalize),)
