"""``POST /explain``: the same records as ``/predict``, answered with why.

The attributions run in a thread of the server process (Captum is torch work: the
event loop keeps answering ``/predict`` meanwhile), on the same loaded
:class:`~lepton_desktop.core.inference.predictor.Predictor` as ``/predict``, never
batched with it. Each served version gets one
:class:`~lepton_desktop.core.explain.Explainer`, made on first use: a table's baseline
is its training mean, read once from the project the server serves (a bundle has no
training data: zeros, and the answer says so).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.inference.predictor import InvalidInputError, parse_json
from lepton_desktop.core.serving.answers import Answer, ok
from lepton_desktop.core.serving.router import route
from lepton_desktop.core.serving.routes_native import predict_payload

if TYPE_CHECKING:
    from pathlib import Path

    from lepton_desktop.core.explain import Explainer
    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.state import ServerState

#: Records one /explain request may carry (each costs some 50 forward and backward passes).
MAX_EXPLAINED = 16

_explainers: weakref.WeakKeyDictionary[Predictor, Explainer] = weakref.WeakKeyDictionary()
_making = threading.Lock()


@route("POST", "/explain", "native", "Raw records in: the predictions and why (attributions)",
       body="ExplainRequest", answer="Explanations")  # fmt: skip
async def explain(state: ServerState, ctx: RequestContext) -> Answer:
    payload = parse_json(ctx.body)
    method = payload.get("method", "ig") if isinstance(payload, dict) else "ig"
    ref, records = predict_payload(payload)
    if len(records) > MAX_EXPLAINED:
        raise InvalidInputError(
            f"{len(records)} records: /explain explains at most {MAX_EXPLAINED} per request"
        )
    predictor = state.models.get_ref(ref)
    ctx.model, ctx.version = predictor.name, predictor.version
    # Imported on the first /explain: the server's cold start never loads Captum.
    from lepton_desktop.core.explain.methods import check_method

    method = check_method(method, predictor.kind)
    project = state.models.project_path
    loop = asyncio.get_running_loop()
    explanations = await loop.run_in_executor(
        None, _explain_all, predictor, project, records, method
    )
    answers = [e.prediction for e in explanations]
    ctx.answered(predictor.name, predictor.version, len(answers), records, answers)
    state.remember(ctx.request_id, len(answers))
    return ok({"request_id": ctx.request_id, "model": predictor.parts.ref, "method": method,
               "predictions": answers,
               "explanations": [e.to_dict() for e in explanations]})  # fmt: skip


def _explain_all(
    predictor: Predictor, project: Path | None, records: list[Any], method: str
) -> list[Any]:
    explainer = _explainer(predictor, project)
    return [explainer.explain(record, method) for record in records]


def _explainer(predictor: Predictor, project: Path | None) -> Explainer:
    from lepton_desktop.core.explain import Explainer

    with _making:
        explainer = _explainers.get(predictor)
        if explainer is None:
            explainer = Explainer.with_training_rows(predictor, _training(predictor, project))
            _explainers[predictor] = explainer
        return explainer


def _training(predictor: Predictor, project: Path | None) -> list[dict[str, Any]]:
    if project is None or predictor.kind != "tabular":
        return []
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.errors import LeptonError
    from lepton_desktop.core.explain.data import load_rows
    from lepton_desktop.core.store import models as model_store
    from lepton_desktop.core.store.db import connect

    conn = connect(project, readonly=True)
    try:
        ctx = ProjectContext(project, conn)
        version = model_store.resolve(conn, predictor.parts.ref)
        return load_rows(ctx, version).train_records
    except LeptonError:
        return []  # the baseline falls back to zeros, and says so
    finally:
        conn.close()


ROUTES = [explain]
