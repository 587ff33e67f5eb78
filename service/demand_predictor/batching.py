"""Timer-free dynamic batching: one inference thread drains the queue when it is free.

Requests enqueue a ``WorkItem`` and await its future. The worker thread sleeps on a
condition variable; when woken it takes every queued item that fits in ``max_batch``
rows, runs them as one batch, and resolves the futures on their event loop. A lone
request therefore starts immediately (no batching window); during a spike, requests
that arrive while a batch runs form the next batch by themselves.

The worker never dies on bad data: any exception in a batch is delivered to the
futures of that batch, and the loop continues.

A request may carry a deadline (arrival + latency budget). One still queued past its
deadline is not computed: its future gets ``DeadlineExceeded`` (the service answers
429), so an overloaded worker spends its time on requests that can still be on time.

A request may also carry its own ``predict`` (the model version it started with, see
runtime.py): a batch only joins requests of one version, so during a hot swap requests
that started on the old version finish on it while new ones run on the new one.
``batch_lock`` is held while a batch runs; a loader that must have the device to
itself for a moment (a CUDA graph capture) takes it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from demand_predictor.features import RawColumns
from demand_predictor.metrics import Metrics

log = logging.getLogger("demand_predictor.batching")
EWMA_ALPHA = 0.2


class DeadlineExceeded(Exception):
    """The request waited in the queue past its deadline; it was not computed."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(f"waited {waited_s * 1000:.1f} ms for the inference worker")
        self.waited_s = waited_s


class WorkerStopped(RuntimeError):
    """The inference worker is stopping (the service drains): nothing new is accepted."""


Predict = Callable[[RawColumns], np.ndarray]


@dataclass
class WorkItem:
    columns: RawColumns
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[np.ndarray]
    enqueued_at: float = field(default_factory=time.perf_counter)
    deadline: float | None = None  # time.perf_counter() value; None: no deadline
    predict: Predict | None = None  # the model version to run on; None: the worker's

    @property
    def rows(self) -> int:
        return len(self.columns)


