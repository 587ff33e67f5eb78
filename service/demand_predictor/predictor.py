"""Batch prediction with a loaded model: features -> padded bucket -> model -> rides.

Batches are padded up to a fixed set of sizes ("buckets": powers of two up to
max_batch, on every device) so the model only ever sees shapes that were warmed up
before readiness, and on CUDA each shape can be one captured CUDA graph.

The network and its output transform run as ``FusedRides`` (same math, a third of the
eager module's per-batch cost; ``fused=False`` runs the eager module instead, for the
benchmark's ablation). Each bucket owns its input/output buffers, reused
batch after batch (one inference thread; warm-up runs before that thread starts):

* CPU: the network reads the host buffers directly.
* CUDA: host buffers are pinned (page-locked) so the host->device copies are
  asynchronous DMA (``non_blocking=True``); the device-side inputs have fixed
  addresses, which is what lets warm-up capture the bucket's forward pass as a CUDA
  graph (one launch instead of one per kernel). A capture that fails, or whose replay
  does not reproduce the eager result, leaves that bucket eager: logged, counted in
  ``dp_cuda_graph_fallbacks_total``. One stream synchronisation per batch, after the
  device->host copy of the result.

Warm-up sequence per bucket: one eager pass (fills the buffers, initialises kernels),
then on CUDA the graph capture and its check against that pass, then ``rounds`` timed
passes through the final path (graph or eager). The graph capture is injectable
(``capture=``) so the sequencing and the fallback are tested on a CPU machine.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from demand_predictor.artifact import LoadedModel
from demand_predictor.features import HISTORY, RawColumns, build_inputs
from demand_predictor.metrics import batch_buckets
from demand_predictor.model import rides_model

log = logging.getLogger("demand_predictor.predictor")

Runner = Callable[[], torch.Tensor]  # one forward pass of a bucket on its own buffers
Capture = Callable[[Runner], Runner]  # eager runner -> replaying runner (or raises)

# fp16 vs fp32 (DP_HALF) agreement, checked by the tests on the CPU and by the GPU
# check on CUDA: |half - full| <= HALF_ATOL + HALF_RTOL * |full|, in rides.
HALF_RTOL = 2e-2
HALF_ATOL = 5e-2
# A captured graph must reproduce the eager pass it replaces to this tolerance.
GRAPH_RTOL = 1e-4
GRAPH_ATOL = 1e-4


def bucket_sizes(max_batch: int) -> tuple[int, ...]:
    return tuple(int(b) for b in batch_buckets(max_batch))


def bucket_for(rows: int, buckets: tuple[int, ...]) -> int:
    for size in buckets:
        if rows <= size:
            return size
    raise ValueError(f"batch of {rows} rows exceeds the largest bucket {buckets[-1]}")


def uses_pinned_memory(device: torch.device) -> bool:
    """Pinned host buffers only pay off (and only exist) with a CUDA device."""
    return device.type == "cuda"


@dataclass
class BucketBuffers:
    """Fixed buffers of one bucket: host inputs (numpy views of torch tensors), device
    inputs (the same tensors on the CPU) and, on CUDA, the host copy of the output."""

    size: int
    host_zones: torch.Tensor
    host_features: torch.Tensor
    zones: torch.Tensor
    features: torch.Tensor
    host_out: torch.Tensor | None
    np_zones: np.ndarray
    np_features: np.ndarray

    @staticmethod
    def allocate(size: int, n_features: int, device: torch.device) -> BucketBuffers:
        pin = uses_pinned_memory(device)
        host_zones = torch.zeros(size, dtype=torch.int64, pin_memory=pin)
        host_features = torch.zeros((size, n_features), dtype=torch.float32, pin_memory=pin)
        if device.type == "cpu":
            zones, features, host_out = host_zones, host_features, None
        else:
            zones = torch.zeros(size, dtype=torch.int64, device=device)
            features = torch.zeros((size, n_features), dtype=torch.float32, device=device)
            host_out = torch.zeros((size, 3), dtype=torch.float32, pin_memory=pin)
        return BucketBuffers(
            size,
            host_zones,
            host_features,
            zones,
            features,
            host_out,
            host_zones.numpy(),
            host_features.numpy(),
        )


def capture_cuda_graph(run: Runner, warmup_iters: int = 3) -> Runner:
    """Capture ``run`` as a CUDA graph; the returned runner replays it.

    As the CUDA graph docs require: a few eager iterations on a side stream first
    (lazy initialisation, cuBLAS workspaces), then the capture. The replay writes the
    output into the same (static) tensor every time: callers copy it out before the
    next replay, which the predictor does.
    """
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup_iters):
            run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = run()

    def replay() -> torch.Tensor:
        graph.replay()
        return static_out

    replay.graph = graph  # type: ignore[attr-defined]  # keeps the graph alive with it
    return replay


class Predictor:
    def __init__(
        self,
        model: LoadedModel,
        max_batch: int,
        half: bool = False,
        capture: Capture | None = None,
        graphs: bool = True,
        fused: bool = True,
    ) -> None:
        """``capture``: how to turn a bucket's eager runner into a graph runner; default
        ``capture_cuda_graph`` on CUDA and none (eager) on the CPU; ``graphs=False``:
        eager everywhere (the GPU check compares both). ``fused=False``: the eager
        network op by op (``PlainRides``, ``DP_FUSED_MODEL=false``) instead of
        ``FusedRides``."""
        self.model = model
        self.device = model.device
        self.cuda = self.device.type == "cuda"
        self.spec = model.manifest.features
        self.max_batch = max_batch
        self.buckets = bucket_sizes(max_batch)
        self.half = half
        self.dtype = torch.float16 if half else torch.float32
        n_features = int(self.spec.mean.shape[0])
        self.fused = fused
        self._rides_net = rides_model(
            model.net.eval(), "fused" if fused else "plain", dtype=self.dtype
        )
        self._buffers = {
            s: BucketBuffers.allocate(s, n_features, self.device) for s in self.buckets
        }
        self._runners: dict[int, Runner] = {s: self._eager_runner(s) for s in self.buckets}
        if not graphs:
            capture = None
        elif capture is None and self.cuda:
            capture = capture_cuda_graph
        self._capture = capture
        self.graph_buckets: list[int] = []
        self.graph_fallbacks: dict[int, str] = {}

    def _eager_runner(self, size: int) -> Runner:
        buffers, net = self._buffers[size], self._rides_net
        return lambda: net(buffers.zones, buffers.features)

    def buffers(self, size: int) -> BucketBuffers:
        return self._buffers[size]

    def predict(self, columns: RawColumns) -> np.ndarray:
        """(n, 3) float64 array of [lower, demand, upper] rides; n <= max_batch."""
        rows = len(columns)
        size = bucket_for(rows, self.buckets)
        zones, features = build_inputs(columns, self.spec)
        if rows and (zones.min() < 0 or zones.max() >= self.spec.n_zones):
            raise IndexError(f"zone index out of range 0..{self.spec.n_zones - 1}")
        buffers = self._buffers[size]
        # Pad with zeros (a valid zone); padded rows are dropped below.
        buffers.np_zones[:rows] = zones
        buffers.np_zones[rows:] = 0
        buffers.np_features[:rows] = features
        buffers.np_features[rows:] = 0.0
        with torch.inference_mode():
            if self.cuda:
                buffers.zones.copy_(buffers.host_zones, non_blocking=True)
                buffers.features.copy_(buffers.host_features, non_blocking=True)
                out = self._runners[size]()
                assert buffers.host_out is not None
                buffers.host_out.copy_(out, non_blocking=True)
                torch.cuda.current_stream(self.device).synchronize()
                result = buffers.host_out.numpy()[:rows]
            else:
                result = self._runners[size]()[:rows].numpy()
            rides = result.astype(np.float64)  # a copy: the buffers are reused
        if not np.isfinite(rides).all():
            raise FloatingPointError("model produced a non-finite prediction")
        return rides

    def _try_graph(self, size: int, reference: np.ndarray, columns: RawColumns) -> str:
        """Replace the bucket's eager runner by a captured graph; '' or why not."""
        assert self._capture is not None
        eager = self._runners[size]
        try:
            with torch.inference_mode():
                self._runners[size] = self._capture(eager)
            replayed = self.predict(columns)
            if not np.allclose(replayed, reference, rtol=GRAPH_RTOL, atol=GRAPH_ATOL):
                worst = float(np.max(np.abs(replayed - reference)))
                raise ValueError(
                    f"graph replay differs from the eager pass (max |diff| {worst:.3g})"
                )
        except Exception as exc:  # noqa: BLE001 - any failure: stay eager for this bucket
            self._runners[size] = eager
            return f"{type(exc).__name__}: {exc}"
        return ""

    def warmup(
        self,
        rounds: int,
        on_batch: Callable[[], None] | None = None,
        on_graph_fallback: Callable[[int, str], None] | None = None,
        capture_lock: threading.Lock | None = None,
    ) -> dict[int, float]:
        """Prepare and run every bucket size before readiness (see the module docstring).

        Returns the mean seconds per batch of each bucket (the first timed round, which
        pays one-off allocation costs, is left out when there is more than one).
        ``on_batch`` is called after each timed round, ``on_graph_fallback(size, why)``
        when a bucket stays eager because its graph could not be used. ``capture_lock``
        is held around each graph capture: a hot load warms up while another version
        serves, and a CUDA graph capture must not overlap the serving thread's work.
        """
        timings: dict[int, float] = {}
        for size in self.buckets:
            columns = synthetic_rows(size, self.spec.n_zones)
            prepared = size in self.graph_buckets or size in self.graph_fallbacks
            if self._capture is not None and not prepared:  # once per bucket
                reference = self.predict(columns)
                with capture_lock or contextlib.nullcontext():
                    why = self._try_graph(size, reference, columns)
                if why:
                    self.graph_fallbacks[size] = why
                    log.warning(
                        "CUDA graph not used for batch bucket %d, running it eagerly: %s",
                        size,
                        why,
                        extra={"event": "cuda_graph_fallback", "bucket": size},
                    )
                    if on_graph_fallback is not None:
                        on_graph_fallback(size, why)
                else:
                    self.graph_buckets.append(size)
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
