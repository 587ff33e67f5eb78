"""Comparison servers for the benchmark, run as ``python -m demand_predictor.bench.baselines``.

* ``naive``: what a plain FastAPI endpoint usually looks like: a pydantic body model, a
  sync ``def`` handler (so FastAPI runs it in its thread pool) doing feature
  engineering and one model call per request. Same schema, same model checks (422 for
  an unknown zone or a point outside the service area), same feature code, and the
  same model code as the service (``--model fused|plain``, default fused).
* ``floor``: the HTTP floor of the **service's own stack**: ``python -m
  demand_predictor serve`` in every respect (DP_* settings, model loading and warm-up,
  frozen heap, uvicorn settings, the early-refusal protocol class, the front
  middleware: request id, latency histogram, access-log setting, drain check) except
  that ``POST /v1/predict`` reads the body and answers a constant (the bytes of a
  one-row prediction) instead of predicting. Its protocol's header-time check asks the
  constant handler, which never refuses.
* ``floor_fastapi``: the floor of plain uvicorn + FastAPI: a FastAPI route that reads
  the body and returns the same constant bytes, uvicorn with the same event loop and
  HTTP parser as the service (uvloop + httptools when installed) and otherwise its
  defaults; FastAPI's built-in OpenTelemetry hooks off and the startup heap frozen
  (``gc.freeze``), as for the naive server.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from demand_predictor import artifact
from demand_predictor.app import NO_TELEMETRY, read_body_limited, send_json_bytes
from demand_predictor.features import MAX_ZONE_DISTANCE_KM, build_inputs
from demand_predictor.model import MODEL_FORMS, rides_model
from demand_predictor.schemas import Instance, model_errors, to_columns
from demand_predictor.server import event_loop_options

PREDICT_PATH = "/v1/predict"
# What both floors answer: the bytes of the service's answer to a one-row request.
CONSTANT_BODY = (
    b'{"model":"demand-predictor","model_version":"1.0.0",'
    b'"interval":"90% (5th to 95th percentile)",'
    b'"unit":"rides in the zone in the next 15 minutes","predictions":['
    b'{"demand":13.747,"lower":6.806,"upper":24.974,"stale":false,"model_version":"1.0.0"}]}'
)


class NaiveRequest(BaseModel):
    instances: list[Instance]


def naive_app(model_dir: Path, model_form: str = "fused") -> FastAPI:
    loaded = artifact.load(model_dir, torch.device("cpu"))
    spec = loaded.manifest.features
    net = rides_model(loaded.net.eval(), model_form)
    app = FastAPI(telemetry=NO_TELEMETRY)

    @app.post(PREDICT_PATH)
    def predict(request: NaiveRequest) -> dict:
        columns = to_columns(request.instances)
        errors = model_errors(columns, spec, MAX_ZONE_DISTANCE_KM)
        if errors:
            raise HTTPException(422, detail=errors)
        zones, features = build_inputs(columns, spec)
        with torch.inference_mode():
            rides = net(torch.from_numpy(zones), torch.from_numpy(features))
        out = rides.numpy().astype(np.float64)
        return {
            "predictions": [
                {"demand": float(r[1]), "lower": float(r[0]), "upper": float(r[2])} for r in out
            ]
        }

    return app


def floor_fastapi_app() -> FastAPI:
    app = FastAPI(telemetry=NO_TELEMETRY)

    @app.post(PREDICT_PATH)
    async def predict(request: Request) -> Response:
        await request.body()
        return Response(CONSTANT_BODY, media_type="application/json")

    return app


class FloorEndpoint:
    """``POST /v1/predict`` of the floor: read the body (with the service's size limit),
    answer the constant. ``precheck``/``precheck_headers`` are what the service's protocol
    asks at header time: nothing to refuse here."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def precheck(self, remaining_s: float | None = None) -> None:
        return None

    def precheck_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        return None

    def count(self, reason: str) -> None:  # the protocol counts refusals; there are none
        pass

    async def __call__(self, scope: Any, receive: Any, send: Any, started: float) -> None:
        await read_body_limited(scope, receive, self.max_body_bytes)
        await send_json_bytes(send, 200, CONSTANT_BODY)


def use_floor_endpoint(app: FastAPI) -> FloorEndpoint:
    """Swap the service app's prediction handler for the constant one: in the front
    middleware the server serves (``app.state.asgi_front``) and as the endpoint its
    protocol class is bound to (``app.state.predict_endpoint``)."""
    endpoint = FloorEndpoint(app.state.runtime.settings.max_body_bytes)
    front = app.state.asgi_front
    key = ("POST", PREDICT_PATH)
    if key not in front.fast_routes:
        raise RuntimeError("the service app no longer serves POST /v1/predict from its front")
    front.fast_routes[key] = endpoint
    app.state.predict_endpoint = endpoint
    return endpoint


def serve_floor() -> int:
    """The service's ``serve`` (DP_* settings from the environment) with the floor."""
    from demand_predictor import logs
    from demand_predictor.config import ConfigError, load_settings
    from demand_predictor.server import run

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"floor: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    return run(settings, customize=use_floor_endpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("naive", "floor", "floor_fastapi"))
    parser.add_argument("--model-dir", type=Path, help="naive: the artifact")
    parser.add_argument("--port", type=int, help="naive, floor_fastapi (floor: DP_PORT)")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--model", choices=MODEL_FORMS, default="fused", help="naive's model code")
    args = parser.parse_args(argv)
    if args.kind == "floor":
        return serve_floor()
    if args.port is None or (args.kind == "naive" and args.model_dir is None):
        parser.error(
            f"{args.kind} needs --port" + (" and --model-dir" if args.kind == "naive" else "")
        )
    torch.set_num_threads(args.torch_threads)
    app = naive_app(args.model_dir, args.model) if args.kind == "naive" else floor_fastapi_app()
    gc.collect()  # as the service does once warm (runtime.py): no full-heap GC stalls
    gc.freeze()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, **event_loop_options(),
        log_level="warning", access_log=False,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
