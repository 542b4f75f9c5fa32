"""What the server answers, as JSON Schema: the responses of the OpenAPI document.

Each route names its answer's schema (``Route.answer``); every operation documents the
statuses the guard can give it (:data:`ERROR_STATUSES`) with the error shape, and the
``X-Request-ID`` header every answer carries. Clients generated from the document, and
fuzzers checking that answers conform to it (tests/faults), rely on these.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_OBJECT = {"type": "object"}
_TENSOR_SPEC = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {"name": _STRING, "datatype": _STRING,
                   "shape": {"type": "array", "items": {"type": "integer"}}},
}  # fmt: skip


def _object(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": required | optional}


# fmt: off
#: The 200 answers' schemas, by the name a route gives in ``Route.answer``.
ANSWERS: dict[str, dict[str, Any]] = {
    "ServerMetadata": _object({"name": _STRING, "version": _STRING, "extensions": _STRINGS}),
    "Live": _object({"live": {"type": "boolean"}}),
    "Ready": _object({"ready": {"type": "boolean"}}),
    "RepositoryIndex": {
        "type": "array",
        "items": _object({"name": _STRING, "version": _STRING, "state": _STRING,
                          "reason": _STRING}),
    },
    "ModelMetadata": _object({
        "name": _STRING, "versions": _STRINGS, "platform": _STRING,
        "inputs": {"type": "array", "items": _TENSOR_SPEC},
        "outputs": {"type": "array", "items": _TENSOR_SPEC},
    }, parameters=_OBJECT),
    "ModelReady": _object({"name": _STRING, "ready": {"type": "boolean"}}),
    "InferResponse": _object({
        "model_name": _STRING, "model_version": _STRING, "id": _STRING,
        "outputs": {"type": "array", "items": _TENSOR_SPEC},
    }),
    "Predictions": _object({
        "request_id": _STRING, "model": _STRING,
        "predictions": {"type": "array", "items": _OBJECT},
    }),
    "Explanations": _object({
        "request_id": _STRING, "model": _STRING, "method": _STRING,
        "predictions": {"type": "array", "items": _OBJECT},
        "explanations": {"type": "array", "items": _object({
            "method": _STRING, "baseline": _STRING, "target": _STRING,
            "output": {"type": "number"}, "total": {"type": "number"},
        }, features={"type": "array", "items": _OBJECT}, heatmap={"type": "array"},
            steps={"type": "array", "items": _OBJECT})},
    }),
    "FeedbackStored": _object({"request_id": _STRING, "row": {"type": "integer"},
                               "stored": {"type": "boolean"}}),
    "Models": _object({"models": {"type": "array", "items": _OBJECT}}),
    "Invocations": _object({"predictions": {"type": "array"}}),
    "Error": _object({"error": _STRING}),
    "MlflowError": _object({"error_code": _STRING, "message": _STRING}),
}
# fmt: on

#: What the guard may answer any route with, besides 200 (and 401 where a token is due).
ERROR_STATUSES = {
    "400": "a client's mistake, named in the message",
    "404": "not served here",
    "408": "the body did not arrive in time",
    "413": "the body is larger than the server's limit",
    "504": "no answer within the server's time limit",
}
#: The header every answer carries.
REQUEST_ID = {
    "X-Request-ID": {
        "description": "the request's id (give it to /feedback)",
        "required": True,
        "schema": _STRING,
    }
}


def responses(
    media: tuple[str, ...], answer: str | None, *, mlflow: bool, secured: bool, ready: bool
) -> dict[str, Any]:
    """The ``responses`` of one operation.

    Args:
        media: the 200 answer's media types.
        answer: the name of its JSON schema in :data:`ANSWERS`, if it has one.
        mlflow: errors have MLflow's shape (``/invocations``).
        secured: the operation needs the bearer token on this server (401 otherwise).
        ready: the readiness probe (503 while nothing is loaded).
    """
    content = {
        kind: {"schema": _ref(answer)} if kind == "application/json" and answer else {}
        for kind in media
    }
    found: dict[str, Any] = {
        "200": {"description": "the answer", "headers": REQUEST_ID, "content": content}
    }
    failed = {"application/json": {"schema": _ref("MlflowError" if mlflow else "Error")}}
    statuses = dict(ERROR_STATUSES)
    if secured:
        statuses["401"] = "missing or wrong bearer token"
    for status, description in sorted(statuses.items()):
        found[status] = {"description": description, "headers": REQUEST_ID, "content": failed}
    if ready:
        found["503"] = {"description": "not ready: no model is loaded", "headers": REQUEST_ID,
                        "content": {"application/json": {"schema": _ref("Ready")}}}  # fmt: skip
    return found


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}
