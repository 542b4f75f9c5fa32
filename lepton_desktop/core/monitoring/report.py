"""One window's monitoring report: traffic totals and, per model, quality and drift.

This is what ``lepton-desktop monitor --json`` prints and what ``Project.monitor``
returns: the window, the traffic totals of the models chosen (requests, errors,
latency, rows, versions, predictions) and one entry per model with its own traffic,
its quality from feedback (``labelled`` says on how many rows; ``reference`` the
version's offline test metrics; ``estimated_quality`` the accuracy and F1 estimated from
the model's calibrated probabilities before labels arrive, CBPE) and the drift of its
inputs and predictions against its training split. Top level, ``drift`` lists every
feature of the models shown (``{model, feature, test, statistic, p_value, drifted,
...}``), ``drift_summary`` the dataset verdict of one model, and ``anomalies`` the
flagged requests by kind and the latency and error-rate spikes. Totals count the
requests that reached a model; ``other`` counts the rest (feedback, ``/metrics``
scrapes, requests for an unknown model or with a refused token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.monitoring import anomalies, cbpe, drift, quality, traffic
from lepton_desktop.core.monitoring.window import Window
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import monitoring as store
from lepton_desktop.core.store import serving as serving_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext


def report(ctx: ProjectContext, window: Window, model: str | None = None,
           version: int | None = None, last_labelled: int | None = None
           ) -> dict[str, Any]:  # fmt: skip
    """The report of ``model`` (every served model: ``None``) over ``window``.

    With ``last_labelled``, each model's entry (and the top level, for one model) also
    has ``quality_last_labelled``: the quality over its newest ``last_labelled``
    labelled rows, whenever they were answered (a window by count, not by time).

    Raises:
        NotFoundError: ``model`` (or its ``version``) never answered a request here.
        InvalidOptionError: ``last_labelled`` out of bounds.
    """
    chosen = _chosen(ctx, model, version)
    totals = traffic.read(ctx, window, model, version)
    out = _report(ctx, window, model, version, chosen, totals, every_model=True,
                  build_estimators=True)
    if last_labelled is not None:
        _add_last_labelled(ctx, out, version, last_labelled)
    return out


def _add_last_labelled(ctx: ProjectContext, out: dict[str, Any], version: int | None,
                       count: int) -> None:  # fmt: skip
    """Each model's quality over its newest ``count`` labelled rows (a count window)."""
    for entry in out["models"]:
        found = quality.last_labelled(ctx, entry["model"], version,
                                      kind_of(ctx, entry["model"]), count)  # fmt: skip
        entry["quality_last_labelled"] = {"last": count, **found.to_dict()}
    if len(out["models"]) == 1:
        out["quality_last_labelled"] = out["models"][0]["quality_last_labelled"]


def view(ctx: ProjectContext, window: Window, model: str | None = None,
         version: int | None = None, last_labelled: int | None = None
         ) -> tuple[dict[str, Any], traffic.Series]:  # fmt: skip
    """What the Monitoring tab shows: the report and the chart series, from one read.

    The per-model entries (each one more read) are left out unless one model is shown;
    so is drift (its per-feature histograms are in ``models[0]["drift"]``). With
    ``last_labelled`` and one model, ``quality_last_labelled`` is there too.

    Raises:
        NotFoundError: as :func:`report`.
    """
    chosen = _chosen(ctx, model, version)
    totals = traffic.read(ctx, window, model, version)
    shown = _report(ctx, window, model, version, chosen, totals, every_model=False)
    if last_labelled is not None and len(chosen) == 1:
        _add_last_labelled(ctx, shown, version, last_labelled)
    return shown, totals.series


def _chosen(ctx: ProjectContext, model: str | None, version: int | None) -> list[str]:
    served = store.served_models(ctx.conn)
    names = sorted({name for name, *_ in served})
    if model is not None and model not in names:
        known = ", ".join(names) or "none yet"
        raise NotFoundError(f"model {model!r} has no logged requests (served: {known})")
    if version is not None and not any(n == model and v == version for n, v, *_ in served):
        raise NotFoundError(f"{model}:{version} has no logged requests")
    return [model] if model is not None else names


