"""LitServe serving the same model and feature code (benchmark only, optional).

Run as ``python -m demand_predictor.bench.litserve_server --model-dir D --port P``.
LitServe batches with a timer (``batch_timeout``); we give it max_batch_size 64 and a
1 ms window, a setting that favours latency. (No `from __future__ import annotations`:
LitServe reads the decode_request annotation at run time to build the endpoint.)
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
import torch
from pydantic import BaseModel

from demand_predictor import artifact
from demand_predictor.features import RawColumns, build_inputs
from demand_predictor.model import to_rides
from demand_predictor.schemas import Instance, to_columns


class LitRequest(BaseModel):
    instances: list[Instance]


class DemandAPI(ls.LitAPI):
    def __init__(self, model_dir: Path, torch_threads: int) -> None:
        super().__init__(max_batch_size=64, batch_timeout=0.001, api_path="/v1/predict")
        self.model_dir = model_dir
        self.torch_threads = torch_threads

    def setup(self, device: str) -> None:
        torch.set_num_threads(self.torch_threads)
        self.loaded = artifact.load(self.model_dir, torch.device("cpu"))

    def decode_request(self, request: LitRequest) -> RawColumns:
        return to_columns(request.instances)

    def batch(self, inputs: list[RawColumns]) -> list[RawColumns]:
        return inputs

    def predict(self, batch: list[RawColumns]) -> list[np.ndarray]:
        sizes = [len(c) for c in batch]
        zones, features = build_inputs(RawColumns.concat(batch), self.loaded.manifest.features)
        with torch.inference_mode():
            rides = to_rides(
                self.loaded.net(torch.from_numpy(zones), torch.from_numpy(features))
            ).numpy()
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
    args = parser.parse_args(argv)
    api = DemandAPI(args.model_dir, args.torch_threads)
    server = ls.LitServer(
        api,
        accelerator="cpu",
        devices=1,
        workers_per_device=1,
        timeout=30,
    )
    server.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
