"""Admission control: refuse work that cannot finish within the latency budget.

A request is refused (HTTP 429 + Retry-After) when
* ``event_loop_lag``: the event loop runs more than ``loop_lag_limit`` late while at
  least ``LAG_MIN_INFLIGHT`` requests are in progress, i.e. HTTP handling (not
  inference) is the bottleneck and requests already queue inside the loop, where no
  counter sees them. A late loop with (almost) nothing in progress was descheduled
  (a noisy neighbour, a GC pass), not overloaded: refusing would help nobody;
* ``inflight_limit``: too many prediction requests are already being handled;
* ``queue_full``: its rows would push the queue past ``queue_limit``;
* ``latency_budget``: the predicted queue wait exceeds the latency budget. The wait is
  the queue depth (rows queued or running) times the recent (EWMA) service time per
  row *at the batch size that queue will be served in*: per-row cost falls steeply
  with batch size, so one blended per-row figure would shed far too early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LAG_MIN_INFLIGHT = 4


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str
    retry_after_s: int


class AdmissionController:
    def __init__(
        self,
        queue_limit: int,
        max_inflight: int,
        latency_budget_s: float,
        loop_lag_limit_s: float,
    ) -> None:
        self.loop_lag_limit_s = loop_lag_limit_s
        self.queue_limit = queue_limit
        self.max_inflight = max_inflight
        self.latency_budget_s = latency_budget_s

    def check_inflight(self, inflight: int, loop_lag_s: float) -> Rejection | None:
        """Before reading the body: is there room for one more request?"""
        if loop_lag_s > self.loop_lag_limit_s and inflight >= LAG_MIN_INFLIGHT:
            return Rejection(
                "event_loop_lag",
                f"event loop is {loop_lag_s * 1000:.1f} ms behind (limit "
                f"{self.loop_lag_limit_s * 1000:.0f} ms)",
                1,
            )
        if inflight >= self.max_inflight:
            return Rejection(
                "inflight_limit",
                f"{inflight} requests in progress (limit {self.max_inflight})",
                1,
            )
        return None

    def check_queue(
        self, rows: int, pending_rows: int, predicted_wait_s: float
    ) -> Rejection | None:
        """After validation: can ``rows`` more rows be served within the budget?"""
        if pending_rows + rows > self.queue_limit:
            return Rejection(
                "queue_full",
                f"queue holds {pending_rows} rows; {rows} more exceed the limit {self.queue_limit}",
                1,
            )
        predicted_wait = predicted_wait_s
        if predicted_wait > self.latency_budget_s:
            return Rejection(
                "latency_budget",
                f"predicted queue wait {predicted_wait * 1000:.1f} ms exceeds the "
                f"{self.latency_budget_s * 1000:.0f} ms budget",
                max(1, math.ceil(predicted_wait)),
            )
        return None
