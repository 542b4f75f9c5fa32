"""A candidate version beside the champion: agreement, quality on labelled rows, latency.

The comparison takes the best evidence there is:

- **shadow** rows (``serve --shadow MODEL:V``): the same live requests answered by both,
  each with its own latency; labels sent back score both on the same rows;
- otherwise a **replay**: the champion's recently answered requests answered again by
  the candidate here (:mod:`.replay`); the candidate's latency is then this machine's
  time per row, not a server's, and is marked so.

``live`` adds what each version answered itself (a canary's share, or before a
promotion): requests, latency p50/p99 and live quality from the rollups.
Promoting moves the model's ``champion`` alias, which a running server follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.monitoring.replay import (
    MAX_REPLAYED,
    Tally,
    replay,
    same_answer,
    score_row,
)
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import request_log as log_store
from lepton_desktop.core.store.request_log import SHADOW_SUFFIX, RequestFilter

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

CHAMPION = "champion"
#: Requests compared at most (the newest).
DEFAULT_COMPARED = 10_000


def champion_of(ctx: ProjectContext, model: str) -> int:
    """The version ``model``'s ``champion`` alias names, else its newest unarchived one.

    Raises:
        NotFoundError: no such model.
    """
    try:
        return model_store.resolve(ctx.conn, f"{model}@{CHAMPION}").version
    except NotFoundError:
        return model_store.resolve(ctx.conn, model).version


def compare(
    ctx: ProjectContext, model: str, candidate: int, *, limit: int = DEFAULT_COMPARED
) -> dict[str, Any]:
    """``model:candidate`` beside the champion (see the module docstring).

    Returns ``model``, ``champion``, ``candidate`` (version numbers), ``source``
    (``shadow``, ``replay`` or ``none``), ``requests``, ``rows``, ``agreement``,
    ``changed``, ``labelled``, ``quality`` (``metric``, ``champion``, ``candidate``;
    None without labels), ``latency_ms`` (``champion`` and ``candidate``: ``p50``,
    ``p99``; ``candidate_measured``: ``server`` or ``replay``) and ``live`` (per
    version: ``requests``, ``latency_ms``, ``quality``).

    Raises:
        NotFoundError: no such model or version. InvalidOptionError: the candidate is
            the champion, or a bad ``limit``.
    """
    if isinstance(limit, bool) or not 1 <= limit <= MAX_REPLAYED:
        raise InvalidOptionError(f"--limit {limit}: give a number from 1 to {MAX_REPLAYED:,}")
    champion = champion_of(ctx, model)
    classify = bool(model_store.resolve(ctx.conn, f"{model}:{candidate}").params.get("classes"))
    if candidate == champion:
        raise InvalidOptionError(f"{model}:{candidate} is the champion: pick another version")
    result: dict[str, Any] = {"model": model, "champion": champion, "candidate": candidate}
    pairs = log_store.shadow_pairs(ctx.conn, model, champion, candidate, SHADOW_SUFFIX
                                   + str(candidate), limit)  # fmt: skip
    if pairs:
        result |= _from_shadows(ctx, pairs, classify)
    else:
        result |= _from_replay(ctx, model, champion, candidate, limit)
    result["live"] = {str(v): _live(ctx, model, v) for v in (champion, candidate)}
    return result


def _from_shadows(ctx: ProjectContext, pairs: list[tuple[Any, ...]],
                  classify: bool) -> dict[str, Any]:  # fmt: skip
    labels = log_store.labels_of(ctx.conn, [p[0] for p in pairs])
    tally = Tally()
    for request_id, _, before, _, after, status in pairs:
        if status != 200 or not isinstance(before, list) or not isinstance(after, list):
            tally.failed += 1
            continue
        tally.requests += 1
        for row, (old, new) in enumerate(zip(before, after, strict=False)):
            tally.rows += 1
            same, _ = same_answer(old, new)
            tally.agreeing += int(same)
            tally.changed += int(not same)
            truth = labels.get(request_id, {}).get(row)
            if truth is not None:
                score_row(old, new, truth, tally)
    champion_ms = [p[1] for p in pairs]
    candidate_ms = [p[3] for p in pairs if p[5] == 200]
    return _summary(tally, classify) | {"latency_ms": {
        "champion": _percentiles(champion_ms), "candidate": _percentiles(candidate_ms),
        "candidate_measured": "server"}}  # fmt: skip


def _from_replay(ctx: ProjectContext, model: str, champion: int, candidate: int,
                 limit: int) -> dict[str, Any]:  # fmt: skip
    answered = RequestFilter(model=model, version=champion, status=200)
    if log_store.count(ctx.conn, answered, cap=1) == 0:
        return {"source": "none", "requests": 0, "rows": 0, "agreement": None, "changed": 0,
                "labelled": 0, "quality": None,
                "latency_ms": {"champion": None, "candidate": None,
                               "candidate_measured": None}}  # fmt: skip
    replayed = replay(ctx, answered, f"{model}:{candidate}", limit=limit)
    champion_ms = [r.latency_ms for chunk in log_store.chunks(ctx.conn, answered, 5000, limit)
                   for r in chunk]  # fmt: skip
    quality = replayed["quality"]
    return {
        "source": "replay", "requests": replayed["requests"], "rows": replayed["rows"],
        "agreement": replayed["agreement"], "changed": replayed["changed"],
        "labelled": replayed["labelled"],
        "quality": None if quality is None else {
            "metric": quality["metric"], "champion": quality["before"],
            "candidate": quality["after"]},
        "latency_ms": {"champion": _percentiles(champion_ms),
                       "candidate": None if replayed["ms_per_row"] is None else {
                           "p50": replayed["ms_per_row"], "p99": None},
                       "candidate_measured": "replay"},
    }  # fmt: skip


def _summary(tally: Tally, classify: bool) -> dict[str, Any]:
    quality = None
    if tally.labelled:
        quality = {"metric": "accuracy" if classify else "mae",
                   "champion": tally.right_before / tally.labelled,
                   "candidate": tally.right_after / tally.labelled}  # fmt: skip
    return {"source": "shadow", "requests": tally.requests, "rows": tally.rows,
            "agreement": tally.agreeing / tally.rows if tally.rows else None,
            "changed": tally.changed, "labelled": tally.labelled,
            "quality": quality}  # fmt: skip


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


def _live(ctx: ProjectContext, model: str, version: int) -> dict[str, Any] | None:
    """What ``version`` answered itself over everything logged (None: nothing)."""
    from lepton_desktop.core.monitoring import window
    from lepton_desktop.core.monitoring.report import report

    try:
        seen = report(ctx, window.parse("all"), model, version)
    except NotFoundError:
        return None
    latency = seen.get("latency_ms") or {}
    quality = seen.get("quality") or {}
    return {"requests": seen.get("requests", 0),
            "latency_ms": {"p50": latency.get("p50"), "p99": latency.get("p99")},
            "quality": {"labelled": quality.get("labelled", 0),
                        "metrics": quality.get("metrics", {})}}  # fmt: skip


def promote(ctx: ProjectContext, model: str, candidate: int) -> dict[str, Any]:
    """Move ``model``'s ``champion`` alias to ``candidate``; return ``{model, champion,
    previous}``. Raises NotFoundError: no such version."""
    previous = champion_of(ctx, model)
    version = model_store.resolve(ctx.conn, f"{model}:{candidate}")
    model_store.set_alias(ctx.conn, version, CHAMPION)
    return {"model": model, "champion": candidate, "previous": previous}