def _deliver(results: list[tuple[asyncio.Future[np.ndarray], np.ndarray | BaseException]]) -> None:
    """Runs on the event loop: resolve futures whose requester still waits."""
    for future, outcome in results:
        if future.done():  # requester went away (cancelled)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def deliver(items: list[WorkItem], outcomes: list[np.ndarray | BaseException]) -> None:
    """From any thread: resolve each item's future on its own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for item, outcome in zip(items, outcomes, strict=True):
        by_loop.setdefault(item.loop, []).append((item.future, outcome))
    for loop, results in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, results)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass


class BatchingWorker:
    def __init__(
        self,
        predict: Predict,
        max_batch: int,
        metrics: Metrics,
        torch_threads: int,
        initial_batch_seconds: dict[int, float],
        batching: bool = True,
    ) -> None:
        """``batching=False`` (``DP_BATCHING=false``, the benchmark's ablation): every
        batch is one request, whatever is queued behind it."""
        self._predict = predict
        self._batching = batching
        self._max_batch = max_batch
        self._metrics = metrics
        self._torch_threads = torch_threads
        self._items: deque[WorkItem] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._queued_rows = 0
        self._running_rows = 0
        # EWMA of batch duration per bucket size (seeded by warm-up timings).
        self.batch_seconds = dict(sorted(initial_batch_seconds.items()))
        self._buckets = tuple(self.batch_seconds)
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self.batch_lock = threading.Lock()

    # -- called from the event loop -------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows queued plus rows in the batch now running."""
        return self._queued_rows + self._running_rows

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def bucket_of(self, rows: int) -> int:
        for size in self._buckets:
            if rows <= size:
                return size
        return self._buckets[-1]

    def row_seconds(self, rows: int) -> float:
        """Recent service time per row for a batch of ``rows`` rows."""
        size = self.bucket_of(rows)
        return self.batch_seconds[size] / size

    def predicted_wait(self, pending_rows: int) -> float:
        """Seconds until ``pending_rows`` queued rows are served: the full batches
        they form at their per-row time, plus the remainder at its own. Without
        batching: one batch per request, at the batch time of their mean size."""
        if not self._batching:
            requests = len(self._items) + (1 if self._running_rows else 0)
            if not requests or not pending_rows:
                return 0.0
            return requests * self.batch_seconds[self.bucket_of(-(-pending_rows // requests))]
        full, rest = divmod(pending_rows, self._max_batch)
        wait = full * self._max_batch * self.row_seconds(self._max_batch)
        return wait + rest * self.row_seconds(rest) if rest else wait

    def submit(self, item: WorkItem) -> None:
        with self._cond:
            if self._stopping:
                raise WorkerStopped("inference worker is stopped")
            self._items.append(item)
            self._queued_rows += item.rows
            self._metrics.queue_depth.set(self._queued_rows)
            self._cond.notify()

    def stop(self, timeout: float) -> bool:
        """Finish what is queued, then end the thread. True if it ended in time."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the worker thread ----------------------------------------------------------
    def _take_batch(self) -> tuple[list[WorkItem], list[WorkItem]] | None:
        """(batch to run, items past their deadline) or None when stopped and empty."""
        with self._cond:
            while not self._items and not self._stopping:
                self._cond.wait()
            if not self._items:
                return None  # stopping and nothing left
            now = time.perf_counter()
            items = self._items
            batch: list[WorkItem] = []
            late: list[WorkItem] = []
            rows = 0
            late_rows = 0
            model: Predict | None = None
            while items:
                item = items[0]
                if item.deadline is not None and now > item.deadline:
                    late.append(items.popleft())
                    late_rows += item.rows
                elif not batch:
                    batch.append(items.popleft())
                    rows += item.rows
                    model = item.predict
                elif (
                    self._batching
                    and rows + item.rows <= self._max_batch
                    and (item.predict is model or item.predict == model)
                ):
                    batch.append(items.popleft())
                    rows += item.rows
                else:  # full, another model version's, or batching is off
                    break
            self._queued_rows -= rows + late_rows
            self._running_rows = rows
            self._metrics.queue_depth.set(self._queued_rows)
            return batch, late

    def _run(self) -> None:
        import torch  # set per thread: OpenMP thread settings are thread-local

        torch.set_num_threads(self._torch_threads)
        while True:
            taken = self._take_batch()
            if taken is None:
                return
            batch, late = taken
            try:
                if late:
                    self._refuse_late(late)
                if batch:
                    self._run_batch(batch)
            except BaseException:  # the worker must survive anything
                log.exception("unexpected error in inference worker")
            finally:
                self._running_rows = 0

    def _refuse_late(self, late: list[WorkItem]) -> None:
        now = time.perf_counter()
        outcomes: list[np.ndarray | BaseException] = []
        for item in late:
            waited = now - item.enqueued_at
            self._metrics.queue_wait.observe(waited)
            outcomes.append(DeadlineExceeded(waited))
        self._deliver(late, outcomes)

    def _deliver(self, items: list[WorkItem], outcomes: list[np.ndarray | BaseException]) -> None:
        deliver(items, outcomes)

    def _run_batch(self, batch: list[WorkItem]) -> None:
        started = time.perf_counter()
        for item in batch:
            self._metrics.queue_wait.observe(started - item.enqueued_at)
        outcomes: list[np.ndarray | BaseException]
        try:
            columns = RawColumns.concat([item.columns for item in batch])
            with self.batch_lock:
                rides = self._predict_chunked(columns, batch[0].predict or self._predict)
            outcomes = []
            offset = 0
            for item in batch:
                outcomes.append(rides[offset : offset + item.rows])
                offset += item.rows
        except Exception as exc:  # delivered to the waiting requests
            log.exception("batch of %d request(s) failed", len(batch))
            outcomes = [exc] * len(batch)
        elapsed = time.perf_counter() - started
        rows = sum(item.rows for item in batch)
        if rows <= self._max_batch:
            size = self.bucket_of(rows)
            self.batch_seconds[size] += EWMA_ALPHA * (elapsed - self.batch_seconds[size])
            self._metrics.ewma_row_seconds.labels(str(size)).set(self.batch_seconds[size] / size)
        self._metrics.inference_duration.observe(elapsed)
        self._metrics.batch_size.observe(rows)
        self._deliver(batch, outcomes)

    def _predict_chunked(self, columns: RawColumns, predict: Predict) -> np.ndarray:
        rows = len(columns)
        if rows <= self._max_batch:
            return predict(columns)
        parts = [
            predict(columns.take(np.arange(start, min(start + self._max_batch, rows))))
            for start in range(0, rows, self._max_batch)
        ]
        return np.concatenate(parts)
