"""Answers as plain data, and the mapping of a client's mistakes to HTTP statuses."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.serving import protocols_mlflow as mlflow

JSON = "application/json"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclasses.dataclass(slots=True)
class Answer:
    """A response: status, body, media type and extra headers (lower-case names)."""

    status: int
    body: bytes
    media: str = JSON
    headers: dict[str, str] | None = None


def ok(payload: Any, status: int = 200) -> Answer:
    """An orjson-encoded JSON answer (numpy arrays allowed)."""
    return Answer(status, orjson.dumps(payload, option=_NUMPY))


def text(body: bytes, media: str, status: int = 200) -> Answer:
    """A non-JSON answer (Prometheus text, HTML, a version string)."""
    return Answer(status, body, media)


def error(path: str, status: int, message: str) -> Answer:
    """An error answer: MLflow's shape on ``/invocations``, ``{"error": ...}`` elsewhere."""
    if path == "/invocations":
        code = "RESOURCE_DOES_NOT_EXIST" if status == 404 else "BAD_REQUEST"
        return Answer(status, mlflow.error_body(message, code))
    return Answer(status, orjson.dumps({"error": message}))


def client_error_status(exc: Exception) -> int:
    """The HTTP status of a client's mistake: 404 for what is not served, else 400."""
    return 404 if isinstance(exc, NotFoundError) else 400
