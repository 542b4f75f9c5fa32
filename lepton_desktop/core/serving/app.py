"""The server's ASGI app: KServe V2, MLflow scoring and native routes on one port.

:func:`create_app` wraps a FastAPI app (routes, OpenAPI, ``/docs``) in
:class:`Guard`, a plain ASGI layer that every request passes once: it gives the
request its id (``X-Request-ID`` on every answer), checks the token, bounds the body
size (413) and the time (504), answers 500 only for a real bug, and, after the
answer, counts it in the metrics and queues its row for the request log.

Handlers parse bodies with orjson (not pydantic) and answer with orjson-encoded
bytes; inference goes through one :class:`~.batching.Batcher` per model version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from lepton_desktop import __version__
from lepton_desktop.core.errors import LeptonError, NotFoundError
from lepton_desktop.core.inference.predictor import InvalidInputError, Predictor, parse_json
from lepton_desktop.core.serving import protocols_mlflow as mlflow
from lepton_desktop.core.serving import protocols_v2 as v2
from lepton_desktop.core.serving.batching import Batcher
from lepton_desktop.core.serving.logwriter import RequestLogWriter
from lepton_desktop.core.serving.manager import DEFAULT_OPTIONS
from lepton_desktop.core.serving.metrics import CONTENT_TYPE, Metrics
from lepton_desktop.core.serving.models import ModelSet
from lepton_desktop.core.serving.schemas import customize_openapi, json_body
from lepton_desktop.core.serving.security import bearer_ok, needs_token

log = logging.getLogger(__name__)

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]
_JSON = "application/json"
#: Request ids remembered for /feedback before the log writer has stored them.
_RECENT_REQUESTS = 100_000


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How the server behaves (the deployment's ``options`` plus its token)."""

    token: str | None = None
    cors: tuple[str, ...] = ()
    capture_inputs: bool = DEFAULT_OPTIONS["capture_inputs"]
    max_batch: int = DEFAULT_OPTIONS["max_batch"]
    max_wait_ms: float = DEFAULT_OPTIONS["max_wait_ms"]
    max_body_bytes: int = DEFAULT_OPTIONS["max_body_bytes"]
    timeout_s: float = DEFAULT_OPTIONS["timeout_s"]

    @classmethod
    def from_options(cls, options: Mapping[str, Any], token: str | None = None) -> ServeOptions:
        """From a deployment's options (unknown keys, such as ``workers``, are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"token", "cors"}
        values = {k: v for k, v in options.items() if k in known}
        return cls(token=token, cors=tuple(options.get("cors") or ()), **values)


class ServerState:
    """What the handlers share: models, options, batchers, metrics, the log writer."""

    def __init__(
        self, models: ModelSet, options: ServeOptions, log_writer: RequestLogWriter | None
    ) -> None:
        self.models = models
        self.options = options
        self.log = log_writer
        self.metrics = Metrics()
        self._batchers: dict[Predictor, Batcher] = {}
        self._generation = models.generation
        self._recent: OrderedDict[str, int] = OrderedDict()
        self.served = 0

    def batcher(self, predictor: Predictor) -> Batcher:
        """The batcher of a model version (made on first use, dropped after a swap)."""
        if self._generation != self.models.generation:
            live = {p for m in self.models.models.values() for p in m.versions.values()}
            self._batchers = {p: b for p, b in self._batchers.items() if p in live}
            self._generation = self.models.generation
        batcher = self._batchers.get(predictor)
        if batcher is None:
            name, version = predictor.name, str(predictor.version)

            def on_batch(rows: int, requests: int) -> None:
                self.metrics.observe_batch(name, version, rows, requests)

            batcher = Batcher(
                predictor.forward,
                max_batch=self.options.max_batch,
                max_wait_s=self.options.max_wait_ms / 1000,
                on_batch=on_batch,
            )
            self._batchers[predictor] = batcher
        return batcher

    async def forward(self, predictor: Predictor, x: np.ndarray) -> np.ndarray:
        """Raw outputs for ``x``, batched with concurrent requests to the same version."""
        return await self.batcher(predictor).run(x)

    def remember(self, request_id: str, rows: int) -> None:
        """Keep an answered request's id (for feedback before the log is written)."""
        self._recent[request_id] = rows
        if len(self._recent) > _RECENT_REQUESTS:
            self._recent.popitem(last=False)

    def rows_of(self, request_id: str) -> int | None:
        """How many rows an answered request had, or None if unknown here."""
        return self._recent.get(request_id)


