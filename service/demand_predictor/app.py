"""FastAPI application: routes, error responses, wiring of runtime and middleware."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.routing import Route

from demand_predictor import __version__, apidoc, kserve, modelstore
from demand_predictor.admission import (
    TIMEOUT_HEADER,
    AdmissionController,
    InvalidTimeout,
    Rejection,
    request_timeout,
)
from demand_predictor.batching import DeadlineExceeded, WorkerStopped, WorkItem
from demand_predictor.config import Settings, _identifier
from demand_predictor.feature_store import FeatureRequest, FeatureStoreUnavailable
from demand_predictor.features import MAX_ZONE_DISTANCE_KM, RawColumns
from demand_predictor.looplag import LoopLagMonitor
from demand_predictor.metrics import Metrics
from demand_predictor.middleware import RequestContextMiddleware, RequestRecorder, Scope
from demand_predictor.runtime import LoadFailed, Phase, Runtime, Serving
from demand_predictor.schemas import (
    InvalidInput,
    error_list,
    fast_columns,
    missing_feature_errors,
    missing_features,
    model_errors,
    request_adapter,
    to_columns,
)

log = logging.getLogger("demand_predictor.app")
JSON_TYPE = "application/json"
# FastAPI's built-in OpenTelemetry hooks check for configured providers on every
# request; this service exports Prometheus metrics instead. (The benchmark's FastAPI
# baselines use the same setting.)
NO_TELEMETRY: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False}


class BodyTooLarge(Exception):
    pass


def json_response(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
    return Response(
        json.dumps(payload, separators=(",", ":")), status, headers=headers, media_type=JSON_TYPE
    )


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    payload: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        payload["details"] = details
    return json_response(status, payload, headers)


class ClientGone(Exception):
    pass


async def read_body_limited(scope: Scope, receive: Any, limit: int) -> bytes:
    """The request body, refusing (BodyTooLarge) past ``limit`` bytes, before parsing."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise BodyTooLarge
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


JSON_HEADER = (b"content-type", b"application/json")


