"""The monitoring report as a file: JSON, or one self-contained HTML page.

``monitor export PROJECT OUT.json|OUT.html`` (and ``Project.export_monitoring``) write
what ``monitor --json`` prints (traffic, quality, estimated quality, drift, anomalies)
plus the alert rules and the alerts raised in the window. The HTML page carries the
same numbers as tables and its charts as inline SVG (requests per second, latency
percentiles, live quality with its estimate and the offline reference): no script,
no stylesheet or font from the network, so it opens anywhere and can be mailed.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.monitoring import alerts, report, traffic
from lepton_desktop.core.monitoring.window import Window
from lepton_desktop.core.store import alerts as alert_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

FORMATS = (".json", ".html")
_COLORS = ("#3a7bd5", "#e76f51", "#2a9d8f", "#9b5de5", "#e9c46a")


def export(ctx: ProjectContext, window: Window, path: Path, model: str | None = None,
           version: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the report of ``window`` to ``path`` (``.json`` or ``.html``).

    Returns ``{"path", "format", "bytes", "models"}``.

    Raises:
        InvalidOptionError: another suffix, or a folder that does not exist; nothing
            is written.
        NotFoundError: ``model`` never answered a request here.
    """
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidOptionError(f"{path}: give a file ending in .json or .html")
    if not path.parent.is_dir():
        raise InvalidOptionError(f"{path.parent}: no such folder")
    content = report.report(ctx, window, model, version)
    content["alerts"] = _alerts(ctx, window)
    content["generated_at"] = time.time()
    if suffix == ".json":
        text = json.dumps(content, indent=2, default=_plain)
    else:
        series = traffic.read(ctx, window, model, version).series
        text = render_html(content, series)
    _write(path, text)
    return {"path": str(path), "format": suffix[1:], "bytes": path.stat().st_size,
            "models": [m["model"] for m in content["models"]]}  # fmt: skip


def _alerts(ctx: ProjectContext, window: Window) -> dict[str, Any]:
    """The rules, and the alerts that fired in the window (or are firing still)."""
    since = -math.inf if window.since is None else window.since
    raised = [dataclasses.asdict(e) for e in alerts.history(ctx, 1000)
              if e.fired_at >= since or e.state == "firing"]  # fmt: skip
    rules = []
    for rule in alert_store.list_rules(ctx.conn):
        shown = dataclasses.asdict(rule)
        shown["webhook"] = "(sealed)" if rule.webhook else None  # never written out
        rules.append(shown)
    return {"rules": rules, "raised": raised}


