"""Alert rules and the alerts they raised (SQL only here)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from lepton_desktop.core.entities import AlertEvent, AlertRule
from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.store.db import transaction

_RULE_COLUMNS = (
    "id, name, metric, model, version, window, op, threshold, min_rows, cooldown_s, "
    "webhook, action, enabled, created_at"
)
_EVENT_COLUMNS = (
    "e.id, e.rule_id, r.name, e.state, e.value, e.rows, e.message, e.fired_at, "
    "e.resolved_at, e.deliveries"
)


def _rule(row: tuple[Any, ...]) -> AlertRule:
    values = list(row)
    values[12] = bool(values[12])
    return AlertRule(*values)


def _event(row: tuple[Any, ...]) -> AlertEvent:
    values = list(row)
    values[9] = json.loads(values[9])
    return AlertEvent(*values)


def add_rule(conn: sqlite3.Connection, **fields: Any) -> AlertRule:
    """Store a new rule (fields as :class:`AlertRule`'s, less ``id`` and ``created_at``).

    Raises:
        InvalidOptionError: a rule with that name exists (nothing is stored).
    """
    names = [k for k in _RULE_COLUMNS.split(", ") if k not in ("id", "created_at")]
    values = [fields[k] for k in names]
    with transaction(conn):
        taken = conn.execute("SELECT 1 FROM alert_rules WHERE name = ?", (fields["name"],))
        if taken.fetchone() is not None:
            raise InvalidOptionError(
                f"an alert rule named {fields['name']!r} exists; remove it or pick another name"
            )
        cur = conn.execute(
            f"INSERT INTO alert_rules ({', '.join(names)}, created_at) "
            f"VALUES ({', '.join('?' * len(names))}, ?)",
            (*values, time.time()),
        )
    return get_rule(conn, str(fields["name"]), rule_id=int(cur.lastrowid or 0))


def get_rule(conn: sqlite3.Connection, name: str, rule_id: int | None = None) -> AlertRule:
    """The rule named ``name`` (or with id ``rule_id``). Raises NotFoundError."""
    key, value = ("id", rule_id) if rule_id else ("name", name)
    row = conn.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE {key} = ?",
                       (value,)).fetchone()  # fmt: skip
    if row is None:
        known = ", ".join(r.name for r in list_rules(conn)) or "none"
        raise NotFoundError(f"no alert rule named {name!r} (rules: {known})")
    return _rule(row)


def list_rules(conn: sqlite3.Connection) -> list[AlertRule]:
    """Every rule, by name."""
    rows = conn.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY name")
    return [_rule(r) for r in rows]


def remove_rule(conn: sqlite3.Connection, name: str) -> None:
    """Delete a rule and its alerts. Raises NotFoundError (nothing deleted)."""
    rule = get_rule(conn, name)
    with transaction(conn):
        conn.execute("DELETE FROM alert_events WHERE rule_id = ?", (rule.id,))
        conn.execute("DELETE FROM alert_rules WHERE id = ?", (rule.id,))


def open_event(conn: sqlite3.Connection, rule_id: int) -> AlertEvent | None:
    """The rule's alert that is still firing, if any."""
    row = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id "
        "WHERE e.rule_id = ? AND e.state = 'firing' ORDER BY e.id DESC LIMIT 1",
        (rule_id,),
    ).fetchone()
    return _event(row) if row else None


def last_resolved_at(conn: sqlite3.Connection, rule_id: int) -> float | None:
    """When the rule's latest alert resolved (its cooldown counts from there)."""
    row = conn.execute(
        "SELECT MAX(resolved_at) FROM alert_events WHERE rule_id = ?", (rule_id,)
    ).fetchone()
    return row[0]


def fire(conn: sqlite3.Connection, rule_id: int, value: float, rows: int, message: str,
         at: float) -> int:  # fmt: skip
    """Record a new firing alert; return its id."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO alert_events (rule_id, state, value, rows, message, fired_at) "
            "VALUES (?, 'firing', ?, ?, ?, ?)",
            (rule_id, value, rows, message, at),
        )
    return int(cur.lastrowid or 0)


def resolve(conn: sqlite3.Connection, event_id: int, at: float) -> None:
    """Mark a firing alert resolved."""
    with transaction(conn):
        conn.execute(
            "UPDATE alert_events SET state = 'resolved', resolved_at = ? WHERE id = ?",
            (at, event_id),
        )


def add_delivery(conn: sqlite3.Connection, event_id: int, delivery: dict[str, Any]) -> None:
    """Append one webhook attempt to an alert's record."""
    with transaction(conn):
        conn.execute(
            "UPDATE alert_events SET deliveries = json_insert(deliveries, '$[#]', json(?)) "
            "WHERE id = ?",
            (json.dumps(delivery), event_id),
        )


def events(conn: sqlite3.Connection, limit: int = 200, firing_only: bool = False
           ) -> list[AlertEvent]:  # fmt: skip
    """Alerts, newest first."""
    where = "WHERE e.state = 'firing'" if firing_only else ""
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id "
        f"{where} ORDER BY e.fired_at DESC, e.id DESC LIMIT ?",
        (limit,),
    )
    return [_event(r) for r in rows]
