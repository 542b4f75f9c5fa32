"""The request bodies as pydantic models: for the OpenAPI document only.

The handlers parse bodies with orjson themselves (pydantic validation would cost more
than the model's forward pass on the hot path), so these models describe what the
handlers accept; :func:`customize_openapi` puts them into the schema, and narrows it
to what the server really serves (model names, versions, feature columns) so that
generated clients and fuzzers send meaningful requests.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from lepton_desktop.core.serving.models import ModelSet

Scalar = float | int | str | bool | None


class PredictRequest(BaseModel):
    """``POST /predict``: raw feature records, as the dataset had them (or a bare list)."""

    model: str | None = Field(
        None, description="NAME, NAME:VERSION or NAME@ALIAS; optional when one model is served"
    )
    records: list[dict[str, Scalar | list[float]]] = Field(
        min_length=1, description="column -> value; images as base64, series as a list"
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


BODIES: dict[str, type[BaseModel]] = {
    "PredictRequest": PredictRequest,
    "FeedbackRequest": FeedbackRequest,
    "V2InferRequest": V2InferRequest,
    "InvocationsRequest": InvocationsRequest,
}


def json_body(model: str, *, csv: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring a route's request body as one of :data:`BODIES`."""
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}
    }
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"requestBody": {"required": True, "content": content}}


def customize_openapi(schema: dict[str, Any], models: ModelSet) -> dict[str, Any]:
    """Add the body models and narrow names, versions and columns to the served ones."""
    _, definitions = models_json_schema(
        [(m, "validation") for m in BODIES.values()],
        ref_template="#/components/schemas/{model}",
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(definitions.get("$defs", {}))
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
                elif parameter.get("name") == "model_version" and versions:
                    parameter["schema"] = {"type": "string", "enum": versions}
    _describe_columns(schemas, models)
    return schema


def _describe_columns(schemas: dict[str, Any], models: ModelSet) -> None:
    # The union of the served models' raw columns, so /predict's records are documented.
    columns: dict[str, Any] = {}
    for model in models.models.values():
        for predictor in model.versions.values():
            for raw in predictor.raw_inputs:
                columns.setdefault(raw["name"], _column_schema(raw["dtype"]))
    record = schemas.get("PredictRequest", {}).get("properties", {}).get("records", {})
    if columns and isinstance(record.get("items"), dict):
        record["items"] = {**record["items"], "properties": columns}


def _column_schema(dtype: str) -> dict[str, Any]:
    if dtype == "numeric":
        return {"type": "number"}
    if dtype == "series":
        return {"type": "array", "items": {"type": "number"}}
    return {"type": "string"}
