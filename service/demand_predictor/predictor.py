"""Batch prediction with a loaded model: features -> padded bucket -> model -> rides.

Batches are padded up to a fixed set of sizes ("buckets": powers of two up to
max_batch) so the model only ever sees shapes that were warmed up before readiness.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from demand_predictor.artifact import LoadedModel
from demand_predictor.features import HISTORY, RawColumns, build_inputs
from demand_predictor.metrics import batch_buckets
from demand_predictor.model import to_rides


def bucket_sizes(max_batch: int) -> tuple[int, ...]:
    return tuple(int(b) for b in batch_buckets(max_batch))


def bucket_for(rows: int, buckets: tuple[int, ...]) -> int:
    for size in buckets:
        if rows <= size:
            return size
    raise ValueError(f"batch of {rows} rows exceeds the largest bucket {buckets[-1]}")


class Predictor:
    def __init__(self, model: LoadedModel, max_batch: int) -> None:
        self.model = model
        self.spec = model.manifest.features
        self.max_batch = max_batch
        self.buckets = bucket_sizes(max_batch)

    def predict(self, columns: RawColumns) -> np.ndarray:
        """(n, 3) float64 array of [lower, demand, upper] rides; n <= max_batch."""
        rows = len(columns)
        size = bucket_for(rows, self.buckets)
        zones, features = build_inputs(columns, self.spec)
        if size > rows:
            zones = np.concatenate([zones, np.zeros(size - rows, dtype=zones.dtype)])
            pad = np.zeros((size - rows, features.shape[1]), dtype=features.dtype)
            features = np.concatenate([features, pad])
        device = self.model.device
        with torch.inference_mode():
            out = self.model.net(
                torch.from_numpy(zones).to(device), torch.from_numpy(features).to(device)
            )
            rides = to_rides(out)[:rows].cpu().numpy().astype(np.float64)
        if not np.all(np.isfinite(rides)):
            raise FloatingPointError("model produced a non-finite prediction")
        return rides

    def warmup(self, rounds: int, on_batch: Callable[[], None] | None = None) -> dict[int, float]:
        """Run every bucket size ``rounds`` times on plausible synthetic rows.

        Returns the mean seconds per batch of each bucket (the first round, which pays
        one-off allocation costs, is left out when there is more than one).
        """
        timings: dict[int, float] = {}
        for size in self.buckets:
            columns = synthetic_rows(size, self.spec.n_zones)
            durations = []
            for _ in range(rounds):
                started = time.perf_counter()
                self.predict(columns)
                durations.append(time.perf_counter() - started)
                if on_batch is not None:
                    on_batch()
            steady = durations[1:] or durations
            timings[size] = sum(steady) / len(steady)
        return timings


def synthetic_rows(n: int, n_zones: int) -> RawColumns:
    idx = np.arange(n)
    return RawColumns(
        zone_id=(idx % n_zones).astype(np.int64),
        lat=np.full(n, np.nan),
        lon=np.full(n, np.nan),
        hour=(idx % 24).astype(np.int64),
        day_of_week=(idx % 7).astype(np.int64),
        temperature_c=np.full(n, 15.0),
        precipitation_mm_h=(idx % 3).astype(np.float64),
        wind_speed_m_s=np.full(n, 4.0),
        recent_rides=np.tile(np.arange(HISTORY, dtype=np.float64) + 5.0, (n, 1)),
    )