# -- the guard: one pass per request --------------------------------------------------


def _protocol(path: str) -> str:
    if path.startswith("/v2"):
        return "v2"
    if path in ("/invocations", "/ping", "/health", "/version"):
        return "mlflow"
    if path == "/predict":
        return "predict"
    if path == "/feedback":
        return "feedback"
    return "other"


class Guard:
    """Request id, token, body and time limits, metrics and the request log (see module)."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = uuid.uuid4().hex
        ctx: dict[str, Any] = {"rid": rid, "status": 500, "started": False}
        scope["lepton"] = ctx
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                ctx["status"] = message["status"]
                ctx["started"] = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            await self._handle(scope, receive, send_with_id, ctx)
        except Exception as exc:  # a bug: log it, answer 500, keep serving
            log.exception("request %s %s failed", scope.get("method"), scope.get("path"))
            ctx["error"] = f"internal error: {type(exc).__name__}"
            if not ctx["started"]:
                await _send_json(send_with_id, 500, {"error": ctx["error"], "request_id": rid})
        finally:
            self._record(scope, ctx, time.perf_counter() - start)

    async def _handle(self, scope: dict, receive: Callable, send: Callable, ctx: dict) -> None:
        options = self.state.options
        path, method = scope["path"], scope["method"]
        if needs_token(path, method, options.token, bool(options.cors)):
            authorization = _header(scope, b"authorization")
            if not bearer_ok(authorization, options.token or ""):
                ctx["error"] = "missing or wrong bearer token"
                await _send_json(send, 401, {"error": ctx["error"]}, www_auth=True)
                return
        body = await _read_body(scope, receive, options.max_body_bytes)
        if body is None:
            ctx["error"] = f"the body is larger than {options.max_body_bytes} bytes"
            await _send_json(send, 413, {"error": ctx["error"]})
            return
        ctx["body"] = body
        try:
            async with asyncio.timeout(options.timeout_s):
                answer = await fast_answer(self.state, scope, ctx)
                if answer is None:
                    await self.app(scope, _replay(body, receive), send)
                else:
                    await _send_answer(send, answer)
        except TimeoutError:
            ctx["error"] = f"no answer within {options.timeout_s} s"
            if not ctx["started"]:
                await _send_json(send, 504, {"error": ctx["error"]})

    def _record(self, scope: dict, ctx: dict, seconds: float) -> None:
        state = self.state
        state.served += 1
        model, version = ctx.get("model"), ctx.get("version")
        protocol = _protocol(scope["path"])
        status = ctx["status"]
        state.metrics.observe(
            model or "", "" if version is None else str(version), protocol, status, seconds
        )
        if state.log is None:
            return
        state.log.add(
            {
                "ts": time.time(),
                "request_id": ctx["rid"],
                "method": scope["method"],
                "path": scope["path"],
                "protocol": protocol,
                "model": model,
                "version": version,
                "status": status,
                "latency_ms": seconds * 1000,
                "n_rows": ctx.get("n_rows", 0),
                "inputs": ctx.get("inputs") if state.options.capture_inputs else None,
                "outputs": ctx.get("outputs"),
                "error": ctx.get("error"),
            }
        )


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _read_body(scope: dict, receive: Callable, limit: int) -> bytes | None:
    """The whole body, or None when it is over ``limit`` (declared or streamed)."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Callable) -> Callable:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_answer(send: Callable, answer: Answer) -> None:
    headers = [
        (b"content-type", answer.media.encode()),
        (b"content-length", b"%d" % len(answer.body)),
    ]
    headers += [(k.encode(), v.encode()) for k, v in (answer.headers or {}).items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _send_json(send: Callable, status: int, payload: Any, www_auth: bool = False) -> None:
    headers = {"www-authenticate": "Bearer"} if www_auth else None
    await _send_answer(send, Answer(status, orjson.dumps(payload), headers=headers))


# -- responses ------------------------------------------------------------------------


def json_response(payload: Any, status: int = 200) -> Response:
    """An orjson-encoded JSON answer (numpy arrays allowed)."""
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type=_JSON
    )


def _error(request: Request, status: int, message: str) -> Response:
    return _response(_error_answer(request.scope, status, message))


