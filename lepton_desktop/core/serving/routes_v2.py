"""KServe V2 / Open Inference Protocol routes (and Triton's repository index).

``/v2/models/NAME@ALIAS/...`` is the same as ``/v2/models/NAME/versions/ALIAS/...``.
The request and response shapes are in :mod:`.protocols_v2`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lepton_desktop import __version__
from lepton_desktop.core.inference.predictor import InvalidInputError, parse_json
from lepton_desktop.core.serving import protocols_v2 as v2
from lepton_desktop.core.serving.answers import Answer, ok
from lepton_desktop.core.serving.router import Route, route

if TYPE_CHECKING:
    import numpy as np

    from lepton_desktop.core.inference.predictor import Predictor
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.state import ServerState

MODEL = "/v2/models/{model_name}"
VERSIONED = MODEL + "/versions/{model_version}"


@route("GET", "/v2", "v2", "Server metadata", answer="ServerMetadata")
async def server_metadata(state: ServerState, ctx: RequestContext) -> Answer:
    return ok({"name": "lepton-desktop", "version": __version__,
               "extensions": ["binary_tensor_data", "model_repository"]})  # fmt: skip


@route("GET", "/v2/health/live", "v2", "Liveness", answer="Live")
async def live(state: ServerState, ctx: RequestContext) -> Answer:
    return ok({"live": True})


@route("GET", "/v2/health/ready", "v2", "Readiness: every model is loaded", answer="Ready")
async def ready(state: ServerState, ctx: RequestContext) -> Answer:
    loaded = bool(state.models.models)
    return ok({"ready": loaded}, 200 if loaded else 503)


@route("POST", "/v2/repository/index", "v2",
       "The served models and versions (Triton's model repository index)",
       body="RepositoryIndexRequest", answer="RepositoryIndex")  # fmt: skip
async def repository_index(state: ServerState, ctx: RequestContext) -> Answer:
    _check_index_request(ctx.body)
    # Triton's {"ready": true} lists only ready models: every model served here is.
    return ok([
        {"name": model.name, "version": str(number), "state": "READY", "reason": ""}
        for model in state.models.models.values()
        for number in sorted(model.versions)
    ])  # fmt: skip


def _check_index_request(body: bytes) -> None:
    if not body.strip():
        return
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise InvalidInputError('send {"ready": true} or an empty body')
    ready = payload.get("ready")
    if ready is not None and not isinstance(ready, bool):
        raise InvalidInputError('"ready" must be true or false')


def _predictor(state: ServerState, ctx: RequestContext) -> Predictor:
    name, version = ctx.params["model_name"], ctx.params.get("model_version")
    if version is None and "@" in name:
        name, version = name.split("@", 1)
    return state.models.get(name, version)


async def metadata(state: ServerState, ctx: RequestContext) -> Answer:
    predictor = _predictor(state, ctx)
    served = state.models.models.get(predictor.name)
    pinned = ctx.params.get("model_version") is not None or "@" in ctx.params["model_name"]
    shown = [predictor.version] if pinned or served is None else sorted(served.versions)
    return ok(v2.model_metadata(predictor, shown))


async def model_ready(state: ServerState, ctx: RequestContext) -> Answer:
    _predictor(state, ctx)  # 404 when not served
    return ok({"name": ctx.params["model_name"], "ready": True})


async def infer(state: ServerState, ctx: RequestContext) -> Answer:
    predictor = _predictor(state, ctx)
    ctx.model, ctx.version = predictor.name, predictor.version
    header_length = ctx.header(b"inference-header-content-length")
    parsed = v2.parse_infer(ctx.body, None if header_length is None else header_length.decode())
    x, records = v2.model_inputs(predictor, parsed.inputs)
    outputs = await state.forward(predictor, x)
    body, extra = v2.infer_response(
        predictor, parsed, v2.output_arrays(predictor, outputs), ctx.request_id
    )
    ctx.answered(predictor.name, predictor.version, len(x),
                 records if records is not None else x, _Decoded(predictor, outputs))  # fmt: skip
    state.remember(ctx.request_id, len(x))
    media = extra.pop("content-type")
    return Answer(200, body, media, extra or None)


class _Decoded:
    """Outputs the log writer decodes later (off the request path)."""

    __slots__ = ("outputs", "predictor")

    def __init__(self, predictor: Predictor, outputs: np.ndarray) -> None:
        self.predictor = predictor
        self.outputs = outputs

    def __call__(self) -> list[dict[str, Any]]:
        return self.predictor.decode(self.outputs)


def _model_routes() -> list[Route]:
    routes = []
    for path in (MODEL, VERSIONED):
        routes += [
            Route("GET", path, metadata, "v2", "Model metadata: inputs, outputs, versions",
                  answer="ModelMetadata"),
            Route("GET", path + "/ready", model_ready, "v2", "Model readiness",
                  answer="ModelReady"),
            Route("POST", path + "/infer", infer, "v2",
                  "Inference (JSON or Triton binary tensors)", body="V2InferRequest",
                  extra_media=("application/octet-stream",), answer="InferResponse",
                  media=("application/json", "application/octet-stream")),
        ]  # fmt: skip
    return routes


ROUTES = [server_metadata, live, ready, repository_index, *_model_routes()]
