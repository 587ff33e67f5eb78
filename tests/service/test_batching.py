from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch
from demand_predictor import artifact
from demand_predictor.admission import LAG_MIN_INFLIGHT, AdmissionController
from demand_predictor.batching import BatchingWorker, WorkItem
from demand_predictor.metrics import Metrics
from demand_predictor.model import FusedRides, to_rides
from demand_predictor.predictor import Predictor, synthetic_rows


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor(artifact.load(model_dir, torch.device("cpu")), max_batch=8)


def make_worker(predictor: Predictor, metrics: Metrics) -> BatchingWorker:
    timings = {size: 0.001 * size for size in predictor.buckets}
    return BatchingWorker(predictor.predict, 8, metrics, 1, initial_batch_seconds=timings)


def batch_count(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("dp_batch_size_rows_count") or 0.0


def test_lone_request_runs_at_once_and_queued_ones_batch(predictor: Predictor) -> None:
    metrics = Metrics(8)
    worker = make_worker(predictor, metrics)

    async def scenario() -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        futures = []
        for n in (1, 2, 3, 2, 5):  # queued before the worker starts: 8 rows fit, then 5
            future = loop.create_future()
            worker.submit(WorkItem(synthetic_rows(n, predictor.spec.n_zones), loop, future))
            futures.append(future)
        assert worker.queued_rows == 13
        worker.start()
        results = await asyncio.wait_for(asyncio.gather(*futures), 30)
        lone = loop.create_future()
        worker.submit(WorkItem(synthetic_rows(1, predictor.spec.n_zones), loop, lone))
        results.append(await asyncio.wait_for(lone, 30))
        return results

    results = asyncio.run(scenario())
    assert [r.shape for r in results] == [(1, 3), (2, 3), (3, 3), (2, 3), (5, 3), (1, 3)]
    assert batch_count(metrics) == 3  # [1+2+3+2], [5], [1]: no timer, no waiting
    assert metrics.registry.get_sample_value("dp_batch_size_rows_sum") == 14
    assert worker.stop(5)


def test_results_match_unbatched_inference(predictor: Predictor) -> None:
    rows = synthetic_rows(6, predictor.spec.n_zones)
    together = predictor.predict(rows)
    alone = np.concatenate([predictor.predict(rows.take(np.array([i]))) for i in range(6)])
    assert np.allclose(together, alone, rtol=1e-5, atol=1e-4)


def test_a_failing_batch_does_not_kill_the_worker(predictor: Predictor) -> None:
    metrics = Metrics(8)
    worker = make_worker(predictor, metrics)
    worker.start()
    poisoned = synthetic_rows(2, predictor.spec.n_zones)
    poisoned.zone_id[:] = 10_000  # bypasses validation: the embedding lookup fails

    async def scenario() -> np.ndarray:
        loop = asyncio.get_running_loop()
        bad = loop.create_future()
        worker.submit(WorkItem(poisoned, loop, bad))
        with pytest.raises(IndexError):
            await asyncio.wait_for(bad, 30)
        good = loop.create_future()
        worker.submit(WorkItem(synthetic_rows(2, predictor.spec.n_zones), loop, good))
        return await asyncio.wait_for(good, 30)

    assert asyncio.run(scenario()).shape == (2, 3)
    assert worker.stop(5)


def test_oversized_item_is_split_into_max_batch_chunks(predictor: Predictor) -> None:
    metrics = Metrics(8)
    worker = make_worker(predictor, metrics)
    worker.start()

    async def scenario() -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        worker.submit(WorkItem(synthetic_rows(20, predictor.spec.n_zones), loop, future))
        return await asyncio.wait_for(future, 30)

    assert asyncio.run(scenario()).shape == (20, 3)
    assert worker.stop(5)


def test_stop_finishes_queued_work(predictor: Predictor) -> None:
    worker = make_worker(predictor, Metrics(8))

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(4)]
        for future in futures:
            worker.submit(WorkItem(synthetic_rows(3, predictor.spec.n_zones), loop, future))
        worker.start()
        stopped = await asyncio.to_thread(worker.stop, 10)
        assert stopped
        results = await asyncio.wait_for(asyncio.gather(*futures), 5)
        return sum(r.shape == (3, 3) for r in results)

    assert asyncio.run(scenario()) == 4
    with pytest.raises(RuntimeError):
        worker.submit(WorkItem(synthetic_rows(1, 32), None, None))  # type: ignore[arg-type]


def test_admission_rules() -> None:
    control = AdmissionController(
        queue_limit=100, max_inflight=3, latency_budget_s=0.05, loop_lag_limit_s=0.01
    )
    assert control.check_inflight(2, loop_lag_s=0.0) is None
    assert control.check_inflight(3, loop_lag_s=0.0).reason == "inflight_limit"
    lagging = AdmissionController(
        queue_limit=100, max_inflight=100, latency_budget_s=0.05, loop_lag_limit_s=0.01
    )
    assert lagging.check_inflight(LAG_MIN_INFLIGHT, loop_lag_s=0.011).reason == "event_loop_lag"
    assert lagging.check_inflight(LAG_MIN_INFLIGHT - 1, loop_lag_s=0.011) is None  # descheduled
    assert control.check_queue(rows=1, pending_rows=10, predicted_wait_s=0.01) is None
    over_budget = control.check_queue(rows=1, pending_rows=60, predicted_wait_s=0.06)
    assert over_budget.reason == "latency_budget" and over_budget.retry_after_s == 1
    slow = control.check_queue(rows=1, pending_rows=90, predicted_wait_s=4.5)
    assert slow.reason == "latency_budget" and slow.retry_after_s == 5
    assert control.check_queue(rows=5, pending_rows=96, predicted_wait_s=0).reason == "queue_full"


def test_predicted_wait_uses_the_per_row_time_of_the_batches_the_queue_forms(
    predictor: Predictor,
) -> None:
    timings = {1: 0.001, 2: 0.0011, 4: 0.0012, 8: 0.0016}  # per-row cost falls with size
    worker = BatchingWorker(predictor.predict, 8, Metrics(8), 1, initial_batch_seconds=timings)
    assert worker.predicted_wait(0) == 0
    assert worker.predicted_wait(1) == pytest.approx(0.001)
    assert worker.predicted_wait(3) == pytest.approx(3 * 0.0012 / 4)
    # 20 rows = two full batches of 8 + 4 rows at the 4-row bucket's per-row time.
    assert worker.predicted_wait(20) == pytest.approx(2 * 0.0016 + 4 * 0.0012 / 4)


def test_fused_inference_matches_the_eager_network(predictor: Predictor) -> None:
    net = predictor.model.net
    generator = torch.Generator().manual_seed(3)
    for rows in (1, 5, 64):
        zones = torch.randint(0, predictor.spec.n_zones, (rows,), generator=generator)
        features = torch.randn(rows, len(predictor.spec.mean), generator=generator)
        with torch.inference_mode():
            eager = to_rides(net(zones, features))
            fused = FusedRides(net)(zones, features)
        assert torch.allclose(fused, eager, rtol=1e-5, atol=1e-5)
