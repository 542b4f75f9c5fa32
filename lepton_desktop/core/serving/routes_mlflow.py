"""MLflow's scoring protocol: ``/ping``, ``/health``, ``/version``, ``/invocations``.

The request and response shapes are in :mod:`.protocols_mlflow`; ``?model=REF`` picks
a model when several are served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.datastructures import QueryParams

from lepton_desktop import __version__
from lepton_desktop.core.serving import protocols_mlflow as mlflow
from lepton_desktop.core.serving.answers import Answer, ok, text
from lepton_desktop.core.serving.router import route

if TYPE_CHECKING:
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.state import ServerState


@route("GET", "/ping", "mlflow", "Liveness (MLflow)")  # a bare newline, as MLflow answers
async def ping(state: ServerState, ctx: RequestContext) -> Answer:
    return text(b"\n", "application/json")


@route("GET", "/health", "mlflow", "Liveness (MLflow)")
async def health(state: ServerState, ctx: RequestContext) -> Answer:
    return text(b"\n", "application/json")


@route("GET", "/version", "mlflow", "Server version", media=("text/plain",))
async def version(state: ServerState, ctx: RequestContext) -> Answer:
    return text(__version__.encode(), "text/plain")


@route("POST", "/invocations", "mlflow",
       "Score records or features (MLflow's scoring protocol)",
       body="InvocationsRequest", extra_media=("text/csv",), answer="Invocations",
       query=("model",))  # fmt: skip
async def invocations(state: ServerState, ctx: RequestContext) -> Answer:
    parsed = mlflow.parse_invocation(ctx.body, ctx.header_text(b"content-type"))
    ref = QueryParams(ctx.query).get("model") if ctx.query else None
    predictor = state.models.get_ref(ref)
    ctx.model, ctx.version = predictor.name, predictor.version
    x = parsed.model_inputs(predictor)
    answers = predictor.decode(await state.forward(predictor, x))
    logged = parsed.records if parsed.records is not None else x
    ctx.answered(predictor.name, predictor.version, len(answers), logged, answers)
    state.remember(ctx.request_id, len(answers))
    return ok({"predictions": mlflow.predictions(answers, parsed.probabilities)})


ROUTES = [ping, health, version, invocations]
