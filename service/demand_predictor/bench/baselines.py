"""Comparison servers for the benchmark, run as ``python -m demand_predictor.bench.baselines``.

* ``naive``: what a plain FastAPI endpoint usually looks like: a pydantic body model, a
  sync ``def`` handler (so FastAPI runs it in its thread pool) doing feature
  engineering and one model call per request. Same model, same feature code.
* ``constant``: returns a constant; the HTTP floor of FastAPI + uvicorn on this box.

Both run uvicorn with the same event loop and HTTP parser as the service
(uvloop + httptools when installed), FastAPI with the same settings (its built-in
OpenTelemetry hooks off) and the same frozen startup heap (``gc.freeze``), so the
comparison is of the endpoints alone.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from demand_predictor import artifact
from demand_predictor.app import NO_TELEMETRY
from demand_predictor.features import build_inputs
from demand_predictor.model import to_rides
from demand_predictor.schemas import Instance, to_columns
from demand_predictor.server import event_loop_options


class NaiveRequest(BaseModel):
    instances: list[Instance]


def naive_app(model_dir: Path) -> FastAPI:
    loaded = artifact.load(model_dir, torch.device("cpu"))
    spec = loaded.manifest.features
    app = FastAPI(telemetry=NO_TELEMETRY)

    @app.post("/v1/predict")
    def predict(request: NaiveRequest) -> dict:
        zones, features = build_inputs(to_columns(request.instances), spec)
        with torch.inference_mode():
            rides = to_rides(loaded.net(torch.from_numpy(zones), torch.from_numpy(features)))
        out = rides.numpy().astype(np.float64)
        return {
            "predictions": [
                {"demand": float(r[1]), "lower": float(r[0]), "upper": float(r[2])} for r in out
            ]
        }

    return app


def constant_app() -> FastAPI:
    app = FastAPI(telemetry=NO_TELEMETRY)
    answer = {"predictions": [{"demand": 1.0, "lower": 0.0, "upper": 2.0}]}

    @app.post("/v1/predict")
    async def predict() -> dict:
        return answer

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("naive", "constant"))
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    app = naive_app(args.model_dir) if args.kind == "naive" else constant_app()
    gc.collect()  # as the service does once warm (runtime.py): no full-heap GC stalls
    gc.freeze()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, **event_loop_options(),
        log_level="warning", access_log=False,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
