"""Alert rules: a monitored metric past a threshold, checked while a server runs.

A rule names a metric (:data:`METRICS`), a model (or all), a window, a comparison and
a threshold, the fewest rows it may judge on, a cooldown, an optional webhook and an
action (``notify``, or ``rollback``: move the model's ``champion`` alias back to the
previous version). :func:`check` evaluates every enabled rule once: a rule whose
condition holds opens an alert (``firing``) unless one is open or the cooldown since
the last one runs; an open alert whose condition no longer holds is ``resolved``. Each
change is recorded, and POSTed as JSON to the rule's webhook with retries (every
attempt recorded with the alert). The serving supervisor runs :func:`check` every few
seconds, so alerts work with the GUI closed; ``lepton-desktop monitor alerts check``
runs it once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lepton_desktop.core import secretbox
from lepton_desktop.core.entities import AlertEvent, AlertRule
from lepton_desktop.core.errors import InvalidOptionError, LeptonError
from lepton_desktop.core.monitoring import quality, traffic, window
from lepton_desktop.core.monitoring.report import kind_of
from lepton_desktop.core.store import alerts as store
from lepton_desktop.core.store import models as model_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext

#: What a rule can watch: name -> (family, how to read it from a summary or quality).
TRAFFIC_METRICS: dict[str, Callable[[traffic.Summary], float | None]] = {
    "requests": lambda s: float(s.requests),
    "requests_per_s": lambda s: s.requests_per_s,
    "error_rate": lambda s: s.error_rate,
    "errors_5xx": lambda s: float(s.errors["5xx"]),
    "latency_p50_ms": lambda s: s.latency_ms["p50"],
    "latency_p95_ms": lambda s: s.latency_ms["p95"],
    "latency_p99_ms": lambda s: s.latency_ms["p99"],
}
QUALITY_METRICS = ("accuracy", "precision", "recall", "f1", "mae", "rmse", "r2")
METRICS = (*TRAFFIC_METRICS, *QUALITY_METRICS)
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
ACTIONS = ("notify", "rollback")
#: Webhook attempts per alert change, and the wait before each retry (seconds).
WEBHOOK_RETRIES = (0.0, 1.0, 3.0)
WEBHOOK_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One rule's check: the value, on how many rows, and whether it crossed."""

    value: float | None
    rows: int
    crossed: bool


@dataclasses.dataclass(frozen=True)
class Change:
    """What a check changed: an alert that fired or resolved (and what was done)."""

    rule: str
    state: str
    event_id: int
    message: str
    action_taken: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """A rule as asked for (see :class:`~lepton_desktop.core.entities.AlertRule`)."""

    name: str
    metric: str
    op: str
    threshold: float
    model: str | None = None
    version: int | None = None
    window: str = "15m"
    min_rows: int = 0
    cooldown_s: float = 300.0
    webhook: str | None = None
    action: str = "notify"


def add_rule(ctx: ProjectContext, spec: RuleSpec) -> AlertRule:
    """Check and store a rule (its webhook sealed).

    Raises:
        InvalidOptionError: naming the bad field (nothing is stored).
        NotFoundError: an unknown model.
    """
    _check_what(spec)
    _check_when(spec)
    _check_where(ctx, spec)
    fields = dataclasses.asdict(spec)
    fields["webhook"] = secretbox.seal(spec.webhook) if spec.webhook else None
    return store.add_rule(ctx.conn, **fields, enabled=1)


def _check_what(spec: RuleSpec) -> None:
    if not spec.name or not spec.name.isprintable() or len(spec.name) > 100:
        raise InvalidOptionError("--name: give a printable name of at most 100 characters")
    if spec.metric not in METRICS:
        raise InvalidOptionError(f"--metric {spec.metric!r}: choose one of {', '.join(METRICS)}")
    if spec.op not in OPS:
        raise InvalidOptionError(f"comparison {spec.op!r}: choose one of {', '.join(OPS)}")
    if not math.isfinite(spec.threshold):
        raise InvalidOptionError(f"threshold {spec.threshold!r}: give a finite number")
    shares = ("error_rate", "accuracy", "precision", "recall", "f1")
    if spec.metric in shares and not 0 <= spec.threshold <= 1:
        raise InvalidOptionError(
            f"{spec.metric} is a share from 0 to 1: a threshold of {spec.threshold} never means "
            "anything"
        )


def _check_when(spec: RuleSpec) -> None:
    window.parse(spec.window)
    if not 0 <= spec.min_rows <= 10**9:
        raise InvalidOptionError(f"--min-rows {spec.min_rows}: give a whole number from 0")
    if not 0 <= spec.cooldown_s <= 30 * 86400:
        raise InvalidOptionError(f"--cooldown {spec.cooldown_s}: give seconds from 0 to 30 days")


