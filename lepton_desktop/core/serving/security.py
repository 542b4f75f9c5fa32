"""Who may call the server: bearer tokens, and which paths stay open without one."""

from __future__ import annotations

import hmac

#: Liveness and readiness probes answer without a token (load balancers call them).
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})


def bearer_ok(authorization: bytes | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer TOKEN`` (constant-time)."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given.strip(), token.encode("utf-8"))


def needs_token(path: str, method: str, token: str | None, cors: bool) -> bool:
    """Whether a request must show the token (CORS preflights cannot carry one)."""
    if token is None or path in OPEN_PATHS:
        return False
    return not (cors and method == "OPTIONS")