def _report(
    ctx: ProjectContext,
    window: Window,
    model: str | None,
    version: int | None,
    chosen: list[str],
    totals: traffic.Traffic,
    every_model: bool,
    build_estimators: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "window": {"label": window.label, "since": window.since, "until": window.until},
        **totals.summary.to_dict(),
    }
    if len(chosen) == 1:
        # One model: its traffic is the totals; no second read.
        out["models"] = [_model_entry(ctx, window, chosen[0], version, totals.summary,
                                      build_estimators, totals.series)]  # fmt: skip
        out["quality"] = out["models"][0]["quality"]
        out["estimated_quality"] = out["models"][0]["estimated_quality"]
        out["estimated_series"] = out["estimated_quality"].pop("series", None)
        out["quality_series"] = quality.over_time(
            ctx, window, chosen[0], version, kind_of(ctx, chosen[0]),
            totals.series.start, totals.series.bin_seconds,
        )  # fmt: skip
        out["drift_summary"] = _verdict(out["models"][0]["drift"])
    elif every_model:
        out["models"] = [_model_entry(ctx, window, name, version, None, build_estimators)
                         for name in chosen]  # fmt: skip
    else:
        out["models"] = []
    out["drift"] = [row for entry in out["models"] for row in entry["drift"]["tests"]]
    out["anomalies"] = anomalies.report(ctx, window, model, version, totals.series)
    if model is None:
        other = traffic.summary(ctx, window, "")
        out["other"] = {"requests": other.requests, "errors": other.errors}
    out["server"] = _server(ctx, window)
    return out


def _server(ctx: ProjectContext, window: Window) -> dict[str, Any]:
    """What the serving supervisor did in the window: restarts of server processes."""
    events = serving_store.server_events(ctx.conn, window.since or 0.0, window.until)
    return {
        "restarts": sum(kind == "restarted" for _, kind, _, _ in events),
        "events": [{"ts": ts, "kind": kind, "detail": detail, "deployment_id": deployment}
                   for ts, kind, detail, deployment in events],
    }  # fmt: skip


def kind_of(ctx: ProjectContext, model: str) -> str:
    """``classification`` or ``regression`` (forecasting is scored like regression)."""
    try:
        task = model_store.resolve(ctx.conn, model).task
    except NotFoundError:  # deleted since it served: judge by its logged answers
        return "classification" if store.has_labels(ctx.conn, model) else "regression"
    return "classification" if task == "classification" else "regression"


def _model_entry(ctx: ProjectContext, window: Window, model: str, version: int | None,
                 summary: traffic.Summary | None, build_estimators: bool,
                 series: traffic.Series | None = None) -> dict[str, Any]:  # fmt: skip
    if summary is None:
        summary = traffic.summary(ctx, window, model, version)
    kind = kind_of(ctx, model)
    live = quality.live_quality(ctx, window, model, version, kind)
    if kind == "classification":
        estimated = cbpe.estimated_quality(
            ctx, window, model, version, build_estimators,
            None if series is None else series.start,
            60.0 if series is None else series.bin_seconds,
        )  # fmt: skip
    else:
        estimated = {"method": None, "rows": 0, "metrics": {},
                     "note": "estimates are for classifiers (CBPE)"}  # fmt: skip
    found = drift.evaluate(ctx, window, model, version)
    reference = quality.reference(ctx, model, version)
    return {"model": model, "version": version, **summary.to_dict(),
            "quality": {**live.to_dict(), "reference": reference},
            "estimated_quality": estimated,
            "drift": {**found.to_dict(), "tests": found.rows_for_json()}}  # fmt: skip


def _verdict(found: dict[str, Any]) -> dict[str, Any]:
    """The dataset verdict of one model's drift (Evidently's DataDriftPreset rule)."""
    tested = [f for f in found["features"] if f["role"] == "feature" and f["test"]]
    return {"model": found["model"], "versions": found["versions"], "rows": found["rows"],
            "features": len(tested), "drifted": found["drifted_features"],
            "share": found["share"], "dataset_drift": found["dataset_drift"],
            "threshold": drift.DRIFT_SHARE, "reference": found["reference"],
            "note": found["note"]}  # fmt: skip