def _write(path: Path, text: str) -> None:
    """Write through a temporary file, so a reader never sees half a report."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


# -- HTML ------------------------------------------------------------------------------


def render_html(content: dict[str, Any], series: traffic.Series) -> str:
    """The page: a heading, the charts, then one table per part of the report."""
    window = content["window"]
    names = ", ".join(m["model"] for m in content["models"]) or "no model"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(content["generated_at"]))
    x = series.start + series.bin_seconds / 2
    charts = [
        svg_chart("Requests / s", x, {"requests/s": series.per_second(series.requests),
                                      "errors/s": series.per_second(series.errors_4xx
                                                                    + series.errors_5xx)}),
        svg_chart("Latency (ms)", x, {f"p{p}": v for p, v in series.latency_ms.items()}),
    ]  # fmt: skip
    if content.get("quality_series"):
        charts.append(_quality_chart(content))
    parts = [
        f"<h1>Monitoring report: {_e(names)}</h1>",
        f"<p>Window <b>{_e(window['label'])}</b> ({_time(window['since'])} to "
        f"{_time(window['until'])}); written {when} by Lepton Desktop.</p>",
        '<div class="charts">' + "".join(charts) + "</div>",
        _summary_table(content),
    ]
    for entry in content["models"]:
        parts.append(_model_section(entry))
    parts.append(_anomalies(content["anomalies"]))
    parts.append(_alerts_section(content["alerts"]))
    return _PAGE.format(title=_e(f"Monitoring: {names}"), body="\n".join(parts))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.drifted {{ background: #fde2e2; }} .charts svg {{ margin: 0 1em 1em 0; }}
</style></head>
<body>
{body}
</body></html>
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _time(ts: float | None) -> str:
    return "the first request" if ts is None else time.strftime(
        "%Y-%m-%d %H:%M", time.localtime(ts))  # fmt: skip


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(value)


def _table(header: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_number(v)}</td>" for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _summary_table(content: dict[str, Any]) -> str:
    latency = content["latency_ms"]
    rows = [["requests", content["requests"]], ["requests / s", content["requests_per_s"]],
            ["errors 4xx", content["errors"]["4xx"]], ["errors 5xx", content["errors"]["5xx"]],
            ["error rate", content["error_rate"]], ["rows predicted", content["rows"]],
            *[[f"latency {k} (ms)", latency[k]] for k in ("p50", "p95", "p99")]]  # fmt: skip
    return "<h2>Traffic</h2>" + _table(["", "value"], rows)


def _model_section(entry: dict[str, Any]) -> str:
    name = entry["model"] + (f":{entry['version']}" if entry["version"] else "")
    quality = entry["quality"]
    parts = [f"<h2>{_e(name)}</h2>", "<h3>Live quality (feedback labels)</h3>",
             f"<p>{quality['labelled']:,} labelled rows in the window.</p>"]  # fmt: skip
    reference = quality.get("reference") or {"metrics": {}}
    estimated = entry.get("estimated_quality") or {"metrics": {}}
    names = list(quality["metrics"])
    rows = [[k, quality["metrics"][k], estimated["metrics"].get(k),
             reference["metrics"].get(k)] for k in names]  # fmt: skip
    parts.append(_table(["metric", "realised (labels)", "estimated (CBPE)",
                         "offline test"], rows))  # fmt: skip
    if estimated.get("method"):
        used = "; ".join(f"v{v}: {d.get('calibration') or d.get('note')}"
                         for v, d in estimated.get("versions", {}).items())  # fmt: skip
        parts.append(f"<p>Estimated from {estimated['rows']:,} answered rows; calibration "
                     f"{_e(used or estimated.get('note', ''))}.</p>")  # fmt: skip
    if quality.get("per_class"):
        parts.append(_table(["class", "precision", "recall", "f1", "support"],
                            [[c, v["precision"], v["recall"], v["f1"], v["support"]]
                             for c, v in quality["per_class"].items()]))  # fmt: skip
    if quality.get("labels") and quality.get("confusion"):
        parts.append("<p>Confusion matrix (rows: true, columns: predicted)</p>")
        parts.append(_table(["", *quality["labels"]],
                            [[t, *row] for t, row in zip(quality["labels"], quality["confusion"],
                                                         strict=True)]))  # fmt: skip
    parts.append(_drift_section(entry["drift"]))
    return "\n".join(parts)


def _drift_section(found: dict[str, Any]) -> str:
    features = found.get("features", [])
    if not features:
        return f"<h3>Drift</h3><p>{_e(found.get('note') or 'no drift reference')}</p>"
    head = (f"<h3>Drift</h3><p>{found['drifted_features']} of the features drifted "
            f"(share {found['share']:.0%}{', dataset drift' if found['dataset_drift'] else ''}) "
            f"over {found['rows']:,} served rows.</p>")  # fmt: skip
    rows = [[f["feature"], f["test"], f["statistic"], f["p_value"], f["psi"],
             f["missing_share"], f["unseen_share"], f["drifted"]] for f in features]  # fmt: skip
    classes = ["drifted" if f["drifted"] else "" for f in features]
    return head + _table(["feature", "test", "statistic", "p-value", "PSI", "missing",
                          "unseen", "drifted"], rows, classes)  # fmt: skip


def _anomalies(found: dict[str, Any]) -> str:
    rows = [[k.replace("_", " "), n] for k, n in found["by_kind"].items()]
    spikes = (f"{len(found['latency_spikes'])} latency spike(s), "
              f"{len(found['error_spikes'])} error-rate spike(s)")  # fmt: skip
    return (f"<h2>Anomalies</h2><p>{found['requests_flagged']:,} requests flagged; "
            f"{spikes}.</p>" + _table(["kind", "requests"], rows))  # fmt: skip


def _alerts_section(found: dict[str, Any]) -> str:
    rules = [[r["name"], r["metric"], r["model"] or "every model", f"{r['op']} {r['threshold']:g}",
              r["window"], r["action"]] for r in found["rules"]]  # fmt: skip
    raised = [[_time(e["fired_at"]), e["rule"], e["state"], e["message"]]
              for e in found["raised"]]  # fmt: skip
    return ("<h2>Alerts</h2>" + _table(["rule", "metric", "model", "fires when", "window",
                                        "action"], rules)
            + _table(["fired", "rule", "state", "message"], raised))  # fmt: skip


def _quality_chart(content: dict[str, Any]) -> str:
    series = content["quality_series"]
    x = np.asarray(series["start"], dtype=float) + series["bin_seconds"] / 2
    lines = {f"{series['metric']} (labels)": _floats(series["values"])}
    estimated = content.get("estimated_series")
    if estimated and len(estimated["values"]) == len(x):
        lines[f"{series['metric']} (estimated)"] = _floats(estimated["values"])
    reference = (content.get("quality") or {}).get("reference") or {}
    level = reference.get("metrics", {}).get(series["metric"])
    return svg_chart(f"Live {series['metric']}", x, lines, level)


def _floats(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def svg_chart(
    title: str,
    x: np.ndarray,
    lines: dict[str, np.ndarray],
    reference: float | None = None,
    width: int = 460,
    height: int = 220,
) -> str:
    """A line chart as an inline SVG element (NaN breaks a line; ``reference`` dashed)."""
    left, right, top, bottom = 48, 10, 24, 34
    values = [v[np.isfinite(v)] for v in lines.values()]
    known = np.concatenate([*values, [reference] if reference is not None else []])
    low, high = (float(known.min()), float(known.max())) if len(known) else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    x0, x1 = (float(x.min()), float(x.max())) if len(x) else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1

    def px(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * (width - left - right)

    def py(v: float) -> float:
        return top + (high - v) / (high - low) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{_e(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" '
             f'height="{height - top - bottom}" fill="none" stroke="#bbb"/>',
             f'<text x="4" y="{top + 10}" font-size="10">{high:.4g}</text>',
             f'<text x="4" y="{height - bottom}" font-size="10">{low:.4g}</text>',
             f'<text x="{left}" y="{height - 20}" font-size="10">{_e(_time(x0))}</text>',
             f'<text x="{width - right}" y="{height - 20}" font-size="10" '
             f'text-anchor="end">{_e(_time(x1))}</text>']  # fmt: skip
    for i, (name, y) in enumerate(lines.items()):
        color = _COLORS[i % len(_COLORS)]
        for run in _finite_runs(x, y):
            points = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                         'stroke-width="1.6"/>')  # fmt: skip
        parts.append(f'<text x="{left + 6 + 110 * i}" y="{height - 6}" font-size="10" '
                     f'fill="{color}">{_e(name)}</text>')  # fmt: skip
    if reference is not None:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(reference):.1f}" '
                     f'y2="{py(reference):.1f}" stroke="#6c757d" stroke-dasharray="5,4"/>'
                     f'<text x="{width - right - 4}" y="{py(reference) - 4:.1f}" font-size="10" '
                     f'text-anchor="end">offline test {reference:.3f}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _finite_runs(x: np.ndarray, y: np.ndarray) -> list[list[tuple[float, float]]]:
    """Stretches of consecutive finite points (a lone point is drawn as a short run)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in zip(x, y, strict=True):
        if np.isfinite(v):
            runs[-1].append((float(t), float(v)))
        elif runs[-1]:
            runs.append([])
    return [r if len(r) > 1 else r * 2 for r in runs if r]
