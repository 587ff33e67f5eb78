"""Open-loop load against the front door, in a background thread, with every request kept:
when it was due, how long it took, its status, which server answered (HAProxy's
X-Served-By header). Phases are cut out of one run by time, so a failure is attributed
to what was happening when it was sent. Latency counts from the scheduled send time (no
coordinated omission), like the service's own generator (demand_predictor/bench/loadgen.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field

import numpy as np

# A self-contained prediction (it carries its own features: no feature store involved).
BODY = json.dumps(
    {
        "instances": [
            {
                "zone_id": 7,
                "hour": 17,
                "day_of_week": 1,
                "weather": {"temperature_c": 6.5, "precipitation_mm_h": 1.2, "wind_speed_m_s": 4.0},
                "recent_rides": [12, 15, 18, 22],
            }
        ]
    }
).encode()


@dataclass(frozen=True)
class Sample:
    due: float  # time.monotonic() when it was scheduled
    latency: float  # seconds from `due` to the full answer (or the error)
    status: int  # HTTP status; 0 for a connection error or a timeout
    server: str  # X-Served-By, "" when absent
    error: str = ""  # for status 0: the exception, and whether the connection was reused
    lag: float = 0.0  # seconds from `due` until this generator started sending it (its own delay)


@dataclass
class Window:
    name: str
    start: float
    end: float = 0.0


@dataclass
class Load:
    host: str
    port: int
    rate: float = 83.0  # 5,000 requests/minute
    # Idle keep-alive connections are dropped after this long, well before HAProxy closes
    # them (timeout http-keep-alive, 15 s): reusing one the server is closing at that very
    # moment fails with no response, a client-side race every HTTP client avoids this way
    # (httpx's keepalive_expiry is 5 s too).
    keepalive_expiry_s: float = 5.0
    path: str = "/v1/predict"
    samples: list[Sample] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _inflight: int = 0

    def start(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        time.sleep(1.0)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def phase(self, name: str) -> Window:
        window = Window(name, time.monotonic())
        self.windows.append(window)
        return window

    @property
    def inflight(self) -> int:
        return self._inflight

    async def _run(self) -> None:
        rng = np.random.default_rng(7)
        request = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        tasks: set[asyncio.Task[None]] = set()
        due = time.monotonic()
        while not self._stop.is_set():
            due += float(rng.exponential(1.0 / self.rate))
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self._one(request, due, idle))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        for _, writer, _ in idle:
            writer.close()

    def _take_idle(self, idle: list) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:  # type: ignore[type-arg]
        """The most recently used idle connection that has not expired (others are closed)."""
        now = time.monotonic()
        while idle:
            reader, writer, since = idle.pop()
            if now - since < self.keepalive_expiry_s:
                return reader, writer
            writer.close()
        return None

    async def _one(self, request: bytes, due: float, idle: list) -> None:  # type: ignore[type-arg]
        lag = time.monotonic() - due
        self._inflight += 1
        status, server, reuse, conn, error = 0, "", False, None, ""
        reused = False
        try:
            conn = self._take_idle(idle)
            reused = conn is not None
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
            reader, writer = conn
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-served-by":
                    server = value.strip().decode()
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            reuse = not close
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            status = 0
            error = f"{type(exc).__name__} on a {'reused' if reused else 'new'} connection"
        finally:
            if conn is not None:
                if reuse:
                    idle.append((conn[0], conn[1], time.monotonic()))
                else:
                    conn[1].close()
            self._inflight -= 1
        self.samples.append(Sample(due, time.monotonic() - due, status, server, error, lag))

    # -- figures ---------------------------------------------------------------------
    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.due < end]

    def figures(self, window: Window) -> dict[str, object]:
        chosen = self.between(window.start, window.end or time.monotonic())
        ok = np.asarray([s.latency for s in chosen if s.status == 200]) * 1000
        failed = [s for s in chosen if s.status != 200]
        lags = np.asarray([s.lag for s in chosen]) * 1000
        return {
            "phase": window.name,
            "requests": len(chosen),
            "failed": len(failed),
            "statuses": sorted({s.status for s in failed}),
            "errors": sorted({s.error for s in failed if s.error}),
            "p50_ms": round(float(np.percentile(ok, 50)), 1) if ok.size else None,
            "p99_ms": round(float(np.percentile(ok, 99)), 1) if ok.size else None,
            "seconds": round((window.end or time.monotonic()) - window.start, 1),
            # The generator's own delay (counted in the latencies above): when it is large,
            # this machine's load, not the service, made those requests late.
            "generator_lag_p99_ms": round(float(np.percentile(lags, 99)), 1) if lags.size else None,
        }
