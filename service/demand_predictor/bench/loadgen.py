"""Open-loop HTTP load generator (asyncio, raw HTTP/1.1 keep-alive connections).

The arrival schedule (Poisson, seeded) is computed before the phase starts. Each
request's latency is measured from its *scheduled* send time, so a slow server (or a
busy generator) cannot hide queueing delay by delaying the next send: coordinated
omission is avoided. ``lag`` records how late the generator actually sent; when it is
large, the generator itself was the bottleneck and the phase says so.

Each body may name the status it must get (``expected``: 200, or 422 for the invalid
requests of a mixed workload) and its row count (``rows``): a 422 where one is expected
counts as ``invalid_ok``, any other mismatch as an error, and ``achieved_rows_ps``
counts the rows of 200 responses. ``summary(min_tail=10)`` reports a percentile only
when at least 10 samples lie above it (p50: 20 samples, p99: 1,000, p99.9: 10,000), so
no p99 comes from a handful of requests; each summary states its sample count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class PhaseResult:
    target: str
    phase: str
    rate: float
    duration_s: float
    scheduled: int = 0
    ok: int = 0
    rejected: int = 0  # 429 / 503: refused cleanly
    errors: int = 0  # other status codes, connection errors, timeouts
    invalid_ok: int = 0  # 422 where the body was meant to be refused as invalid
    ok_rows: int = 0  # rows answered with 200
    ok_latency_s: list[float] = field(default_factory=list)
    send_lag_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self, min_tail: int | None = None) -> dict[str, Any]:
        """The phase's figures. ``min_tail``: report a percentile only when at least
        that many samples lie above it (None: always, from however few samples)."""
        lat = np.asarray(self.ok_latency_s) * 1000.0
        lag = np.asarray(self.send_lag_s) * 1000.0

        def pct(values: np.ndarray, q: float) -> float | None:
            if not values.size:
                return None
            if min_tail is not None and values.size * (100.0 - q) / 100.0 < min_tail - 1e-9:
                return None  # too few samples for this percentile
            return round(float(np.percentile(values, q)), 3)

        not_ok = self.rejected + self.errors
        return {
            "target": self.target,
            "phase": self.phase,
            "offered_rate": round(self.rate, 1),
            "duration_s": self.duration_s,
            "scheduled": self.scheduled,
            "ok": self.ok,
            "rejected": self.rejected,
            "errors": self.errors,
            "invalid_ok": self.invalid_ok,
            "latency_samples": int(lat.size),
            "achieved_ok_rps": round(self.ok / self.wall_s, 1) if self.wall_s else 0.0,
            "achieved_rows_ps": round(self.ok_rows / self.wall_s, 1) if self.wall_s else 0.0,
            "error_rate": round(self.errors / self.scheduled, 5) if self.scheduled else 0.0,
            "rejection_rate": round(self.rejected / self.scheduled, 5) if self.scheduled else 0.0,
            "not_ok_rate": round(not_ok / self.scheduled, 5) if self.scheduled else 0.0,
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "p999_ms": pct(lat, 99.9),
            "max_ms": round(float(lat.max()), 3) if lat.size else None,
            "generator_lag_p99_ms": pct(lag, 99),
        }


class _Pool:
    """Keep-alive connections; opens new ones up to ``limit``, then requests wait.

    An idle connection the server has closed (its keep-alive timeout is 5 s) or that
    has been idle longer than ``max_idle_s`` is dropped instead of reused: a request
    written to it would fail without the server ever seeing it.
    """

    def __init__(self, host: str, port: int, limit: int, max_idle_s: float = 2.0) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.max_idle_s = max_idle_s
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._idle_since: dict[int, float] = {}
        self.open = 0
        self.waiters: asyncio.Queue[None] = asyncio.Queue()

    async def acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            if self.idle:
                conn = self.idle.pop()
                since = self._idle_since.pop(id(conn), 0.0)
                if conn[0].at_eof() or time.perf_counter() - since > self.max_idle_s:
                    conn[1].close()
                    self.open -= 1
                    continue
                return conn
            if self.open < self.limit:
                self.open += 1
                try:
                    return await asyncio.open_connection(self.host, self.port)
                except BaseException:
                    self.open -= 1
                    raise
            await self.waiters.get()

    def release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], reuse: bool):
        if reuse:
            self.idle.append(conn)
            self._idle_since[id(conn)] = time.perf_counter()
        else:
            conn[1].close()
            self.open -= 1
        self.waiters.put_nowait(None)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
        self._idle_since.clear()


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _send_one(pool: _Pool, payload: bytes) -> int:
    conn = await pool.acquire()
    reader, writer = conn
    reuse = False
    try:
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await reader.readexactly(length)
        reuse = not close
        return status
    finally:
        pool.release(conn, reuse)


async def run_phase(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    rate: float,
    duration_s: float,
    target: str,
    phase: str,
    seed: int = 0,
    max_connections: int = 256,
    timeout_s: float = 10.0,
    expected: list[int] | None = None,
    rows: list[int] | None = None,
) -> PhaseResult:
    """Offer ``rate`` requests/s (Poisson arrivals) for ``duration_s``; wait for replies.

    Body ``i % len(bodies)`` is sent as request ``i``; ``expected[j]`` is the status
    body ``j`` must get (default 200) and ``rows[j]`` its row count (default 1)."""
    want = expected or [200] * len(bodies)
    sizes = rows or [1] * len(bodies)
    if len(want) != len(bodies) or len(sizes) != len(bodies):
        raise ValueError("expected and rows must have one entry per body")
    rng = np.random.default_rng(seed)
    expected = rate * duration_s
    offsets = np.cumsum(rng.exponential(1.0 / rate, int(expected * 1.3) + 20))
    offsets = offsets[offsets < duration_s]
    payloads = [build_request(host, port, path, b) for b in bodies]
    result = PhaseResult(target=target, phase=phase, rate=rate, duration_s=duration_s)
    result.scheduled = int(offsets.size)
    pool = _Pool(host, port, max_connections)
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, scheduled_at: float) -> None:
        result.send_lag_s.append(time.perf_counter() - scheduled_at)
        j = i % len(payloads)
        try:
            status = await _send_one(pool, payloads[j])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.errors += 1
            return
        if status == 200 and want[j] == 200:
            result.ok += 1
            result.ok_rows += sizes[j]
            result.ok_latency_s.append(time.perf_counter() - scheduled_at)
        elif status == 422 and want[j] == 422:
            result.invalid_ok += 1
        elif status in (429, 503):
            result.rejected += 1
        else:
            result.errors += 1

    start = time.perf_counter() + 0.05
    for i, offset in enumerate(offsets.tolist()):
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    _, pending = await asyncio.wait(tasks, timeout=timeout_s) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    result.errors += len(pending)  # timed out
    result.wall_s = max(time.perf_counter() - start, duration_s)
    pool.close()
    await asyncio.sleep(0)
    return result
