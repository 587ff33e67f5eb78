"""Producer for the online feature store: a synthetic live ride stream into Redis.

    python -m demand_predictor.feed [--seed 7] [--once] [--redis-url redis://127.0.0.1:6379/0]

Every ``--interval-s`` (default 900 s, the model's 15-minute interval), at the interval
boundary, it simulates the interval that just ended for every zone and writes the
feature views the service reads (key schema in feature_store.py), each with a TTL:

* ``fv:recent_rides:zone:<id>``: the ride counts of the last 4 completed intervals;
* ``fv:weather:city:<city>``: the current temperature, rain and wind.

The simulation is data.py's, run forward in time: the same city as the training data
for the same seed (zone levels, business/residential mix), hour-of-week profiles
(commute peaks, evenings, weekends), storms that arrive at random and decay (rain
raises demand up to +90 %), a per-zone AR(1) deviation and Poisson counts. Hour and
day of week are those of the interval in UTC. Deterministic: the same ``--seed`` and
the same start interval give the same values (``--at`` fixes the start time).

Connection: ``--redis-url`` or ``DP_FEED_REDIS_URL``, ``--username`` or
``DP_FEED_USERNAME``, and the password from a file (``--password-file`` or
``DP_FEED_PASSWORD_FILE``), never from the command line. Logs are JSON lines on
stderr: what was written (keys, zones, total rides, weather), never the password.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from demand_predictor import data, logs
from demand_predictor.config import _identifier, _redis_url
from demand_predictor.feature_store import (
    CREATED_TS,
    EVENT_TS,
    RIDES_FIELDS,
    WEATHER_FIELDS,
    connect,
    rides_key,
    weather_key,
)
from demand_predictor.features import HISTORY

log = logging.getLogger("demand_predictor.feed")
DEFAULT_URL = "redis://127.0.0.1:6379/0"
WARMUP_INTERVALS = 96  # one simulated day before the first write: AR and storms settle


@dataclass
class Snapshot:
    """What one write puts into the store."""

    interval_end: int  # Unix seconds: event_ts
    rides: np.ndarray  # int64 (zones, HISTORY), oldest first
    weather: tuple[float, float, float]  # temperature_c, precipitation_mm_h, wind_speed_m_s


class RideStream:
    """data.py's city and dynamics, one interval at a time."""

    def __init__(self, seed: int, n_zones: int, interval_s: int, start_interval: int) -> None:
        # The same first draws as data.generate(seed): the same city as the training data.
        self.city = data.make_city(n_zones, np.random.default_rng(seed))
        self.rng = np.random.default_rng([seed, start_interval])
        self.interval_s = interval_s
        self.next_interval = start_interval
        self.ar = np.zeros(n_zones)
        self.slow = 0.0  # slow temperature drift, mean-reverting
        self.rain = 0.0
        self.history = np.zeros((n_zones, HISTORY), dtype=np.int64)

    def step(self) -> Snapshot:
        """Simulate the interval ``next_interval`` and advance."""
        start = self.next_interval * self.interval_s
        self.next_interval += 1
        hour = np.array([(start // 3600) % 24])
        dow = np.array([(start // 86_400 + 3) % 7])  # 1970-01-01 was a Thursday
        rng = self.rng
        day_phase = 2 * np.pi * ((start % 86_400) / 86_400)
        self.slow = float(np.clip(0.995 * self.slow + rng.normal(0.0, 0.08), -15, 15))
        temperature = 12.0 + 6.0 * np.sin(day_phase - 2.0) + self.slow
        storm = rng.gamma(1.5, 3.0) if rng.random() < 0.012 else 0.0
        self.rain = 0.93 * self.rain + storm
        rain = self.rain if self.rain >= 0.1 else 0.0
        wind = float(np.clip(4.0 + 2.0 * rng.standard_normal() + 0.3 * rain, 0.0, 40.0))
        self.ar = 0.9 * self.ar + rng.normal(0.0, 0.12, self.ar.shape)
        rate = (
            self.city.base
            * data.hourly_profile(self.city.business, hour, dow)[:, 0]
            * data.weather_effect(np.array(temperature), np.array(rain), np.array(wind))
            * np.exp(self.ar)
        )
        rides = rng.poisson(rate).astype(np.int64)
        self.history = np.concatenate([self.history[:, 1:], rides[:, None]], axis=1)
        weather = (round(float(temperature), 2), round(float(rain), 2), round(wind, 2))
        return Snapshot(start + self.interval_s, self.history.copy(), weather)


def start_stream(
    seed: int, n_zones: int, interval_s: int, now: float
) -> tuple[RideStream, Snapshot]:
    """A stream whose last completed interval ends at the boundary at or before ``now``,
    after a simulated warm-up; and that interval's snapshot."""
    current = int(now // interval_s)  # the interval in progress
    stream = RideStream(seed, n_zones, interval_s, current - WARMUP_INTERVALS)
    snapshot = stream.step()
    while stream.next_interval < current:
        snapshot = stream.step()
    return stream, snapshot


def write(client: Any, snapshot: Snapshot, city: str, ttl_s: int) -> dict[str, Any]:
    """One transaction (one round trip): every zone's recent rides + the weather, with TTLs."""
    created = round(time.time(), 3)
    pipe = client.pipeline(transaction=True)
    for zone, counts in enumerate(snapshot.rides.tolist()):
        key = rides_key(zone)
        mapping: dict[str, Any] = dict(zip(RIDES_FIELDS, counts, strict=True))
        mapping[EVENT_TS] = snapshot.interval_end
        mapping[CREATED_TS] = created
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl_s)
    key = weather_key(city)
    weather: dict[str, Any] = dict(zip(WEATHER_FIELDS, snapshot.weather, strict=True))
    weather[EVENT_TS] = snapshot.interval_end
    weather[CREATED_TS] = created
    pipe.hset(key, mapping=weather)
    pipe.expire(key, ttl_s)
    started = time.perf_counter()
    pipe.execute()
    zones = int(snapshot.rides.shape[0])
    return {
        "event_ts": snapshot.interval_end,
        "interval_end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snapshot.interval_end)),
        "keys": zones + 1,
        "zones": zones,
        "rides_last_interval": int(snapshot.rides[:, -1].sum()),
        "temperature_c": snapshot.weather[0],
        "precipitation_mm_h": snapshot.weather[1],
        "wind_speed_m_s": snapshot.weather[2],
        "ttl_s": ttl_s,
        "write_ms": round((time.perf_counter() - started) * 1000, 3),
    }


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demand_predictor.feed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--redis-url",
        default=_env("DP_FEED_REDIS_URL", DEFAULT_URL),
        help="redis://host:port/db or unix:///path (env DP_FEED_REDIS_URL); no credentials",
    )
    parser.add_argument(
        "--username", default=_env("DP_FEED_USERNAME"), help="ACL user (env DP_FEED_USERNAME)"
    )
    parser.add_argument(
        "--password-file",
        default=_env("DP_FEED_PASSWORD_FILE"),
        help="file holding the password (env DP_FEED_PASSWORD_FILE)",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--zones", type=int, default=32, help="zone count (the model's)")
    parser.add_argument("--city", default="default", help="weather entity id (default 'default')")
    parser.add_argument("--ttl-s", type=int, default=3600, help="key TTL (default 3600)")
    parser.add_argument("--interval-s", type=int, default=900, help="interval (default 900)")
    parser.add_argument("--once", action="store_true", help="write the current interval, exit")
    parser.add_argument(
        "--at", type=float, default=None, help="pretend the time is this Unix time (tests)"
    )
    parser.add_argument("--timeout-s", type=float, default=5.0, help="Redis socket timeout")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        args.redis_url = _redis_url(args.redis_url) or DEFAULT_URL
        args.city = _identifier(allow_empty=False)(args.city)
    except ValueError as exc:
        parser.error(str(exc))
    if args.zones < 1 or args.ttl_s < 1 or args.interval_s < 1:
        parser.error("--zones, --ttl-s and --interval-s must be positive")
    if args.at is not None and not args.once:
        parser.error("--at needs --once")
    if args.ttl_s <= args.interval_s:
        log.warning("--ttl-s <= --interval-s: keys expire before the next write")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(args.log_level.upper())
    try:
        client = connect(args.redis_url, args.username, args.password_file, args.timeout_s)
    except ValueError as exc:  # unreadable password file
        log.error("feed not started: %s", exc, extra={"event": "feed_failed"})
        return 2
    now = time.time() if args.at is None else args.at
    stream, snapshot = start_stream(args.seed, args.zones, args.interval_s, now)
    log.info(
        "feed started",
        extra={
            "event": "feed_started",
            "redis_url": args.redis_url,
            "username": args.username,
            "password_file": args.password_file or None,
            "seed": args.seed,
            "zones": args.zones,
            "city": args.city,
            "ttl_s": args.ttl_s,
            "interval_s": args.interval_s,
        },
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    failures = 0
    while True:
        try:
            written = write(client, snapshot, args.city, args.ttl_s)
        except Exception as exc:  # noqa: BLE001 - redis-py raises many types
            failures += 1
            log.error(
                "feed write failed: %s: %s",
                type(exc).__name__,
                exc,
                extra={"event": "feed_write_failed", "event_ts": snapshot.interval_end},
            )
            if args.once:
                return 1
        else:
            log.info("feed written", extra={"event": "feed_written", **written})
            if args.once:
                return 0
        # Sleep to the next boundary (real time), then simulate the interval that ended.
        next_end = (stream.next_interval + 1) * args.interval_s
        if stop.wait(max(0.0, next_end - time.time())):
            break
        snapshot = stream.step()
    log.info("feed stopped", extra={"event": "feed_stopped", "write_failures": failures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
