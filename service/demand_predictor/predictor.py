"""Batch prediction with a loaded model: features -> padded bucket -> model -> rides.

Batches are padded up to a fixed set of sizes ("buckets": powers of two up to
max_batch) so the model only ever sees shapes that were warmed up before readiness.

The network and its output transform run as ``FusedRides`` (same math, a third of the
eager module's per-batch cost); padded input buffers are reused batch after batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from demand_predictor.artifact import LoadedModel
from demand_predictor.features import HISTORY, RawColumns, build_inputs
from demand_predictor.metrics import batch_buckets
from demand_predictor.model import FusedRides


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
        n_features = int(self.spec.mean.shape[0])
        self._rides_net = FusedRides(model.net.eval())
        # Padded input buffers per bucket, reused batch after batch (one inference
        # thread; warm-up runs before that thread starts).
        self._zones = {s: np.zeros(s, dtype=np.int64) for s in self.buckets}
        self._features = {s: np.zeros((s, n_features), dtype=np.float32) for s in self.buckets}

    def predict(self, columns: RawColumns) -> np.ndarray:
        """(n, 3) float64 array of [lower, demand, upper] rides; n <= max_batch."""
        rows = len(columns)
        size = bucket_for(rows, self.buckets)
        zones, features = build_inputs(columns, self.spec)
        if rows and (zones.min() < 0 or zones.max() >= self.spec.n_zones):
            raise IndexError(f"zone index out of range 0..{self.spec.n_zones - 1}")
        if size > rows:  # pad with zeros (a valid zone); padded rows are dropped below
            padded_zones, padded_features = self._zones[size], self._features[size]
            padded_zones[:rows] = zones
            padded_zones[rows:] = 0
            padded_features[:rows] = features
            padded_features[rows:] = 0.0
            zones, features = padded_zones, padded_features
        device = self.model.device
        with torch.inference_mode():
            out = self._rides_net(
                torch.from_numpy(zones).to(device), torch.from_numpy(features).to(device)
            )
            rides = out[:rows].cpu().numpy().astype(np.float64)
        if not np.isfinite(rides).all():
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
