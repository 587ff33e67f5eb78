"""FastAPI application: routes, error responses, wiring of runtime and middleware."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from demand_predictor import __version__
from demand_predictor.admission import AdmissionController, Rejection
from demand_predictor.batching import WorkItem
from demand_predictor.config import Settings
from demand_predictor.features import MAX_ZONE_DISTANCE_KM
from demand_predictor.looplag import LoopLagMonitor
from demand_predictor.metrics import Metrics
from demand_predictor.middleware import RequestContextMiddleware
from demand_predictor.runtime import Phase, Runtime
from demand_predictor.schemas import error_list, model_errors, request_adapter, to_columns

log = logging.getLogger("demand_predictor.app")
JSON_TYPE = "application/json"


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


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (BodyTooLarge) past ``limit`` bytes, before parsing."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    metrics = runtime.metrics if runtime is not None else Metrics(settings.max_batch)
    runtime = runtime or Runtime(settings, metrics)
    admission = AdmissionController(
        settings.queue_limit,
        settings.max_inflight,
        settings.latency_budget_s,
        settings.loop_lag_limit_ms / 1000.0,
    )
    adapter = request_adapter(settings.max_rows)
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
    )
    app.state.runtime = runtime
    app.state.metrics = metrics

    def reject(rejection: Rejection) -> Response:
        metrics.rejections.labels(rejection.reason).inc()
        return error_response(
            429,
            rejection.reason,
            rejection.detail,
            headers={"Retry-After": str(rejection.retry_after_s)},
        )

    def unavailable() -> Response:
        reason = "draining" if runtime.phase is Phase.DRAINING else "not_ready"
        metrics.rejections.labels(reason).inc()
        message = (
            "the service is shutting down; retry on another instance"
            if reason == "draining"
            else f"the model is not ready (phase: {runtime.phase.value})"
        )
        return error_response(503, reason, message, headers={"Retry-After": "1"})

    @app.post("/v1/predict")
    async def predict(request: Request) -> Response:
        """Predict demand for 1..max_rows instances. Body: {"instances": [...]}."""
        if not runtime.ready:
            return unavailable()
        rejection = admission.check_inflight(runtime.inflight, loop_lag.lag_s)
        if rejection is not None:
            return reject(rejection)
        runtime.inflight += 1
        metrics.inflight.inc()
        try:
            return await _predict(request)
        finally:
            runtime.inflight -= 1
            metrics.inflight.dec()

    async def _predict(request: Request) -> Response:
        try:
            body = await read_body_limited(request, settings.max_body_bytes)
        except BodyTooLarge:
            metrics.rejections.labels("body_too_large").inc()
            return error_response(
                413,
                "body_too_large",
                f"request body exceeds {settings.max_body_bytes} bytes (DP_MAX_BODY_BYTES)",
                headers={"Connection": "close"},
            )
        try:
            parsed = adapter.validate_json(body)
        except ValidationError as exc:
            metrics.rejections.labels("invalid").inc()
            return error_response(
                422, "invalid_request", "request failed validation", error_list(exc)
            )
        columns = to_columns(parsed.instances)
        manifest = runtime.manifest
        worker = runtime.worker
        assert manifest is not None and worker is not None  # ready implies loaded
        errors = model_errors(columns, manifest.features, MAX_ZONE_DISTANCE_KM)
        if errors:
            metrics.rejections.labels("invalid").inc()
            return error_response(422, "invalid_request", "request failed validation", errors)
        pending = worker.pending_rows
        rejection = admission.check_queue(len(columns), pending, worker.predicted_wait(pending))
        if rejection is not None:
            return reject(rejection)
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        try:
            worker.submit(WorkItem(columns, loop, future))
        except RuntimeError:
            return unavailable()
        try:
            rides = await future
        except Exception as exc:  # noqa: BLE001 - reported to the client
            log.error("inference failed: %s", exc)
            return error_response(500, "inference_failed", "the model failed on this batch")
        version = manifest.version
        predictions = [
            {
                "demand": round(float(row[1]), 3),
                "lower": round(float(row[0]), 3),
                "upper": round(float(row[2]), 3),
                "model_version": version,
            }
            for row in rides
        ]
        return json_response(
            200,
            {
                "model": manifest.name,
                "model_version": version,
                "interval": "90% (5th to 95th percentile)",
                "unit": "rides in the zone in the next 15 minutes",
                "predictions": predictions,
            },
        )

    @app.get("/v1/models/{name}")
    async def model_metadata(name: str) -> Response:
        manifest = runtime.manifest
        if manifest is None:
            if runtime.phase is Phase.LOADING:
                return unavailable()
            return error_response(404, "model_not_found", f"no model named {name!r} is loaded")
        if name != manifest.name:
            return error_response(
                404,
                "model_not_found",
                f"no model named {name!r}; this service serves {manifest.name!r}",
            )
        raw = manifest.raw
        return json_response(
            200,
            {
                "name": manifest.name,
                "version": manifest.version,
                "ready": runtime.ready,
                "weights": raw["weights"],
                "architecture": raw["architecture"],
                "features": {k: v for k, v in raw["features"].items() if k != "zones"}
                | {"zones": raw["features"]["zones"]["count"]},
                "output": raw["output"],
                "training": raw["training"],
                "serving": {
                    "device": str(runtime.predictor.model.device) if runtime.predictor else None,
                    "batch_buckets": list(runtime.predictor.buckets) if runtime.predictor else [],
                    "torch_version": torch.__version__,
                    "torch_threads": settings.torch_threads,
                },
            },
        )

    async def live() -> Response:
        return json_response(200, {"status": "alive"})

    async def ready() -> Response:
        if runtime.ready and runtime.manifest is not None:
            manifest = runtime.manifest
            return json_response(
                200,
                {"status": "ready", "model": manifest.name, "version": manifest.version},
            )
        payload: dict[str, Any] = {"status": runtime.phase.value}
        if runtime.error:
            payload["error"] = runtime.error
        return json_response(503, payload, {"Retry-After": "1"})

    app.add_api_route("/livez", live, methods=["GET"])
    app.add_api_route("/v2/health/live", live, methods=["GET"])
    app.add_api_route("/readyz", ready, methods=["GET"])
    app.add_api_route("/v2/health/ready", ready, methods=["GET"])

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        draining=lambda: runtime.phase is Phase.DRAINING,
        access=settings.access_log,
    )
    return app
