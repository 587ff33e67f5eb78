"""The OpenAPI document of the routes FastAPI does not route.

``POST /v1/predict`` is a plain ASGI handler dispatched by the middleware ahead of
FastAPI's router (middleware.py), and the Open Inference Protocol's infer route reads
its body itself (kserve.py), so FastAPI cannot describe them from their signatures.
Here each gets a *documentation-only* route: an ``APIRoute`` with the real request and
response models (schemas.py, kserve.py) that is handed to ``get_openapi`` next to the
app's routes but never added to the router, so nothing is ever dispatched to it. Its
responses list exactly the statuses the handler sends (the shed status follows
``DP_SHED_STATUS``); ``tests/service/test_openapi.py`` checks real responses against
the document.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from demand_predictor.admission import MAX_TIMEOUT_MS, TIMEOUT_HEADER
from demand_predictor.config import Settings
from demand_predictor.middleware import MAX_ID_LENGTH
from demand_predictor.schemas import ErrorResponse, PredictResponse, request_model

SHED_REASONS = ("queue_full", "latency_budget", "deadline", "event_loop_lag", "inflight_limit")
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
REQUEST_ID = {
    "X-Request-ID": {
        "description": "the request's id (the client's, if plain, else a generated one)",
        "schema": {"type": "string"},
    }
}


def documented(name: str, params: list[inspect.Parameter], returns: Any) -> Callable[..., Any]:
    """An endpoint with this signature, for FastAPI to read: never called."""

    async def endpoint(**_: Any) -> None:
        raise RuntimeError(f"{name} is a documentation-only route")

    endpoint.__name__ = name
    endpoint.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    return endpoint


def header_params() -> list[inspect.Parameter]:
    """The request headers the prediction handlers read."""
    timeout = Header(
        alias=TIMEOUT_HEADER,
        ge=1,
        le=MAX_TIMEOUT_MS,
        description="how long the caller will wait for the answer, in milliseconds from "
        "the request's arrival; refused at once (reason `deadline`) when the predicted "
        "wait exceeds it, dropped before inference when it passes in the queue; never "
        "extends the server's latency budget. Invalid values: 400 `invalid_header`",
    )
    request_id = Header(
        alias="X-Request-ID",
        max_length=MAX_ID_LENGTH,
        description="echoed in the response if at most 128 characters of "
        "[A-Za-z0-9-_.:], else replaced by a generated id",
    )
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter(
            "x_request_timeout_ms", keyword, default=None, annotation=Annotated[int | None, timeout]
        ),
        inspect.Parameter(
            "x_request_id", keyword, default=None, annotation=Annotated[str | None, request_id]
        ),
    ]


def shedding_responses(settings: Settings, others_503: str) -> dict[int | str, Any]:
    """429 and/or 503 entries: overload shedding answers ``DP_SHED_STATUS``."""
    shed = ", ".join(f"`{reason}`" for reason in SHED_REASONS)
    responses: dict[int | str, Any] = {}
    if settings.shed_status == 429:
        responses[429] = {
            "model": ErrorResponse,
            "description": f"shed under overload: {shed}",
            "headers": RETRY_AFTER,
        }
        unavailable = others_503
    else:
        unavailable = f"{others_503}; shed under overload (DP_SHED_STATUS=503): {shed}"
    responses[503] = {"model": ErrorResponse, "description": unavailable, "headers": RETRY_AFTER}
    return responses


def predict_route(settings: Settings) -> APIRoute:
    """``POST /v1/predict`` as the handler in app.py (PredictEndpoint) answers it."""
    body = inspect.Parameter(
        "body", inspect.Parameter.KEYWORD_ONLY, annotation=request_model(settings.max_rows)
    )
    responses: dict[int | str, Any] = {
        200: {"description": "one prediction per instance", "headers": REQUEST_ID},
        400: {
            "model": ErrorResponse,
            "description": f"`invalid_header`: {TIMEOUT_HEADER} is not a whole number of "
            f"milliseconds from 1 to {MAX_TIMEOUT_MS}",
        },
        413: {
            "model": ErrorResponse,
            "description": "`body_too_large`: the body exceeds DP_MAX_BODY_BYTES",
        },
        422: {
            "model": ErrorResponse,
            "description": "`invalid_request`: validation failed; `details` lists every "
            "problem with its location",
        },
        500: {"model": ErrorResponse, "description": "`inference_failed`"},
        **shedding_responses(
            settings,
            "`not_ready` (model not loaded yet), `draining` (shutting down), "
            "`feature_store_unavailable` (features left out and the store is down)",
        ),
    }
    return APIRoute(
        "/v1/predict",
        documented("predict", [body, *header_params()], PredictResponse),
        methods=["POST"],
        response_model=PredictResponse,
        responses=responses,
        summary="Predict demand",
        description="Rides requested in the next 15 minutes per zone, with a 90 % interval. "
        "Served by a plain ASGI handler (timer-free batching, admission control); see the "
        "service README.",
        operation_id="predict",
    )


def install(app: FastAPI, extra: Iterable[APIRoute], no_422: Iterable[str] = ()) -> None:
    """Make ``app.openapi()`` describe ``extra`` too. ``no_422``: paths whose handlers
    never answer 422 (FastAPI adds a 422 for every route with parameters)."""
    extra = list(extra)
    no_422 = set(no_422)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                routes=[*app.routes, *extra],
            )
            for path in no_422:
                for operation in schema["paths"].get(path, {}).values():
                    operation["responses"].pop("422", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
