"""Who may call the server: bearer tokens, and which paths stay open without one.

The token itself is never stored: the deployment keeps its SHA-256 digest
(:func:`token_digest`), and a request's bearer is digested and compared with it in
constant time, so a project file that travels does not carry a way into the server.
"""

from __future__ import annotations

import hashlib
import hmac

DIGEST_PREFIX = "sha256:"

#: Liveness and readiness probes answer without a token (load balancers call them).
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})


def token_digest(token: str | bytes) -> str:
    """What is stored of a token: ``sha256:`` and its hex digest (a digest stays as is)."""
    if isinstance(token, str):
        if token.startswith(DIGEST_PREFIX):
            return token
        token = token.encode("utf-8")
    return DIGEST_PREFIX + hashlib.sha256(token).hexdigest()


def bearer_ok(authorization: bytes | None, digest: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer TOKEN`` whose digest is
    ``digest`` (compared in constant time)."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(token_digest(given.strip()), digest)


def needs_token(path: str, method: str, token: str | None, cors: bool) -> bool:
    """Whether a request must show the token (CORS preflights cannot carry one)."""
    if token is None or path in OPEN_PATHS:
        return False
    return not (cors and method == "OPTIONS")