async def send_json_bytes(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete JSON response as two ASGI messages, without a Response object."""
    raw = [JSON_HEADER, (b"content-length", str(len(body)).encode("ascii"))]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def error_bytes(code: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    payload: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        payload["details"] = details
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Refusal:
    """A complete refusal response: status, reason (metric label), JSON body, headers."""

    status: int
    reason: str
    body: bytes
    headers: list[tuple[bytes, bytes]]


class PredictEndpoint:
    """``POST /v1/predict`` as a plain ASGI handler (no Request/Response objects).

    Order of work, cheapest refusal first: readiness/drain (503), event-loop lag and
    in-flight limit (429, before the body is read), body size (413), validation (422),
    queue depth and predicted wait (429), then the inference queue, where a request
    still waiting past its deadline (arrival + latency budget) is refused with 429
    instead of being computed late. Rows that left weather or recent rides out go
    through the feature fetcher first (feature_store.py): 503 at once while the store is
    down, 422 when no store is configured.

    A caller's deadline (``X-Request-Timeout-Ms``, admission.py) is checked at each of
    those steps too: 400 ``invalid_header`` for a malformed value; 429 ``deadline`` when
    the predicted time to answer exceeds what is left of it (before the body is read
    and again after validation); in the queue, the request's deadline is the earlier
    of the two, and 429 ``deadline`` when the caller's was the one that passed.

    ``run`` is the same work for another wire format (the Open Inference Protocol,
    kserve.py); this class's ``__call__`` keeps the JSON of ``/v1/predict`` inline.

    The model version is read once, before anything else, and the request is served by
    it to the end (a hot swap meanwhile does not change it, see runtime.py).
    """

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        metrics: Metrics,
        admission: AdmissionController,
        loop_lag: LoopLagMonitor,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.metrics = metrics
        self.admission = admission
        self.loop_lag = loop_lag
        self.adapter = request_adapter(settings.max_rows)
        self._rejections: dict[str, Any] = {}  # cached counter children

    def count(self, reason: str) -> None:
        """Count a refusal in dp_rejections_total{reason}."""
        child = self._rejections.get(reason)
        if child is None:
            child = self._rejections[reason] = self.metrics.rejections.labels(reason)
        child.inc()

    def _unavailable(self) -> Refusal:
        phase = self.runtime.phase
        if phase is Phase.DRAINING:
            reason, message = "draining", "the service is shutting down; retry on another instance"
        else:
            reason, message = "not_ready", f"the model is not ready (phase: {phase.value})"
        return Refusal(503, reason, error_bytes(reason, message), [(b"retry-after", b"1")])

    def _too_many(self, rejection: Rejection) -> Refusal:
        """A request shed under overload: 429, or 503 where a load balancer retries it."""
        retry = str(rejection.retry_after_s).encode("ascii")
        body = error_bytes(rejection.reason, rejection.detail)
        return Refusal(self.settings.shed_status, rejection.reason, body, [(b"retry-after", retry)])

    def precheck(self, remaining_s: float | None = None) -> Refusal | None:
        """The refusal for a new prediction request before its body is read, if any.

        ``remaining_s``: what is left of the caller's deadline, if it gave one.
        No side effects (the caller counts what it sends), so the HTTP protocol can
        call it as soon as it has parsed the request line and headers.
        """
        runtime = self.runtime
        if not runtime.ready:
            return self._unavailable()
        rejection = self.admission.check_inflight(runtime.inflight, self.loop_lag.lag_s)
        if rejection is None:
            worker = runtime.worker
            assert worker is not None  # ready implies loaded
            pending = worker.pending_rows
            # Even a one-row request would wait past the budget / overflow the queue.
            rejection = self.admission.check_queue(1, pending, worker.predicted_wait(pending))
            if rejection is None and remaining_s is not None:
                # ... or could not be answered within the caller's deadline.
                predicted = worker.predicted_wait(pending + 1)
                rejection = self.admission.check_deadline(remaining_s, predicted)
        return None if rejection is None else self._too_many(rejection)

    def precheck_headers(self, headers: list[tuple[bytes, bytes]]) -> Refusal | None:
        """``precheck`` for the HTTP protocol, which has the request's headers: with the
        caller's deadline, if any. None for a malformed deadline: the app answers 400."""
        try:
            timeout_s = request_timeout(headers)
        except InvalidTimeout:
            return None
        return self.precheck(timeout_s)

    def _bad_timeout(self, exc: InvalidTimeout) -> Refusal:
        message = str(exc)
        details = [{"type": "value_error", "loc": ["header", TIMEOUT_HEADER], "msg": message}]
        return Refusal(400, "invalid_header", error_bytes("invalid_header", message, details), [])

    def _body_too_large(self) -> Refusal:
        limit = self.settings.max_body_bytes
        message = f"request body exceeds {limit} bytes (DP_MAX_BODY_BYTES)"
        body = error_bytes("body_too_large", message)
        return Refusal(413, "body_too_large", body, [(b"connection", b"close")])

    def _invalid_refusal(self, details: list[dict[str, Any]]) -> Refusal:
        body = error_bytes("invalid_request", "request failed validation", details)
        return Refusal(422, "invalid", body, [])

    async def _refuse(self, send: Any, refusal: Refusal) -> None:
        if refusal.reason:  # "": an error, not a refusal (inference_failed)
            self.count(refusal.reason)
        await send_json_bytes(send, refusal.status, refusal.body, refusal.headers)

    async def _invalid(self, send: Any, details: list[dict[str, Any]]) -> None:
        self.count("invalid")
        body = error_bytes("invalid_request", "request failed validation", details)
        await send_json_bytes(send, 422, body)

    @staticmethod
    def _encode(serving: Serving, rides: np.ndarray, stale: np.ndarray | None = None) -> bytes:
        """The 200 body; byte for byte what json.dumps(separators=(",", ":")) gives."""
        encoder = serving.encoder
        if encoder is None:
            manifest = serving.manifest
            version = json.dumps(manifest.version)
            head = (
                f'{{"model":{json.dumps(manifest.name)},"model_version":{version},'
                '"interval":"90% (5th to 95th percentile)",'
                '"unit":"rides in the zone in the next 15 minutes","predictions":['
            )
            row = '{"demand":%r,"lower":%r,"upper":%r,"stale":%s,"model_version":' + version + "}"
            encoder = serving.encoder = (head, row)
        head, row = encoder
        if stale is None:
            rows = ",".join(
                row % (round(demand, 3), round(lower, 3), round(upper, 3), "false")
                for lower, demand, upper in rides.tolist()
            )
        else:
            rows = ",".join(
                row % (round(demand, 3), round(lower, 3), round(upper, 3), flag)
                for (lower, demand, upper), flag in zip(
                    rides.tolist(),
                    np.where(stale, "true", "false").tolist(),
                    strict=True,
                )
            )
        return (head + rows + "]}").encode()

    async def __call__(
        self, scope: Scope, receive: Any, send: Any, started: float | None = None
    ) -> None:
        serving = self.runtime.serving  # the version this request runs on, to the end
        started = started or time.perf_counter()
        try:
            timeout_s = request_timeout(scope["headers"])
        except InvalidTimeout as exc:
            await self._refuse(send, self._bad_timeout(exc))
            return
        refusal = self.precheck(
            None if timeout_s is None else started + timeout_s - time.perf_counter()
        )
        if refusal is not None:
            await self._refuse(send, refusal)
            return
        runtime = self.runtime
        runtime.inflight += 1
        self.metrics.inflight.inc()
        try:
            assert serving is not None  # ready implies loaded
            await self._predict(scope, receive, send, started, serving, timeout_s)
        finally:
            runtime.inflight -= 1
            self.metrics.inflight.dec()

    async def run(
        self,
        scope: Scope,
        receive: Any,
        started: float,
        parse: Callable[[bytes, Serving], RawColumns],
    ) -> Refusal | tuple[Serving, np.ndarray, np.ndarray | None] | None:
        """The prediction flow of ``__call__`` for another wire format (kserve.py):
        the same deadline header, admission control, body limit, feature store, queue
        and model version. ``parse`` turns the body into validated columns or raises
        ``InvalidInput``. Returns (serving, rides, stale flags or None), the refusal to
        answer (not counted yet: the caller counts and formats it), or None when the
        client went away before its body arrived."""
        serving = self.runtime.serving  # the version this request runs on, to the end
        try:
            timeout_s = request_timeout(scope["headers"])
        except InvalidTimeout as exc:
            return self._bad_timeout(exc)
        refusal = self.precheck(
            None if timeout_s is None else started + timeout_s - time.perf_counter()
        )
        if refusal is not None:
            return refusal
        runtime = self.runtime
        runtime.inflight += 1
        self.metrics.inflight.inc()
        try:
            assert serving is not None  # ready implies loaded
            try:
                body = await read_body_limited(scope, receive, self.settings.max_body_bytes)
            except BodyTooLarge:
                return self._body_too_large()
            except ClientGone:
                return None
            try:
                columns = parse(body, serving)
            except InvalidInput as exc:
                reason = "invalid" if exc.status in (400, 422) else ""
                return Refusal(exc.status, reason, error_bytes(exc.code, str(exc)), [])
            outcome = await self._compute(columns, serving, started, timeout_s)
            if type(outcome) is Refusal:
                return outcome
            rides, stale = outcome
            return serving, rides, stale
        finally:
            runtime.inflight -= 1
            self.metrics.inflight.dec()

    def _store_unavailable(self, exc: Exception, retry_after_s: int) -> Refusal:
        body = error_bytes("feature_store_unavailable", str(exc))
        retry = str(retry_after_s).encode("ascii")
        return Refusal(503, "feature_store_unavailable", body, [(b"retry-after", retry)])

    async def _predict(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        started: float,
        serving: Serving,
        timeout_s: float | None = None,
    ) -> None:
        settings = self.settings
        try:
            body = await read_body_limited(scope, receive, settings.max_body_bytes)
        except BodyTooLarge:
            await self._refuse(send, self._body_too_large())
            return
        except ClientGone:
            return
        spec = serving.manifest.features
        fast = (
            fast_columns(body, settings.max_rows, spec.n_zones)
            if settings.fast_validator
            else None  # DP_FAST_VALIDATOR=false: pydantic for every body (ablation)
        )
        if fast is not None:
            columns, by_point = fast
            errors = model_errors(columns, spec, MAX_ZONE_DISTANCE_KM) if by_point else None
        else:
            try:
                parsed = self.adapter.validate_json(body)
            except ValidationError as exc:
                await self._invalid(send, error_list(exc))
                return
            columns = to_columns(parsed.instances)
            errors = model_errors(columns, spec, MAX_ZONE_DISTANCE_KM)
        if errors:
            await self._invalid(send, errors)
            return
        outcome = await self._compute(columns, serving, started, timeout_s)
        if type(outcome) is Refusal:
            await self._refuse(send, outcome)
            return
        rides, stale = outcome
        await send_json_bytes(send, 200, self._encode(serving, rides, stale))

    async def _compute(
        self, columns: RawColumns, serving: Serving, started: float, timeout_s: float | None
    ) -> Refusal | tuple[np.ndarray, np.ndarray | None]:
        """Validated columns -> (rides, stale flags or None), or the refusal to send:
        the feature store, queue and deadline admission, the inference queue."""
        worker = self.runtime.worker
        assert worker is not None  # ready implies loaded
        spec = serving.manifest.features
        need_rides, need_weather = missing_features(columns)
        fetcher = None
        if need_rides.any() or need_weather.any():
            fetcher = self.runtime.fetcher
            if fetcher is None:
                return self._invalid_refusal(missing_feature_errors(columns))
            if not fetcher.up:
                return self._store_unavailable(fetcher.unavailable(), fetcher.retry_after_s)
        pending = worker.pending_rows
        rows = len(columns)
        rejection = self.admission.check_queue(rows, pending, worker.predicted_wait(pending))
        if rejection is None and timeout_s is not None:
            remaining = started + timeout_s - time.perf_counter()
            predicted = worker.predicted_wait(pending + rows)
            rejection = self.admission.check_deadline(remaining, predicted)
        if rejection is not None:
            return self._too_many(rejection)
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        # The earlier of the two deadlines: the caller's never extends the server's budget.
        budget_s, callers = self.admission.request_budget(timeout_s)
        item = WorkItem(columns, loop, future, deadline=started + budget_s, predict=serving.predict)
        request = None
        try:
            if fetcher is None:
                worker.submit(item)
            else:
                request = FeatureRequest(item, spec, need_rides, need_weather)
                fetcher.submit(request)
        except FeatureStoreUnavailable as exc:
            return self._store_unavailable(exc, exc.retry_after_s)
        except RuntimeError:  # the worker stopped: draining
            return self._unavailable()
        try:
            rides = await future
        except DeadlineExceeded as exc:
            if callers:
                detail = (
                    f"not started within the request's {budget_s * 1000:.0f} ms deadline "
                    f"({TIMEOUT_HEADER}); {exc}"
                )
                return self._too_many(Rejection("deadline", detail, 1))
            budget_ms = self.settings.latency_budget_ms
            detail = f"not started within the {budget_ms:.0f} ms latency budget ({exc})"
            return self._too_many(Rejection("latency_budget", detail, 1))
        except FeatureStoreUnavailable as exc:
            return self._store_unavailable(exc, exc.retry_after_s)
        except WorkerStopped:
            return self._unavailable()
        except Exception as exc:  # noqa: BLE001 - reported to the client
            log.error("inference failed: %s", exc)
            body = error_bytes("inference_failed", "the model failed on this batch")
            return Refusal(500, "", body, [])
        return rides, (None if request is None else request.stale)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    metrics = runtime.metrics if runtime is not None else Metrics(settings.max_batch)
    runtime = runtime or Runtime(settings, metrics)
    admission = AdmissionController(
        settings.queue_limit,
        settings.max_inflight,
        settings.latency_budget_s,
        settings.loop_lag_limit_ms / 1000.0,
    )
    loop_lag = LoopLagMonitor(metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        loop_lag.start()
        yield
        await loop_lag.stop()
        await asyncio.to_thread(runtime.stop, 5.0)

    app = FastAPI(
        title="demand-predictor",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics

    def unavailable() -> Response:
        reason = "draining" if runtime.phase is Phase.DRAINING else "not_ready"
        metrics.rejections.labels(reason).inc()
        message = (
            "the service is shutting down; retry on another instance"
            if reason == "draining"
            else f"the model is not ready (phase: {runtime.phase.value})"
        )
        return error_response(503, reason, message, headers={"Retry-After": "1"})

    predict = PredictEndpoint(settings, runtime, metrics, admission, loop_lag)
    # Served from the middleware (see middleware.py); the route makes the router answer
    # 405 for other methods and lists the path.
    app.router.routes.append(Route("/v1/predict", predict, methods=["POST"]))

    def versions_view(active: str) -> dict[str, Any]:
        """Blocking (disk, and the remote store's index): run on a thread."""
        found: dict[str, dict[str, Any]] = {}
        store_error = ""
        if settings.versioned:
            for entry in modelstore.local_versions(settings.model_dir, settings.model_name):
                found[entry["version"]] = {"version": entry["version"], "sha256": entry["sha256"]}
                found[entry["version"]]["local"] = True
        if settings.model_store_url:
            try:
                index = modelstore.read_index(
                    settings.model_store_url, settings.model_name, timeout_s=2.0
                )
            except modelstore.StoreError as exc:
                store_error = str(exc)
            else:
                for entry in index["versions"]:
                    row = found.setdefault(
                        entry["version"], {"version": entry["version"], "sha256": entry["sha256"]}
                    )
                    row["in_store"] = True
                    row["created"] = entry.get("created")
        loading = runtime.loading_version
        rows = []
        for version in sorted(found):
            row = found[version]
            row.setdefault("local", False)
            row["in_store"] = row.get("in_store", False)
            row["state"] = (
                "active" if version == active else "loading" if version == loading else "available"
            )
            rows.append(row)
        view: dict[str, Any] = {
            "active_version": active,
            "loaded": [active],
            "loading": loading or None,
            "versions": rows,
            "last_load": runtime.last_load,
            "model_store": settings.model_store_url or None,
        }
        if store_error:
            view["model_store_error"] = store_error
        return view

    @app.get("/v1/models/{name}")
    async def model_metadata(name: str) -> Response:
        serving = runtime.serving
        if serving is None:
            if runtime.phase is Phase.LOADING:
                return unavailable()
            return error_response(404, "model_not_found", f"no model named {name!r} is loaded")
        manifest = serving.manifest
        if name != manifest.name:
            return error_response(
                404,
                "model_not_found",
                f"no model named {name!r}; this service serves {manifest.name!r}",
            )
        raw = manifest.raw
        versions = await asyncio.to_thread(versions_view, manifest.version)
        return json_response(
            200,
            {
                "name": manifest.name,
                "version": manifest.version,
                **versions,
                "ready": runtime.ready,
                "weights": raw["weights"],
                "architecture": raw["architecture"],
                "features": {k: v for k, v in raw["features"].items() if k != "zones"}
                | {"zones": raw["features"]["zones"]["count"]},
                "output": raw["output"],
                "training": raw["training"],
                "serving": {
                    "device": str(runtime.predictor.model.device) if runtime.predictor else None,
                    "device_info": runtime.device_info(),
                    "batch_buckets": list(runtime.predictor.buckets) if runtime.predictor else [],
                    "torch_version": torch.__version__,
                    "torch_threads": settings.torch_threads,
                },
            },
        )

    def is_admin(scope: Scope) -> bool:
        """True for a request that came over the admin unix socket (server.py). uvicorn
        gives unix-socket connections a server address without a port; TCP always has
        one, and the admin socket is the only unix socket this service listens on."""
        server = scope.get("server")
        return bool(settings.admin_socket) and (
            isinstance(server, tuple | list) and len(server) == 2 and server[1] is None
        )

    check_version = _identifier(allow_empty=False)

    @app.post("/v1/models/{name}/versions/{version}:load")
    async def load_model_version(name: str, version: str, request: Request) -> Response:
        if not is_admin(request.scope):
            metrics.rejections.labels("forbidden").inc()
            return error_response(
                403,
                "forbidden",
                "admin endpoints answer only on the admin unix socket (DP_ADMIN_SOCKET)",
            )
        if name != settings.model_name:
            return error_response(
                404,
                "model_not_found",
                f"no model named {name!r}; this service serves {settings.model_name!r}",
            )
        try:
            version = check_version(version)
        except ValueError as exc:
            return error_response(
                422,
                "invalid_request",
                f"version {exc}",
                [{"type": "value_error", "loc": ["path", "version"], "msg": str(exc)}],
            )
        try:
            outcome = await asyncio.to_thread(runtime.load_version, version, "api")
        except LoadFailed as exc:
            serving = runtime.serving
            code = "load_in_progress" if exc.reason == "busy" else "model_load_failed"
            payload: dict[str, Any] = {
                "error": code,
                "message": str(exc),
                "reason": exc.reason,
                "version": version,
                "active_version": serving.version if serving else None,
            }
            headers = {"Retry-After": "1"} if exc.status in (409, 503) else None
            return json_response(exc.status, payload, headers)
        return json_response(
            200,
            {
                "name": name,
                "result": outcome.result,
                "active_version": outcome.version,
                "previous_version": outcome.previous,
                "sha256": outcome.sha256,
                "swap_s": round(outcome.duration_s, 3),
            },
        )

    async def live() -> Response:
        return json_response(200, {"status": "alive"})

    def held() -> str:
        """Why readiness is withheld while the service still serves: a shutdown announced
        (SIGTERM with drain_serve_s) or the operator's not-ready file."""
        if runtime.readiness_hold:
            return runtime.readiness_hold
        if settings.not_ready_file and os.path.exists(settings.not_ready_file):
            return f"taken out of rotation: {settings.not_ready_file} exists"
        return ""

    async def ready() -> Response:
        hold = held()
        if hold and runtime.ready:
            return json_response(
                503, {"status": "not_ready", "phase": "ready", "reason": hold}, {"Retry-After": "1"}
            )
        if runtime.ready and runtime.manifest is not None:
            manifest = runtime.manifest
            return json_response(
                200,
                {
                    "status": "ready",
                    "model": manifest.name,
                    "version": manifest.version,
                    "device": runtime.device_info(),
                },
            )
        phase = runtime.phase
        draining = phase in (Phase.DRAINING, Phase.STOPPED)
        payload: dict[str, Any] = {
            "status": "draining" if draining else "not_ready",
            "phase": phase.value,
            "reason": runtime.not_ready_reason(),
        }
        if phase is Phase.FAILED:
            payload["error"] = runtime.error
        if runtime.device_choice is not None:
            payload["device"] = runtime.device_info()
        return json_response(503, payload, {"Retry-After": "1"})

    app.add_api_route("/livez", live, methods=["GET"])
    app.add_api_route("/v2/health/live", live, methods=["GET"])
    app.add_api_route("/readyz", ready, methods=["GET"])
    app.add_api_route("/v2/health/ready", ready, methods=["GET"])

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    # Open Inference Protocol (KServe v2): metadata, model readiness and inference, on
    # the prediction endpoint's admission control, queue and model version.
    v2_documented = kserve.add_routes(app, predict, settings)
    # The OpenAPI document also describes the routes FastAPI does not route itself.
    apidoc.install(app, [apidoc.predict_route(settings), *v2_documented], no_422=kserve.PATHS)

    recorder = RequestRecorder(metrics, settings.access_log)
    app.add_middleware(
        RequestContextMiddleware,
        recorder=recorder,
        draining=lambda: runtime.phase is Phase.DRAINING,
        fast_routes={("POST", "/v1/predict"): predict},
    )
    # For the server (server.py): the ASGI app it serves, which takes predictions
    # straight to the endpoint ahead of FastAPI's middleware stack; and for its HTTP
    # protocol, which refuses prediction requests it can tell are doomed before
    # building an ASGI request at all (protocol.py).
    app.state.asgi_front = RequestContextMiddleware(
        app,
        recorder=recorder,
        draining=lambda: runtime.phase is Phase.DRAINING,
        fast_routes={("POST", "/v1/predict"): predict},
        only_fast_routes=True,
    )
    app.state.predict_endpoint = predict
    app.state.request_recorder = recorder
    return app