def _error_answer(scope: dict, status: int, message: str) -> Answer:
    ctx = scope.get("lepton")
    if ctx is not None:
        ctx["error"] = message
    if scope["path"] == "/invocations":
        code = "RESOURCE_DOES_NOT_EXIST" if status == 404 else "BAD_REQUEST"
        return Answer(status, mlflow.error_body(message, code))
    return Answer(status, orjson.dumps({"error": message}))


def _client_error_status(exc: Exception) -> int:
    """The HTTP status of a client's mistake: 404 for what is not served, else 400."""
    return 404 if isinstance(exc, NotFoundError) else 400


def _response(answer: Answer) -> Response:
    return Response(answer.body, answer.status, headers=answer.headers, media_type=answer.media)


# -- the app --------------------------------------------------------------------------


def create_app(
    models: ModelSet,
    options: ServeOptions | None = None,
    log_writer: RequestLogWriter | None = None,
) -> ASGIApp:
    """The server's ASGI app for ``models`` (see the module docstring)."""
    state = ServerState(models, options or ServeOptions(), log_writer)
    api = FastAPI(
        title="Lepton Desktop model server",
        version=__version__,
        description="KServe V2 (with Triton's binary tensors), MLflow scoring and native "
        "routes for the models of a Lepton project or bundle.",
    )
    api.state.lepton = state
    _add_error_handlers(api)
    _add_v2_routes(api, state)
    _add_mlflow_routes(api, state)
    _add_native_routes(api, state)
    _customize_openapi(api, models)
    app: ASGIApp = Guard(api, state)
    if state.options.cors:
        app = CORSMiddleware(
            app,
            allow_origins=list(state.options.cors),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Inference-Header-Content-Length"],
            expose_headers=["X-Request-ID", "Inference-Header-Content-Length"],
        )
    return app


def app_state(app: ASGIApp) -> ServerState:
    """The state behind an app made by :func:`create_app` (tests, the worker)."""
    while not isinstance(app, Guard):
        app = app.app  # type: ignore[attr-defined]
    return app.state


def _customize_openapi(api: FastAPI, models: ModelSet) -> None:
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if built.get("generation") != models.generation:
            schema = get_openapi(
                title=api.title, version=api.version, description=api.description,
                routes=api.routes,
            )  # fmt: skip
            built["schema"] = customize_openapi(schema, models)
            built["generation"] = models.generation
        api.openapi_schema = built["schema"]
        return built["schema"]

    api.openapi = openapi  # type: ignore[method-assign]


