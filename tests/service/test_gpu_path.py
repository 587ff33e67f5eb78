"""The GPU fast path, where it does not need CUDA: buckets and padding, buffers (pinned
only on CUDA), graph capture sequencing and fallback (with a stand-in for
``torch.cuda.graph`` that has the same static-output semantics), float16 vs float32."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from demand_predictor import artifact, data
from demand_predictor.artifact import LoadedModel
from demand_predictor.metrics import Metrics
from demand_predictor.predictor import (
    HALF_ATOL,
    HALF_RTOL,
    Predictor,
    Runner,
    bucket_for,
    bucket_sizes,
    synthetic_rows,
    uses_pinned_memory,
)


@pytest.fixture(scope="module")
def loaded(model_dir: Path) -> LoadedModel:
    return artifact.load(model_dir, torch.device("cpu"))


def test_buckets_are_powers_of_two_capped_at_max_batch() -> None:
    assert bucket_sizes(64) == (1, 2, 4, 8, 16, 32, 64)
    assert bucket_sizes(100) == (1, 2, 4, 8, 16, 32, 64, 100)
    assert bucket_sizes(1) == (1,)
    buckets = bucket_sizes(100)
    assert [bucket_for(n, buckets) for n in (1, 2, 3, 5, 33, 64, 65, 100)] == [
        1, 2, 4, 8, 64, 64, 100, 100,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="exceeds the largest bucket"):
        bucket_for(101, buckets)


def test_padding_fills_the_bucket_with_zero_rows(loaded: LoadedModel) -> None:
    predictor = Predictor(loaded, max_batch=8)
    full = synthetic_rows(8, predictor.spec.n_zones)
    predictor.predict(full)  # dirty the 8-row bucket's buffers
    rows = synthetic_rows(5, predictor.spec.n_zones)
    rides = predictor.predict(rows)
    assert rides.shape == (5, 3)
    buffers = predictor.buffers(8)
    assert (buffers.np_zones[5:] == 0).all() and (buffers.np_features[5:] == 0).all()
    alone = np.concatenate([predictor.predict(rows.take(np.array([i]))) for i in range(5)])
    np.testing.assert_allclose(rides, alone, rtol=1e-5, atol=1e-4)


def test_buffers_are_pinned_only_for_cuda(loaded: LoadedModel) -> None:
    assert uses_pinned_memory(torch.device("cuda", 0))
    assert not uses_pinned_memory(torch.device("cpu"))
    predictor = Predictor(loaded, max_batch=4)
    for size in predictor.buckets:
        buffers = predictor.buffers(size)
        assert not buffers.host_zones.is_pinned() and not buffers.host_features.is_pinned()
        # On the CPU the model reads the host buffers: no copy, no output staging.
        assert buffers.zones is buffers.host_zones and buffers.features is buffers.host_features
        assert buffers.host_out is None


def test_results_do_not_alias_reused_buffers(loaded: LoadedModel) -> None:
    predictor = Predictor(loaded, max_batch=4)
    first = predictor.predict(synthetic_rows(4, predictor.spec.n_zones))
    kept = first.copy()
    other = synthetic_rows(4, predictor.spec.n_zones)
    other.recent_rides[:] = 500.0
    predictor.predict(other)
    np.testing.assert_array_equal(first, kept)


class StandInGraphs:
    """Capture that behaves like ``capture_cuda_graph``: the runner is called at capture
    time, replays write into one static output tensor; records the call sequence."""

    def __init__(self, events: list[tuple[str, int]], fail: set[int], wrong: set[int]) -> None:
        self.events, self.fail, self.wrong = events, fail, wrong
        self.replays: dict[int, int] = {}

    def __call__(self, run: Runner) -> Runner:
        static = run()
        size = int(static.shape[0])
        self.events.append(("capture", size))
        if size in self.fail:
            raise RuntimeError("operation not permitted when stream is capturing (stand-in)")

        def replay() -> torch.Tensor:
            self.replays[size] = self.replays.get(size, 0) + 1
            static.copy_(run())
            if size in self.wrong:
                static.add_(1.0)  # a graph that does not reproduce the eager pass
            return static

        return replay


def test_warmup_captures_every_bucket_before_its_timed_rounds(loaded: LoadedModel) -> None:
    events: list[tuple[str, int]] = []
    graphs = StandInGraphs(events, fail={4}, wrong={8})
    predictor = Predictor(loaded, max_batch=16, capture=graphs)
    metrics = Metrics(16)
    fallbacks: list[tuple[int, str]] = []

    def on_fallback(size: int, why: str) -> None:
        fallbacks.append((size, why))
        metrics.cuda_graph_fallbacks.labels(str(size)).inc()

    current: list[int] = []
    rounds = 3

    def on_batch() -> None:
        events.append(("timed", current[-1]))

    # Track which bucket the timed rounds belong to through the capture events.
    original = predictor.predict

    def predict(columns):  # type: ignore[no-untyped-def]
        current.append(bucket_for(len(columns), predictor.buckets))
        return original(columns)

    predictor.predict = predict  # type: ignore[method-assign]
    timings = predictor.warmup(rounds, on_batch, on_fallback)

    assert sorted(timings) == [1, 2, 4, 8, 16]
    # Per bucket, in bucket order: capture, then its timed rounds; all before returning.
    expected: list[tuple[str, int]] = []
    for size in predictor.buckets:
        expected += [("capture", size)] + [("timed", size)] * rounds
    assert events == expected
    assert predictor.graph_buckets == [1, 2, 16]
    assert set(predictor.graph_fallbacks) == {4, 8}
    assert "stand-in" in predictor.graph_fallbacks[4]
    assert "differs from the eager pass" in predictor.graph_fallbacks[8]
    assert [size for size, _ in fallbacks] == [4, 8]
    assert metrics.registry.get_sample_value("dp_cuda_graph_fallbacks_total", {"bucket": "4"}) == 1
    # Captured buckets replay (one check + the timed rounds); failed ones run eagerly.
    assert graphs.replays[1] == 1 + rounds and 4 not in graphs.replays
    wrong_replays = graphs.replays[8]
    # Results through graphs and through the eager fallback equal a graph-free predictor.
    eager = Predictor(loaded, max_batch=16)
    for n in (1, 2, 3, 7, 16):
        rows = synthetic_rows(n, predictor.spec.n_zones)
        np.testing.assert_allclose(predictor.predict(rows), eager.predict(rows), rtol=1e-6)
    assert graphs.replays[8] == wrong_replays  # the bad graph is never used again
    # A second warm-up does not capture again.
    before = len(events)
    predictor.warmup(1)
    assert not [e for e in events[before:] if e[0] == "capture"]


def test_no_capture_on_cpu_by_default(loaded: LoadedModel) -> None:
    predictor = Predictor(loaded, max_batch=8)
    predictor.warmup(1)
    assert predictor.graph_buckets == [] and predictor.graph_fallbacks == {}


def test_float16_matches_float32_within_tolerance(loaded: LoadedModel) -> None:
    """DP_HALF: the layers in float16, the output transform in float32. On the CPU
    (torch 2.13 has float16 addmm there), over 4,096 rows of the validation data:
    |half - full| <= HALF_ATOL + HALF_RTOL * |full| (0.05 rides + 2 %)."""
    full = Predictor(loaded, max_batch=64)
    half = Predictor(loaded, max_batch=64, half=True)
    assert half._rides_net.w2.dtype == torch.float16  # really half precision
    _, dataset = data.generate(7)
    rows = dataset.columns.take(
        np.random.default_rng(3).choice(len(dataset.columns), 4096, replace=False)
    )

    def run(predictor: Predictor) -> np.ndarray:
        return np.concatenate(
            [predictor.predict(rows.take(np.arange(i, i + 64))) for i in range(0, 4096, 64)]
        )

    want, got = run(full), run(half)
    diff = np.abs(got - want)
    assert diff.max() > 0  # the two paths differ...
    np.testing.assert_allclose(got, want, rtol=HALF_RTOL, atol=HALF_ATOL)  # ...within tolerance
    # Large counts do not overflow float16 (max 65,504): the transform runs in float32.
    busy = synthetic_rows(4, full.spec.n_zones)
    busy.recent_rides[:] = 1_000_000
    big_full, big_half = full.predict(busy), half.predict(busy)
    assert np.isfinite(big_half).all() and big_full.max() > 65_504
    np.testing.assert_allclose(big_half, big_full, rtol=HALF_RTOL)


def test_runtime_warms_up_with_the_half_setting(make_client: Callable) -> None:
    client = make_client(DP_HALF="true", DP_DEVICE="cpu", DP_MAX_BATCH="8")
    ready = client.get("/readyz").json()
    assert ready["device"]["half"] is True and ready["device"]["device"] == "cpu"
    response = client.post("/v1/predict", json={"instances": [{
        "zone_id": 3, "hour": 18, "day_of_week": 2,
        "weather": {"temperature_c": 11.5, "precipitation_mm_h": 2.0, "wind_speed_m_s": 4.0},
        "recent_rides": [10, 12, 14, 15],
    }]})  # fmt: skip
    assert response.status_code == 200
    text = client.get("/metrics").text
    assert "dp_cuda_graph_buckets 0.0" in text
