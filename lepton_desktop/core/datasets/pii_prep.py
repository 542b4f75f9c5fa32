"""Preparing personal data away: drop, hash (keyed) or mask the columns that hold it.

``prep --pii drop|hash|mask`` treats every column the import flagged
(:mod:`~lepton_desktop.core.datasets.pii`); ``--pii-column COL=ACTION`` treats one
column (flagged or not; ``keep`` leaves a flagged one alone). The treatment runs before
every other step, so nothing is fitted on the raw values:

- ``drop``: the column is gone from the new version.
- ``hash``: each value becomes ``HMAC-SHA256(key, value)`` (32 hexadecimal digits),
  with a key kept in the user's data folder (:func:`~lepton_desktop.core.secretbox.hash_key`),
  never in the project: equal values stay equal (the column can still be joined on or
  counted), and nobody with only the project can test a guess.
- ``mask``: each value keeps only what a person checking it needs (``j***@example.com``,
  the last four digits of a card or an IBAN, the year of a birth date, an initial).

A hashed or masked column is kept as text: never a model feature (its values are no
measurement), and never one-hot encoded into a model's pipeline. The target cannot be
treated (a model would learn hashes), nor the time column of a series.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from lepton_desktop.core.datasets.frame import Frame
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import InvalidOptionError

ACTIONS = ("drop", "hash", "mask")
COLUMN_ACTIONS = (*ACTIONS, "keep")


def check_actions(pii: str | None, columns: Mapping[str, str]) -> None:
    """Refuse an unknown action. Raises InvalidOptionError naming it."""
    if pii is not None and pii not in ACTIONS:
        raise InvalidOptionError(f"--pii {pii!r}: use drop, hash or mask")
    for name, action in columns.items():
        if action not in COLUMN_ACTIONS:
            raise InvalidOptionError(
                f"--pii-column {name}={action}: the action is drop, hash, mask or keep"
            )


def planned_actions(
    version: DatasetVersion, pii: str | None, columns: Mapping[str, str]
) -> dict[str, str]:
    """Column -> action for ``version`` (``keep`` left out), checked against it.

    Raises:
        InvalidOptionError: a column the version lacks, the target or the time column,
            an image dataset, or ``--pii`` on a version with no flagged column.
    """
    from lepton_desktop.core.datasets.pii_found import findings_of

    check_actions(pii, columns)
    if version.kind == "images" and (pii or columns):
        raise InvalidOptionError(f"{version.ref} is an image dataset: --pii is for tables")
    names = [c.name for c in version.columns]
    for name in columns:
        if name not in names:
            raise InvalidOptionError(
                f"--pii-column {name}: {version.ref} has no such column; the columns are: "
                f"{', '.join(names)}"
            )
    flagged = [f.column for f in findings_of(version.columns)]
    if pii and not flagged and not columns:
        raise InvalidOptionError(
            f"--pii {pii}: no column of {version.ref} was found to hold personal data; "
            "name columns with --pii-column COL=ACTION"
        )
    plan: dict[str, str] = {name: pii for name in flagged if pii}
    plan.update(columns)
    plan = {name: action for name, action in plan.items() if action != "keep"}
    for role, special in (("target", version.target), ("time column", version.time_column)):
        if special is not None and special in plan:
            raise InvalidOptionError(
                f"cannot {plan[special]} {special!r}: it is the {role} of {version.ref} (a "
                f"model would learn {'hashes' if plan[special] == 'hash' else 'nothing'}); choose "
                "another target, or leave this column out of --pii"
            )
    return plan


def treat(
    frame: Frame, version: DatasetVersion, plan: Mapping[str, str], key: bytes
) -> tuple[Frame, DatasetVersion, dict[str, Any]]:
    """Apply ``plan`` to ``frame``; also return the version as the rest of prep sees it.

    The returned version has the dropped columns left out and the treated ones typed
    ``text``, so fill, scale and one-hot encoding never touch them; the operation
    records what was done (never a key or a value).
    """
    from lepton_desktop.core.datasets.pii_found import findings_of

    kinds = {f.column: f.kind for f in findings_of(version.columns)}
    columns = dict(frame.columns)
    dtypes = dict(frame.dtypes)
    extra = {name: dict(stats) for name, stats in frame.extra.items()}
    for name, action in plan.items():
        if action == "drop":
            del columns[name], dtypes[name]
            extra.pop(name, None)
            continue
        values = columns[name]
        columns[name] = (
            hash_values(values, key)
            if action == "hash"
            else mask_values(values, kinds.get(name, ""))
        )
        dtypes[name] = "text"
        extra[name] = {"pii_treated": action}
    treated_columns = tuple(
        dataclasses.replace(c, dtype="text") if plan.get(c.name) in ("hash", "mask") else c
        for c in version.columns
        if plan.get(c.name) != "drop"
    )
    view = dataclasses.replace(version, columns=treated_columns)
    out = dataclasses.replace(frame, columns=columns, dtypes=dtypes, extra=extra)
    operation = {
        "op": "pii",
        "columns": dict(plan),
        "kinds": {n: kinds[n] for n in plan if n in kinds},
    }
    if "hash" in plan.values():
        operation["hash"] = "hmac-sha256, key kept outside the project"
    return out, view, operation


def hash_values(values: np.ndarray, key: bytes) -> np.ndarray:
    """Each present value's keyed hash (32 hexadecimal digits); missing stays missing."""
    out = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        text = _text(value)
        out[row] = (
            None if text is None else hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
        )
    return out


def mask_values(values: np.ndarray, kind: str) -> np.ndarray:
    """Each present value masked for its kind (see the module docs)."""
    out = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        text = _text(value)
        out[row] = None if text is None else mask(text, kind)
    return out


def mask(text: str, kind: str) -> str:
    """One value masked: only what identifies no one is left."""
    if kind == "email" and "@" in text:
        local, domain = text.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    if kind == "date_of_birth":
        year = re.search(r"\b(1[89]|20)\d\d\b", text)
        return f"{year.group(0)}-**-**" if year else "****"
    if kind == "name":
        return f"{text[:1]}***"
    if kind == "ip":
        first, dot, rest = text.partition(".")
        return first + dot + re.sub(r"[0-9A-Fa-f]", "*", rest) if dot else "****"
    # cards, IBANs, phones, ids, anything else: every letter and digit but the last four
    keep = 4 if len(text) > 8 else 0
    head, tail = text[: len(text) - keep], text[len(text) - keep :]
    return re.sub(r"[0-9A-Za-z]", "*", head) + tail


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an integer column reads as floats
    return str(value)
