"""Train the demand model on generated data and write the artifact.

    python -m demand_predictor.train --out DIR [--seed 7] [--epochs 4]

Deterministic: fixed seeds, one torch thread, deterministic algorithms, so the same
seed on the same torch version gives the same weights file (same sha256).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from demand_predictor import artifact, data
from demand_predictor.features import (
    FEATURE_NAMES,
    FeatureSpec,
    build_inputs,
    fit_normalisation,
    numeric_features,
)
from demand_predictor.model import Architecture, DemandNet, pinball_loss, to_rides

MODEL_NAME = "demand-predictor"
VALIDATION_WEEKS = 2


def _metrics(net: DemandNet, zones: torch.Tensor, x: torch.Tensor, y: np.ndarray) -> dict:
    with torch.inference_mode():
        q = to_rides(net(zones, x)).numpy().astype(np.float64)
    return {
        "mae": round(float(np.mean(np.abs(q[:, 1] - y))), 4),
        "interval_coverage": round(float(np.mean((y >= q[:, 0]) & (y <= q[:, 2]))), 4),
        "rows": int(y.shape[0]),
    }


def train(out_dir: Path, seed: int, epochs: int, version: str) -> dict[str, Any]:
    started = time.perf_counter()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thread count changes float reduction order
    try:
        city, dataset = data.generate(seed)
        is_val = dataset.week >= dataset.week.max() + 1 - VALIDATION_WEEKS
        train_rows = np.flatnonzero(~is_val)
        val_rows = np.flatnonzero(is_val)
        mean, std = fit_normalisation(numeric_features(dataset.columns.take(train_rows)))
        spec = FeatureSpec(zone_lat=city.zone_lat, zone_lon=city.zone_lon, mean=mean, std=std)
        zones_np, x_np = build_inputs(dataset.columns, spec)
        zones = torch.from_numpy(zones_np)
        x = torch.from_numpy(x_np)
        y_log = torch.from_numpy(np.log1p(dataset.target).astype(np.float32))

        arch = Architecture(n_zones=spec.n_zones, n_features=len(FEATURE_NAMES))
        net = DemandNet(arch)
        optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(seed)
        train_idx = torch.from_numpy(train_rows)
        batch_size = 512
        for _ in range(epochs):
            order = train_idx[torch.randperm(train_idx.numel(), generator=generator)]
            for start in range(0, order.numel(), batch_size):
                rows = order[start : start + batch_size]
                loss = pinball_loss(net(zones[rows], x[rows]), y_log[rows])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
        net.eval()

        val_t = torch.from_numpy(val_rows)
        tr_t = torch.from_numpy(train_rows)
        last_interval = dataset.columns.recent_rides[:, -1]
        metrics = {
            "train": _metrics(net, zones[tr_t], x[tr_t], dataset.target[train_rows]),
            "validation": _metrics(net, zones[val_t], x[val_t], dataset.target[val_rows]),
            "validation_baseline_last_interval_mae": round(
                float(np.mean(np.abs(last_interval[val_rows] - dataset.target[val_rows]))), 4
            ),
        }
        training = {
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "loss": "pinball (quantile) loss on log1p(rides)",
            "torch_version": torch.__version__,
            "numpy_version": np.__version__,
            "data": {
                "generator": "demand_predictor.data.generate",
                "zones": spec.n_zones,
                "weeks": int(dataset.week.max()) + 1,
                "validation": f"last {VALIDATION_WEEKS} weeks (time-based split)",
            },
            "metrics": metrics,
            "duration_s": round(time.perf_counter() - started, 2),
        }
        return artifact.save(out_dir, net, arch, spec, MODEL_NAME, version, training)
    finally:
        torch.set_num_threads(previous_threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demand_predictor.train", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--version", default="1.0.0", help="model version recorded")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    manifest = train(args.out, args.seed, args.epochs, args.version)
    summary = {
        "out": str(args.out),
        "sha256": manifest["weights"]["sha256"],
        "metrics": manifest["training"]["metrics"],
        "duration_s": manifest["training"]["duration_s"],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
