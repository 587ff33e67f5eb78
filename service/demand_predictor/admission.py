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
  with batch size, so one blended per-row figure would shed far too early;
* ``deadline``: the caller said, with ``X-Request-Timeout-Ms``, how long it will wait
  for the answer, and the predicted time to answer (its queue wait plus its own rows)
  exceeds what is left of that. The caller's deadline only ever shortens the server's
  latency budget: a longer one is bounded by the budget (``request_budget``).

Why ``X-Request-Timeout-Ms``, a relative budget in milliseconds: it is the shape of the
time-budget headers proxies already pass upstream (Envoy's
``x-envoy-expected-rq-timeout-ms``, gRPC's ``grpc-timeout``), it needs no clock shared
with the caller (an absolute deadline would be off by the clock skew between hosts), and
it is counted from the moment this server parsed the request line and headers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

LAG_MIN_INFLIGHT = 4
TIMEOUT_HEADER = "X-Request-Timeout-Ms"
_TIMEOUT_KEY = TIMEOUT_HEADER.lower().encode("ascii")  # ASGI and uvicorn lower-case names
MAX_TIMEOUT_MS = 3_600_000


class InvalidTimeout(ValueError):
    """An ``X-Request-Timeout-Ms`` header that is not a usable budget (HTTP 400)."""


def request_timeout(headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """The caller's time budget in seconds (``X-Request-Timeout-Ms``), None without one.

    The value is a whole number of milliseconds from 1 to ``MAX_TIMEOUT_MS``, counted
    from the request's arrival; anything else raises ``InvalidTimeout`` with a message
    that says what to send instead.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == _TIMEOUT_KEY:
            if found is not None:
                raise InvalidTimeout(f"{TIMEOUT_HEADER} is given more than once; send it once")
            found = value
    if found is None:
        return None
    raw = found.strip(b" \t")
    if raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= MAX_TIMEOUT_MS:
        return int(raw) / 1000.0
    shown = found[:40].decode("latin-1")
    raise InvalidTimeout(
        f"{TIMEOUT_HEADER} must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS} "
        f"(how long you will wait for the answer, e.g. '{TIMEOUT_HEADER}: 250'); got {shown!r}"
    )


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

    def request_budget(self, timeout_s: float | None) -> tuple[float, bool]:
        """(seconds this request may wait before its batch starts, whether the caller's
        deadline is what bounds it). A deadline longer than the server's own latency
        budget does not extend the budget."""
        if timeout_s is not None and timeout_s < self.latency_budget_s:
            return timeout_s, True
        return self.latency_budget_s, False

    def check_deadline(self, remaining_s: float, predicted_s: float) -> Rejection | None:
        """Is the caller's deadline (``remaining_s`` left of it) out of reach? ``predicted_s``:
        the predicted time to its answer, queue wait plus its own rows."""
        if predicted_s > remaining_s:
            return Rejection(
                "deadline",
                f"predicted time to answer {predicted_s * 1000:.1f} ms exceeds the "
                f"{max(remaining_s, 0.0) * 1000:.1f} ms left of the request's deadline "
                f"({TIMEOUT_HEADER})",
                1,
            )
        return None
