"""``lepton-desktop monitor PROJECT``: how the served models are doing, from the project file.

Reads what servers logged (requests, errors, latency, versions, predictions), the
feedback sent to them (live quality) and the drift of the served inputs against each
model's training split, with the anomalies flagged, over a window
(``--since 15m|1h|24h|7d|all``).
Nothing is written; it works while a server runs, or long after it stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, open_project, print_json
from lepton_desktop.core.errors import InvalidOptionError


def _add_monitor(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("monitor", help="traffic, latency, errors, live quality of served models")
    p.add_argument("project", type=Path)
    p.add_argument("--model", metavar="NAME[:VERSION]", help="one model (default: every model)")
    p.add_argument("--since", default="1h", help="15m, 1h, 24h, 7d, all, or N[smhdw] (default 1h)")
    p.add_argument("--json", action="store_true", help="one JSON object (see README)")
    p.add_argument(
        "--watch", type=float, nargs="?", const=5.0, metavar="SECONDS",
        help="print again every SECONDS (default 5) until Ctrl-C",
    )  # fmt: skip
    return p


def cmd_monitor(args: argparse.Namespace) -> int:
    """``monitor PROJECT [--model NAME[:VERSION]] [--since 1h] [--json] [--watch [S]]``."""
    model, version = _model_ref(args.model)
    if args.watch is not None and not (0.5 <= args.watch <= 3600):
        raise InvalidOptionError(f"--watch {args.watch}: give seconds from 0.5 to 3600")
    with open_project(args.project) as project:
        while True:
            report = project.monitor(args.since, model=model, version=version)
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
    score = (f"p {feature['p_value']:.3g}" if feature["p_value"] is not None
             else f"{feature['statistic']:.3g}" if feature["statistic"] is not None else "–")
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


def _quality(quality: dict[str, Any]) -> str:
    labelled = quality["labelled"]
    if all(v is None for v in quality["metrics"].values()):
        return f"{labelled:,} labelled rows (too few for metrics)"
    shown = " · ".join(f"{k} {v:.3f}" for k, v in quality["metrics"].items())
    return f"{labelled:,} labelled rows: {shown}"


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (Command("monitor", _add_monitor, cmd_monitor),)
