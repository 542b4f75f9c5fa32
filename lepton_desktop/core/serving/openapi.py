"""The OpenAPI document (``/openapi.json``, ``/docs``), made from the route table.

Each :class:`~.router.Route` says its method, path, tag, summary and body; the bodies
are pydantic models here, used for the document only: the handlers parse bodies with
orjson themselves (pydantic validation would cost more than the model's forward pass
on the hot path). The document is narrowed to what the server really serves (model
names, versions, feature columns), so that generated clients and fuzzers send
meaningful requests; it is rebuilt when the served models change. Every answer a route
can give (200 and the guard's errors, with their schemas and the X-Request-ID header)
is described too (:mod:`.openapi_answers`), so a fuzzer can check that answers conform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from lepton_desktop import __version__
from lepton_desktop.core.serving.answers import Answer, text
from lepton_desktop.core.serving.openapi_answers import ANSWERS, responses
from lepton_desktop.core.serving.router import Route, route
from lepton_desktop.core.serving.security import OPEN_PATHS

if TYPE_CHECKING:
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.models import ModelSet
    from lepton_desktop.core.serving.state import ServerState

TITLE = "Lepton Desktop model server"
DESCRIPTION = (
    "KServe V2 (with Triton's binary tensors and repository index), MLflow scoring and "
    "native routes for the models of a Lepton project or bundle."
)

Scalar = float | int | str | bool | None


class PredictRequest(BaseModel):
    """``POST /predict``: raw feature records, as the dataset had them (or a bare list)."""

    model: str | None = Field(
        None, description="NAME, NAME:VERSION or NAME@ALIAS; optional when one model is served"
    )
    records: list[dict[str, Scalar | list[float]]] = Field(
        min_length=1, description="column -> value; images as base64, series as a list"
    )


class ExplainRequest(PredictRequest):
    """``POST /explain``: records as for ``/predict``, and the attribution method."""

    records: list[dict[str, Scalar | list[float]]] = Field(
        min_length=1,
        max_length=16,
        description="column -> value; images as base64, series as a list",
    )
    method: Literal["ig", "gradcam", "occlusion"] = Field(
        "ig", description="Integrated Gradients, Grad-CAM (image models) or occlusion"
    )


class FeedbackRequest(BaseModel):
    """``POST /feedback``: the true label of one answered row, for live accuracy."""

    request_id: str = Field(description="the X-Request-ID of the answered request")
    label: float | int | str | bool = Field(description="the true label (or value)")
    row: int = Field(0, ge=0, description="which row of that request (0-based)")


class V2Tensor(BaseModel):
    """One input tensor (KServe V2)."""

    name: str
    shape: list[int]
    datatype: Literal[
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BYTES",
    ]  # fmt: skip
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(BaseModel):
    """An output the client asks for (``parameters.binary_data``: as raw bytes)."""

    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    """``POST /v2/models/NAME[/versions/V]/infer`` (JSON part of a binary request)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor] = Field(min_length=1)
    outputs: list[V2RequestedOutput] | None = None


class DataframeSplit(BaseModel):
    """pandas ``to_dict(orient="split")``."""

    columns: list[str]
    data: list[list[Scalar]]
    index: list[Any] | None = None


class InvocationsRequest(BaseModel):
    """``POST /invocations`` (MLflow): exactly one of the four input keys."""

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Scalar]] | None = None
    instances: list[Any] | dict[str, Any] | None = None
    inputs: list[Any] | dict[str, Any] | None = None
    params: dict[str, Any] | None = Field(
        None, description='{"probabilities": true}: labels with class probabilities'
    )


class RepositoryIndexRequest(BaseModel):
    """``POST /v2/repository/index`` (Triton): an empty body or ``{"ready": true}``."""

    ready: bool | None = Field(None, description="list only ready models (all are)")


BODIES: dict[str, type[BaseModel]] = {
    "PredictRequest": PredictRequest,
    "ExplainRequest": ExplainRequest,
    "FeedbackRequest": FeedbackRequest,
    "V2InferRequest": V2InferRequest,
    "InvocationsRequest": InvocationsRequest,
    "RepositoryIndexRequest": RepositoryIndexRequest,
}
#: Media types whose body is not described by a schema of its own.
_PLAIN_MEDIA = {
    "text/csv": {"type": "string"},
    "application/octet-stream": {"type": "string", "format": "binary"},
}


