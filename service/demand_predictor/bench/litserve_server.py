"""LitServe serving the same model and feature code (benchmark only, optional).

Run as ``python -m demand_predictor.bench.litserve_server --model-dir D --port P``.
Configured as LitServe's own documentation (the docstrings of ``LitServer`` and
``LitServer.run`` in the installed version, 0.2.19) recommends for this load:

* ``fast_queue=True``: "Enable ZeroMQ for high-throughput scenarios (>100 RPS)";
* ``workers_per_device``: "For CPU, set to the number of cores available" - the
  benchmark gives every server the same cores and passes their count;
* ``num_api_servers=None``: "Uses same count as inference workers (recommended)";
* ``log_level="warning"``, ``generate_client_file=False`` (its production example);
* dynamic batching on the ``LitAPI``: ``max_batch_size`` (64, the service's
  ``DP_MAX_BATCH``) and ``batch_timeout`` (1 ms: LitServe collects a batch for up to
  that long; with 0 its worker polls the queue without ever blocking, a busy loop that
  would take the core the HTTP server needs).

Validation is the service's schema (the pydantic ``Instance`` model, checked by
FastAPI in LitServe's API server, 422 on failure) plus the model's checks (known zone,
point inside the service area) as a validator of the request model, so a request is
refused 422 on its own instead of failing the batch it would join in the worker.
(No ``from __future__ import annotations``: LitServe reads the decode_request
annotation at run time to build the endpoint.)
"""

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
import torch
from pydantic import BaseModel, model_validator

from demand_predictor import artifact
from demand_predictor.features import (
    MAX_ZONE_DISTANCE_KM,
    FeatureSpec,
    RawColumns,
    build_inputs,
    nearest_zone,
)
from demand_predictor.model import MODEL_FORMS, rides_model
from demand_predictor.schemas import Instance, to_columns

MODEL_DIR_ENV = "BENCH_LITSERVE_MODEL_DIR"  # read by the request validator


@functools.cache
def _spec() -> FeatureSpec:
    return artifact.read_manifest(Path(os.environ[MODEL_DIR_ENV])).features


class LitRequest(BaseModel):
    instances: list[Instance]

    @model_validator(mode="after")
    def _model_can_serve(self) -> "LitRequest":
        spec = _spec()
        points = []
        for index, item in enumerate(self.instances):
            if item.zone_id is not None and item.zone_id >= spec.n_zones:
                raise ValueError(f"instances[{index}].zone_id: unknown to this model")
            if item.zone_id is None:
                points.append((item.lat, item.lon))
        if points:
            lat, lon = np.asarray(points, dtype=np.float64).T
            _, km = nearest_zone(lat, lon, spec)
            if (km > MAX_ZONE_DISTANCE_KM).any():
                raise ValueError("a lat/lon lies outside the service area")
        return self


class DemandAPI(ls.LitAPI):
    def __init__(
        self,
        model_dir: Path,
        torch_threads: int,
        model_form: str,
        max_batch_size: int,
        batch_timeout: float,
    ) -> None:
        super().__init__(
            max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/v1/predict"
        )
        self.model_dir = model_dir
        self.torch_threads = torch_threads
        self.model_form = model_form

    def setup(self, device: str) -> None:
        torch.set_num_threads(self.torch_threads)
        self.loaded = artifact.load(self.model_dir, torch.device("cpu"))
        self.net = rides_model(self.loaded.net.eval(), self.model_form)

    def decode_request(self, request: LitRequest) -> RawColumns:
        return to_columns(request.instances)

    def batch(self, inputs: list[RawColumns]) -> list[RawColumns]:
        return inputs

    def predict(self, batch: list[RawColumns]) -> list[np.ndarray]:
        sizes = [len(c) for c in batch]
        zones, features = build_inputs(RawColumns.concat(batch), self.loaded.manifest.features)
        with torch.inference_mode():
            rides = self.net(torch.from_numpy(zones), torch.from_numpy(features)).numpy()
        return np.split(rides.astype(np.float64), np.cumsum(sizes)[:-1])

    def unbatch(self, output: list[np.ndarray]) -> list[np.ndarray]:
        return output

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        return {
            "predictions": [
                {"demand": float(r[1]), "lower": float(r[0]), "upper": float(r[2])} for r in output
            ]
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--model", choices=MODEL_FORMS, default="fused")
    parser.add_argument("--workers-per-device", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--batch-timeout", type=float, default=0.001)
    parser.add_argument("--fast-queue", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    os.environ[MODEL_DIR_ENV] = str(args.model_dir.resolve())
    api = DemandAPI(
        args.model_dir, args.torch_threads, args.model, args.max_batch_size, args.batch_timeout
    )
    server = ls.LitServer(
        api,
        accelerator="cpu",
        devices=1,
        workers_per_device=args.workers_per_device,
        timeout=30,
        fast_queue=args.fast_queue,
    )
    settings = {
        "litserve": ls.__version__,
        "fast_queue": args.fast_queue,
        "workers_per_device": args.workers_per_device,
        "num_api_servers": "default (= inference workers)",
        "max_batch_size": args.max_batch_size,
        "batch_timeout_s": args.batch_timeout,
        "model": args.model,
    }
    print(json.dumps({"event": "litserve_settings", **settings}), flush=True)
    server.run(
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        generate_client_file=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
