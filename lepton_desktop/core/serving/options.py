"""The server's options: their defaults and bounds, checked before anything runs.

Kept apart from :mod:`.manager` (which reaches the project's store) so that the
command line's parser can show the defaults without importing the store.
"""

from __future__ import annotations

import math
from typing import Any

from lepton_desktop.core.errors import InvalidOptionError

#: Server options and their defaults (the tab's "Advanced" settings).
DEFAULT_OPTIONS: dict[str, Any] = {
    "cors": [],
    "capture_inputs": True,
    # Personal-data columns of a model's training data are redacted from captured
    # inputs unless this is on (serve --capture-pii) or the model is opted in.
    "capture_pii": False,
    "max_batch": 32,
    "max_wait_ms": 2.0,
    "workers": 1,
    "max_body_bytes": 8 * 1024 * 1024,
    "timeout_s": 30.0,
    # Slow and half-open clients (see core/serving/connections.py): a request's headers
    # are due within header_timeout_s, its body within body_timeout_s; beyond
    # max_connections per server process the oldest idle connection is closed.
    "max_connections": 1000,
    "header_timeout_s": 10.0,
    "body_timeout_s": 30.0,
    # Model updates (see core/serving/candidates.py): a candidate version answering a
    # share of a model's unpinned requests, [{"model", "version", "share"}], and
    # candidates receiving a copy of every request, [{"model", "version"}].
    "canary": [],
    "shadow": [],
}
#: The largest value each count option may take (sizes a user controls are bounded).
MAX_COUNTS = {
    "max_batch": 65_536,
    "workers": 64,
    "max_body_bytes": 1 << 30,
    "max_connections": 1_000_000,
}
#: Options in seconds (or ms): their flags, and whether 0 is allowed (up to 3600).
SECONDS = {
    "max_wait_ms": ("--max-wait-ms", True),
    "timeout_s": ("--timeout", True),
    "header_timeout_s": ("--header-timeout", False),
    "body_timeout_s": ("--body-timeout", False),
}


def check_options(options: dict[str, Any]) -> None:
    """Refuse impossible server options. Raises InvalidOptionError naming the option."""
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise InvalidOptionError(f"unknown server options: {', '.join(sorted(unknown))}")
    for name, most in MAX_COUNTS.items():
        if name not in options:
            continue
        value = options[name]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
            raise InvalidOptionError(
                f"--{name.replace('_', '-')} {value!r}: give a whole number from 1 to {most:,}"
            )
    check_candidates(options.get("canary", []), options.get("shadow", []))
    for key, (flag, zero) in SECONDS.items():
        if key in options and not _seconds_in_range(options[key], zero):
            lowest = "0" if zero else "above 0"
            raise InvalidOptionError(
                f"{flag} {options[key]!r}: give a number from {lowest} to 3600"
            )


def _seconds_in_range(value: Any, zero: bool) -> bool:
    # A number up to 3600; text, None or NaN is a mistake to name, not a traceback.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (value >= 0 if zero else value > 0) and value <= 3600


def parse_canary(text: str) -> dict[str, Any]:
    """``MODEL:VERSION=SHARE`` -> ``{"model", "version", "share"}`` (checked).

    Raises:
        InvalidOptionError: another shape, or a share outside (0, 1).
    """
    ref, equals, share = text.partition("=")
    try:
        value = float(share) if equals else math.nan
    except ValueError:
        value = math.nan
    model, version = _candidate_ref(ref, f"--canary {text!r}", "MODEL:VERSION=SHARE")
    spec = {"model": model, "version": version, "share": value}
    check_candidates([spec], [], flag=f"--canary {text!r}")
    return spec


def parse_shadow(text: str) -> dict[str, Any]:
    """``MODEL:VERSION`` -> ``{"model", "version"}``. Raises InvalidOptionError."""
    model, version = _candidate_ref(text, f"--shadow {text!r}", "MODEL:VERSION")
    return {"model": model, "version": version}


def _candidate_ref(ref: str, flag: str, shape: str) -> tuple[str, int]:
    name, colon, number = ref.rpartition(":")
    if not colon or not name or not number.isdigit() or int(number) < 1:
        raise InvalidOptionError(f"{flag}: give {shape}, e.g. iris:2")
    return name, int(number)


def check_candidates(canary: Any, shadow: Any, flag: str = "--canary") -> None:
    """Canary shares in (0, 1), one canary per model, well-formed entries.

    Raises:
        InvalidOptionError: naming the entry.
    """
    if not isinstance(canary, list) or not isinstance(shadow, list):
        raise InvalidOptionError("canary and shadow must be lists of candidates")
    models = []
    for entry in [*canary, *shadow]:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("model"), str)
            or not (
                isinstance(entry.get("version"), int) and not isinstance(entry["version"], bool)
            )
        ):
            raise InvalidOptionError(f"a candidate must be {{model, version}}, not {entry!r}")
    for entry in canary:
        share = entry.get("share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            raise InvalidOptionError(
                f"{flag}: the share must be a number between 0 and 1 (exclusive), e.g. 0.1"
            )
        models.append(entry["model"])
    if len(set(models)) < len(models):
        raise InvalidOptionError(f"{flag}: one canary per model")