def document(
    routes: Sequence[Route], models: ModelSet, *, secured: bool = False
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``, narrowed to the served models.

    ``secured``: the server has a token; the operations that need it say so (a bearer
    security requirement and a 401 answer).
    """
    paths: dict[str, dict[str, Any]] = {}
    for item in routes:
        if not item.hidden:
            paths.setdefault(item.path, {})[item.method.lower()] = _operation(item, secured)
    _, definitions = models_json_schema(
        [(m, "validation") for m in BODIES.values()],
        ref_template="#/components/schemas/{model}",
    )
    schema: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}) | ANSWERS},
    }
    if secured:
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    _narrow(schema, models)
    return schema


def _operation(item: Route, secured: bool) -> dict[str, Any]:
    secured = secured and item.path not in OPEN_PATHS
    operation: dict[str, Any] = {
        "tags": [item.tag],
        "summary": item.summary,
        "operationId": f"{item.handler.__name__}_{item.method.lower()}_"
        + item.path.strip("/").replace("/", "_").replace("{", "").replace("}", ""),
        "responses": responses(item.media, item.answer, mlflow=item.path == "/invocations",
                               secured=secured, ready=item.path == "/v2/health/ready"),
    }  # fmt: skip
    if secured:
        operation["security"] = [{"bearer": []}]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in item.params
    ] + [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in item.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if item.body is not None:
        content: dict[str, Any] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{item.body}"}}
        }
        for media in item.extra_media:
            content[media] = {"schema": _PLAIN_MEDIA[media]}
        operation["requestBody"] = {"required": item.method == "POST", "content": content}
    return operation


def _narrow(schema: dict[str, Any], models: ModelSet) -> None:
    schemas = schema["components"]["schemas"]
    names = sorted(models.models)
    versions = sorted(
        {str(v) for m in models.models.values() for v in m.versions}
        | {a for m in models.models.values() for a in m.aliases}
    )
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "model_name" and names:
                    parameter["schema"] = {"type": "string", "enum": names}
                elif parameter.get("name") == "model" and names:  # NAME or NAME:VERSION
                    refs = names + [f"{n}:{v}" for n in names for v in models.models[n].versions]
                    parameter["schema"] = {"type": "string", "enum": refs}
                elif parameter.get("name") == "model_version" and versions:
                    parameter["schema"] = {"type": "string", "enum": versions}
    _describe_columns(schemas, models)


def _describe_columns(schemas: dict[str, Any], models: ModelSet) -> None:
    # The union of the served models' raw columns, so /predict's records are documented.
    columns: dict[str, Any] = {}
    for model in models.models.values():
        for predictor in model.versions.values():
            for raw in predictor.raw_inputs:
                columns.setdefault(raw["name"], _column_schema(raw["dtype"]))
    for body in ("PredictRequest", "ExplainRequest"):
        record = schemas.get(body, {}).get("properties", {}).get("records", {})
        if columns and isinstance(record.get("items"), dict):
            record["items"] = {**record["items"], "properties": columns}


def _column_schema(dtype: str) -> dict[str, Any]:
    if dtype == "numeric":
        return {"type": "number"}
    if dtype == "series":
        return {"type": "array", "items": {"type": "number"}}
    return {"type": "string"}


# -- the document's own routes --------------------------------------------------------------


class DocumentCache:
    """The document, rebuilt only when the served models change (their generation)."""

    def __init__(self, routes: Sequence[Route], *, secured: bool = False) -> None:
        self.routes = routes
        self.secured = secured
        self._built: tuple[int, bytes] | None = None

    def body(self, models: ModelSet) -> bytes:
        """The document as JSON bytes."""
        if self._built is None or self._built[0] != models.generation:
            built = document(self.routes, models, secured=self.secured)
            self._built = (models.generation, orjson.dumps(built))
        return self._built[1]


@route("GET", "/openapi.json", "docs", "This document", hidden=True)
async def openapi_json(state: ServerState, ctx: RequestContext) -> Answer:
    return text(state.openapi.body(state.models), "application/json")


@route("GET", "/docs", "docs", "Swagger UI", hidden=True)
async def docs(state: ServerState, ctx: RequestContext) -> Answer:
    from fastapi.openapi.docs import get_swagger_ui_html

    page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - docs")
    return text(bytes(page.body), "text/html; charset=utf-8")


ROUTES = [openapi_json, docs]