def _add_error_handlers(api: FastAPI) -> None:
    async def invalid(request: Request, exc: Exception) -> Response:
        return _error(request, _client_error_status(exc), str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if exc.status_code != 404 else f"no route {request.url.path}"
        return _error(request, exc.status_code, str(message))

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(request, 400, f"{where}: {first.get('msg', 'invalid request')}")

    async def bug(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after this answer; the Guard logs the traceback.
        return _error(request, 500, f"internal error: {type(exc).__name__}")

    api.add_exception_handler(Exception, bug)
    api.add_exception_handler(LeptonError, invalid)
    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(RequestValidationError, validation)


# -- KServe V2 ------------------------------------------------------------------------


def _add_v2_routes(api: FastAPI, state: ServerState) -> None:
    models = state.models

    @api.get("/v2", tags=["v2"], summary="Server metadata")
    async def server_metadata() -> Response:
        return json_response(
            {"name": "lepton-desktop", "version": __version__,
             "extensions": ["binary_tensor_data"]}
        )  # fmt: skip

    @api.get("/v2/health/live", tags=["v2"], summary="Liveness")
    async def live() -> Response:
        return json_response({"live": True})

    @api.get("/v2/health/ready", tags=["v2"], summary="Readiness: every model is loaded")
    async def ready() -> Response:
        return json_response({"ready": bool(models.models)}, 200 if models.models else 503)

    async def metadata(model_name: str, model_version: str | None = None) -> Response:
        name, version = _name_version(model_name, model_version)
        predictor = models.get(name, version)
        served = models.models.get(name)
        shown = sorted(served.versions) if served and version is None else [predictor.version]
        return json_response(v2.model_metadata(predictor, shown))

    async def model_ready(model_name: str, model_version: str | None = None) -> Response:
        models.get(*_name_version(model_name, model_version))  # 404 when not served
        return json_response({"name": model_name, "ready": True})

    async def infer(
        request: Request, model_name: str, model_version: str | None = None
    ) -> Response:
        ctx = request.scope["lepton"]
        return _response(
            await infer_answer(state, ctx, request.headers, model_name, model_version)
        )

    base = "/v2/models/{model_name}"
    versioned = base + "/versions/{model_version}"
    for path in (base, versioned):
        api.get(path, tags=["v2"], summary="Model metadata: inputs, outputs, versions")(metadata)
        api.get(path + "/ready", tags=["v2"], summary="Model readiness")(model_ready)
        api.post(
            path + "/infer",
            tags=["v2"],
            summary="Inference (JSON or Triton binary tensors)",
            openapi_extra=v2_body(),
        )(infer)


def v2_body() -> dict[str, Any]:
    """The infer route's body: V2 JSON, or binary tensors after a JSON header."""
    extra = json_body("V2InferRequest")
    extra["requestBody"]["content"]["application/octet-stream"] = {
        "schema": {"type": "string", "format": "binary"}
    }
    return extra


def _name_version(model_name: str, model_version: str | None) -> tuple[str, str | None]:
    # ``NAME@ALIAS`` in the name segment is the same as ``versions/ALIAS``.
    if model_version is None and "@" in model_name:
        name, alias = model_name.split("@", 1)
        return name, alias
    return model_name, model_version


class _Decoded:
    """Outputs the log writer decodes later (off the request path)."""

    __slots__ = ("outputs", "predictor")

    def __init__(self, predictor: Predictor, outputs: np.ndarray) -> None:
        self.predictor = predictor
        self.outputs = outputs

    def __call__(self) -> list[dict[str, Any]]:
        return self.predictor.decode(self.outputs)


# -- MLflow scoring -------------------------------------------------------------------


def _add_mlflow_routes(api: FastAPI, state: ServerState) -> None:
    @api.get("/ping", tags=["mlflow"], summary="Liveness (MLflow)")
    async def ping() -> Response:
        return Response(b"\n", 200, media_type="application/json")

    @api.get("/health", tags=["mlflow"], summary="Liveness (MLflow)")
    async def health() -> Response:
        return Response(b"\n", 200, media_type="application/json")

    @api.get("/version", tags=["mlflow"], summary="Server version")
    async def version() -> Response:
        return Response(__version__.encode(), 200, media_type="text/plain")

    @api.post(
        "/invocations",
        tags=["mlflow"],
        summary="Score records or features (MLflow's scoring protocol)",
        openapi_extra=json_body("InvocationsRequest", csv=True),
    )
    async def invocations(request: Request) -> Response:
        ctx = request.scope["lepton"]
        return _response(
            await invocations_answer(state, ctx, request.headers, request.query_params)
        )


# -- native ---------------------------------------------------------------------------


def _add_native_routes(api: FastAPI, state: ServerState) -> None:
    models = state.models

    @api.post(
        "/predict",
        tags=["native"],
        summary="Raw feature records in, labels or values out",
        openapi_extra=json_body("PredictRequest"),
    )
    async def predict(request: Request) -> Response:
        return _response(await predict_answer(state, request.scope["lepton"]))

    @api.post(
        "/feedback",
        tags=["native"],
        summary="The true label of an answered row (for live accuracy)",
        openapi_extra=json_body("FeedbackRequest"),
    )
    async def feedback(request: Request) -> Response:
        request_id, label, row = _feedback_payload(parse_json(request.scope["lepton"]["body"]))
        rows = state.rows_of(request_id)
        if rows is None and state.log is not None:
            rows = await asyncio.get_running_loop().run_in_executor(
                None, _logged_rows, state.log, request_id
            )
        if rows is None:
            raise NotFoundError(f"no answered request with id {request_id!r}")
        if row >= rows:
            raise InvalidInputError(f"request {request_id} had {rows} rows; row {row} is not one")
        if state.log is not None:
            state.log.add_feedback(request_id, label, row)
        stored = state.log is not None
        return json_response({"request_id": request_id, "row": row, "stored": stored})

    @api.get("/models", tags=["native"], summary="The served models and their versions")
    async def list_models() -> Response:
        return json_response({"models": _model_list(models)})

    @api.get("/metrics", tags=["native"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), 200, media_type=CONTENT_TYPE)


# -- the hot routes: one implementation for FastAPI and the Guard's fast path -----------


@dataclasses.dataclass
class Answer:
    """A response as plain data (status, body, media type, extra headers)."""

    status: int
    body: bytes
    media: str = _JSON
    headers: dict[str, str] | None = None


def _ok(payload: Any) -> Answer:
    return Answer(200, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))


async def predict_answer(state: ServerState, ctx: dict) -> Answer:
    """``POST /predict``."""
    ref, records = _predict_payload(parse_json(ctx["body"]))
    predictor = state.models.get_ref(ref)
    ctx["model"], ctx["version"] = predictor.name, predictor.version
    x = predictor.encode(records)
    answers = predictor.decode(await state.forward(predictor, x))
    ctx["n_rows"] = len(answers)
    ctx["inputs"] = records
    ctx["outputs"] = answers
    state.remember(ctx["rid"], len(answers))
    return _ok({"request_id": ctx["rid"], "model": predictor.parts.ref, "predictions": answers})


async def invocations_answer(
    state: ServerState, ctx: dict, headers: Mapping[str, str], query: Mapping[str, str]
) -> Answer:
    """``POST /invocations`` (MLflow)."""
    parsed = mlflow.parse_invocation(ctx["body"], headers.get("content-type", ""))
    predictor = state.models.get_ref(query.get("model"))
    ctx["model"], ctx["version"] = predictor.name, predictor.version
    x = parsed.model_inputs(predictor)
    answers = predictor.decode(await state.forward(predictor, x))
    ctx["n_rows"] = len(answers)
    ctx["inputs"] = parsed.records if parsed.records is not None else x
    ctx["outputs"] = answers
    state.remember(ctx["rid"], len(answers))
    return _ok({"predictions": mlflow.predictions(answers, parsed.probabilities)})


async def infer_answer(
    state: ServerState,
    ctx: dict,
    headers: Mapping[str, str],
    model_name: str,
    model_version: str | None = None,
) -> Answer:
    """``POST /v2/models/NAME[/versions/V]/infer``."""
    predictor = state.models.get(*_name_version(model_name, model_version))
    ctx["model"], ctx["version"] = predictor.name, predictor.version
    parsed = v2.parse_infer(ctx["body"], headers.get("inference-header-content-length"))
    x, records = v2.model_inputs(predictor, parsed.inputs)
    outputs = await state.forward(predictor, x)
    body, extra = v2.infer_response(
        predictor, parsed, v2.output_arrays(predictor, outputs), ctx["rid"]
    )
    ctx["n_rows"] = len(x)
    ctx["inputs"] = records if records is not None else x
    ctx["outputs"] = _Decoded(predictor, outputs)
    state.remember(ctx["rid"], len(x))
    media = extra.pop("content-type")
    return Answer(200, body, media, extra or None)


_INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")


async def fast_answer(state: ServerState, scope: dict, ctx: dict) -> Answer | None:
    """The answer of a hot POST route without FastAPI's layers (None: not one of them).

    The routes are declared in FastAPI too (the same functions answer there), so the
    OpenAPI document, ``/docs`` and validation of the other routes are unchanged.
    """
    path = scope["path"]
    if scope["method"] != "POST":
        return None
    try:
        if path == "/predict":
            return await predict_answer(state, ctx)
        headers = _Headers(scope["headers"])
        if path == "/invocations":
            query = QueryParams(scope.get("query_string", b""))
            return await invocations_answer(state, ctx, headers, query)
        match = _INFER_PATH.match(path)
        if match is None:
            return None
        return await infer_answer(state, ctx, headers, match[1], match[2])
    except LeptonError as exc:
        return _error_answer(scope, _client_error_status(exc), str(exc))


class _Headers(dict):
    """Request headers by lower-case name (the few the hot routes read)."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        super().__init__((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)


def _predict_payload(payload: Any) -> tuple[str | None, list[dict[str, Any]]]:
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


def _logged_rows(writer: RequestLogWriter, request_id: str) -> int | None:
    # Another worker process may have answered it: look in the file, after one flush.
    from lepton_desktop.core.store import serving as serving_store
    from lepton_desktop.core.store.db import connect

    conn = connect(writer.path, readonly=True)
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


def _model_list(models: ModelSet) -> list[dict[str, Any]]:
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
