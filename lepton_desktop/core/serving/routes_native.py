"""Lepton's own routes: ``/predict`` (raw records), ``/feedback``, ``/models``, ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.inference.predictor import InvalidInputError, parse_json
from lepton_desktop.core.serving import protocols_v2 as v2
from lepton_desktop.core.serving.answers import Answer, ok, text
from lepton_desktop.core.serving.metrics import CONTENT_TYPE
from lepton_desktop.core.serving.router import route

if TYPE_CHECKING:
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.journal import RequestJournal
    from lepton_desktop.core.serving.models import ModelSet
    from lepton_desktop.core.serving.state import ServerState


@route("POST", "/predict", "native", "Raw feature records in, labels or values out",
       body="PredictRequest", answer="Predictions")  # fmt: skip
async def predict(state: ServerState, ctx: RequestContext) -> Answer:
    ref, records = predict_payload(parse_json(ctx.body))
    predictor = state.models.get_ref(ref)
    ctx.model, ctx.version = predictor.name, predictor.version
    x = predictor.encode(records)
    answers = predictor.decode(await state.forward(predictor, x))
    ctx.answered(predictor.name, predictor.version, len(answers), records, answers)
    state.remember(ctx.request_id, len(answers))
    return ok({"request_id": ctx.request_id, "model": predictor.parts.ref,
               "predictions": answers})  # fmt: skip


def predict_payload(payload: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """``{"model": REF, "records": [...]}`` (or a bare list) -> ``(ref, records)``.

    Raises:
        InvalidInputError: anything else, with the shape to send.
    """
    ref = None
    if isinstance(payload, dict):
        ref = payload.get("model")
        if ref is not None and not isinstance(ref, str):
            raise InvalidInputError('"model" must be a string like NAME, NAME:2 or NAME@ALIAS')
        payload = payload.get("records")
    if not isinstance(payload, list) or not payload:
        raise InvalidInputError(
            'send {"records": [{column: value, ...}, ...]} or a list of records'
        )
    return ref, payload


@route("POST", "/feedback", "native", "The true label of an answered row (for live accuracy)",
       body="FeedbackRequest", answer="FeedbackStored")  # fmt: skip
async def feedback(state: ServerState, ctx: RequestContext) -> Answer:
    request_id, label, row = _feedback_payload(parse_json(ctx.body))
    rows = state.rows_of(request_id)
    if rows is None and state.log is not None:
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(None, _logged_rows, state.log, request_id)
    if rows is None:
        raise NotFoundError(f"no answered request with id {request_id!r}")
    if row >= rows:
        raise InvalidInputError(f"request {request_id} had {rows} rows; row {row} is not one")
    if state.log is not None:
        state.log.feedback(request_id, label, row)
    return ok({"request_id": request_id, "row": row, "stored": state.log is not None})


def _feedback_payload(payload: Any) -> tuple[str, Any, int]:
    if not isinstance(payload, dict):
        raise InvalidInputError('send {"request_id": ..., "label": ..., "row": 0}')
    request_id, label, row = payload.get("request_id"), payload.get("label"), payload.get("row", 0)
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInputError('"request_id" must be the X-Request-ID of an answer')
    if label is None or isinstance(label, dict | list):
        raise InvalidInputError('"label" must be the true label or value')
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise InvalidInputError('"row" must be a row number >= 0')
    return request_id, label, row


def _logged_rows(journal: RequestJournal, request_id: str) -> int | None:
    # Another server process may have answered it: look in the project, after the
    # supervisor had time to ship that process's journal.
    from lepton_desktop.core.store import serving as serving_store
    from lepton_desktop.core.store.db import connect

    conn = connect(journal.project, readonly=True)
    try:
        for attempt in range(2):
            record = serving_store.find_request(conn, request_id)
            if record is not None and record.status == 200:
                return record.n_rows
            if attempt == 0:
                time.sleep(0.6)
    finally:
        conn.close()
    return None


@route("GET", "/models", "native", "The served models and their versions", answer="Models")
async def list_models(state: ServerState, ctx: RequestContext) -> Answer:
    return ok({"models": model_list(state.models)})


def model_list(models: ModelSet) -> list[dict[str, Any]]:
    """Every served model: default version, aliases, and each version's inputs/outputs."""
    return [
        {
            "name": model.name,
            "default_version": model.default,
            "aliases": dict(model.aliases),
            "versions": [
                {
                    "version": number,
                    "task": predictor.task,
                    "inputs": predictor.raw_inputs,
                    "outputs": v2.output_specs(predictor),
                    "classes": predictor.classes,
                }
                for number, predictor in sorted(model.versions.items())
            ],
        }
        for model in models.models.values()
    ]


@route("GET", "/metrics", "native", "Prometheus metrics", media=("text/plain",))
async def metrics(state: ServerState, ctx: RequestContext) -> Answer:
    return text(state.metrics.render(), CONTENT_TYPE)


ROUTES = [predict, feedback, list_models, metrics]