def _check_where(ctx: ProjectContext, spec: RuleSpec) -> None:
    if spec.action not in ACTIONS:
        raise InvalidOptionError(f"--action {spec.action!r}: choose one of {', '.join(ACTIONS)}")
    if spec.model is None and (spec.action == "rollback" or spec.metric in QUALITY_METRICS):
        raise InvalidOptionError(
            f"--metric {spec.metric} --action {spec.action}: name the model (--model)"
        )
    if spec.model is not None:
        model_store.resolve(ctx.conn, spec.model)  # NotFoundError names the models
    if spec.webhook is not None:
        parts = urlsplit(spec.webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidOptionError(f"--webhook {spec.webhook!r}: give an http(s):// URL")


def measure(ctx: ProjectContext, rule: AlertRule, now: float) -> Verdict:
    """The rule's metric over its window ending ``now``."""
    span = window.parse(rule.window, now=now)
    if rule.metric in TRAFFIC_METRICS:
        summary = traffic.summary(ctx, span, rule.model, rule.version)
        value, rows = TRAFFIC_METRICS[rule.metric](summary), summary.requests
    else:
        if rule.model is None:  # refused when the rule was made
            return Verdict(None, 0, False)
        live = quality.live_quality(ctx, span, rule.model, rule.version,
                                    kind_of(ctx, rule.model))  # fmt: skip
        value, rows = live.metrics.get(rule.metric), live.labelled
    if value is None or rows < rule.min_rows:
        return Verdict(None, rows, False)  # no verdict: an open alert stays open
    return Verdict(value, rows, OPS[rule.op](value, rule.threshold))


def check(ctx: ProjectContext, now: float | None = None,
          deliver: Callable[[AlertRule, dict[str, Any]], list[dict[str, Any]]] | None = None,
          ) -> list[Change]:  # fmt: skip
    """Evaluate every enabled rule once; record, act on and deliver what changed."""
    now = time.time() if now is None else now
    deliver = deliver or post_webhook
    changes = []
    for rule in store.list_rules(ctx.conn):
        if not rule.enabled:
            continue
        change = _check_one(ctx, rule, measure(ctx, rule, now), now)
        if change is None:
            continue
        changes.append(change)
        if rule.webhook:
            for attempt in deliver(rule, _payload(rule, change, now)):
                store.add_delivery(ctx.conn, change.event_id, attempt)
    return changes


def _check_one(ctx: ProjectContext, rule: AlertRule, verdict: Verdict, now: float
               ) -> Change | None:  # fmt: skip
    firing = store.open_event(ctx.conn, rule.id)
    if firing is not None and not verdict.crossed and verdict.value is not None:
        store.resolve(ctx.conn, firing.id, now)
        return Change(rule.name, "resolved", firing.id, f"{rule.name}: resolved "
                      f"({rule.metric} {_number(verdict.value)})")  # fmt: skip
    if firing is not None or not verdict.crossed or verdict.value is None:
        return None
    last = store.last_resolved_at(ctx.conn, rule.id)
    if last is not None and now - last < rule.cooldown_s:
        return None
    scope = rule.model or "every model"
    message = (f"{rule.name}: {rule.metric} of {scope} over {rule.window} is "
               f"{_number(verdict.value)} ({rule.op} {_number(rule.threshold)}, "
               f"{verdict.rows:,} rows)")  # fmt: skip
    event_id = store.fire(ctx.conn, rule.id, verdict.value, verdict.rows, message, now)
    action = _roll_back(ctx, rule) if rule.action == "rollback" else None
    return Change(rule.name, "firing", event_id, message, action)


def _roll_back(ctx: ProjectContext, rule: AlertRule) -> str:
    """Move the model's ``champion`` to the version before it (what a rollback rule does)."""
    assert rule.model is not None
    try:
        current = model_store.resolve(ctx.conn, f"{rule.model}@champion")
    except LeptonError:
        current = model_store.resolve(ctx.conn, rule.model)
    older = [v for v in model_store.list_versions(ctx.conn, include_archived=False)
             if v.name == rule.model and v.version < current.version]  # fmt: skip
    if not older:
        return f"no version of {rule.model} before {current.version} to roll back to"
    target = max(older, key=lambda v: v.version)
    model_store.set_alias(ctx.conn, target, "champion")
    return f"champion of {rule.model} moved from version {current.version} to {target.version}"


def _payload(rule: AlertRule, change: Change, now: float) -> dict[str, Any]:
    return {"alert": rule.name, "state": change.state, "message": change.message,
            "metric": rule.metric, "model": rule.model, "version": rule.version,
            "threshold": rule.threshold, "op": rule.op, "window": rule.window,
            "action": change.action_taken, "at": now}  # fmt: skip


def post_webhook(rule: AlertRule, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """POST ``payload`` to the rule's webhook, retrying; return every attempt's record."""
    import httpx

    assert rule.webhook is not None
    try:
        url = secretbox.unseal(rule.webhook)
    except LeptonError as exc:
        return [{"at": time.time(), "status": None, "error": str(exc)}]
    attempts: list[dict[str, Any]] = []
    for wait in WEBHOOK_RETRIES:
        time.sleep(wait)
        try:
            answer = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
            attempts.append({"at": time.time(), "status": answer.status_code, "error": None})
            if answer.status_code < 300:
                break
        except httpx.HTTPError as exc:
            attempts.append({"at": time.time(), "status": None, "error": type(exc).__name__})
    return attempts


def history(ctx: ProjectContext, limit: int = 200) -> list[AlertEvent]:
    """Alerts raised, newest first."""
    return store.events(ctx.conn, limit)


def _number(value: float) -> str:
    return f"{value:.4g}"
