"""Online feature store (Redis): the recent history and weather a request may leave out.

Naming follows an online feature store (a later move to Feast keeps the names): entity
``zone``; feature view ``recent_rides`` (per zone: the ride counts of the last
``HISTORY`` completed 15-minute intervals, what features.py turns into the history
features) and feature view ``weather`` (per city: the synthetic city, like real
15-minute weather, has one weather for all zones, so one key per batch instead of one
per zone). One Redis hash per entity, written by the producer (feed.py) with a TTL:

    fv:recent_rides:zone:<zone_id>  rides_t-4 rides_t-3 rides_t-2 rides_t-1  (oldest first)
                                    event_ts created_ts
    fv:weather:city:<city>          temperature_c precipitation_mm_h wind_speed_m_s
                                    event_ts created_ts

``event_ts`` is the end of the last interval the values describe (Unix seconds),
``created_ts`` when the producer wrote them. Two ages matter: the key's TTL (set by the
producer: after it the key is gone, a *miss*) and ``DP_FEATURE_STORE_MAX_AGE_S`` (set by
the service: values whose ``event_ts`` is older are *stale*). Both are answered, not
refused: the row is predicted (a miss with the model's training means, the feature
normalisation constants of the manifest) and marked ``"stale": true``.

Reads happen off the event loop, on one fetcher thread in front of the inference
worker: it takes every request waiting for features, reads every key they need in ONE
round trip (a redis-py pipeline of HMGETs), fills the missing columns (values the
client sent win), and hands the requests to the inference worker. The connection has
socket timeouts (``DP_FEATURE_STORE_TIMEOUT_MS``) and no retries, so a lookup never
waits longer than that. A failed round trip marks the store down
(``dp_feature_store_up`` 0): requests that need it get 503 at once (``Retry-After``) and
the thread probes it (PING) every ``DP_FEATURE_STORE_RETRY_S`` until it answers again.
Requests that carry their own features never touch this path, and readiness does not
depend on it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demand_predictor.batching import WorkerStopped, WorkItem, deliver
from demand_predictor.features import (
    FEATURE_NAMES,
    HISTORY,
    FeatureSpec,
    RawColumns,
    resolve_zones,
)
from demand_predictor.metrics import Metrics

log = logging.getLogger("demand_predictor.feature_store")

ENTITY = "zone"
RIDES_VIEW = "recent_rides"
WEATHER_VIEW = "weather"
RIDES_FIELDS = tuple(f"rides_t-{k}" for k in range(HISTORY, 0, -1))  # oldest first
WEATHER_FIELDS = ("temperature_c", "precipitation_mm_h", "wind_speed_m_s")
EVENT_TS = "event_ts"
CREATED_TS = "created_ts"
# Accepted value ranges: the same as the request schema's (schemas.py).
MAX_RIDES = 1_000_000
WEATHER_RANGES = ((-60.0, 60.0), (0.0, 500.0), (0.0, 120.0))


def rides_key(zone: int) -> str:
    return f"fv:{RIDES_VIEW}:{ENTITY}:{zone}"


def weather_key(city: str) -> str:
    return f"fv:{WEATHER_VIEW}:city:{city}"


class FeatureStoreError(Exception):
    """A round trip to the store failed; ``kind`` is timeout, connection or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class FeatureStoreUnavailable(Exception):
    """Delivered to requests that need the store while it is down (HTTP 503)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def read_password(path: str) -> str | None:
    """The password in ``path`` (first line, stripped), or None without a path."""
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the password file {path}: {exc.strerror}") from exc
    return text.splitlines()[0].strip() if text.strip() else ""


def connect(url: str, username: str = "", password_file: str = "", timeout_s: float = 0.025):
    """A redis-py client for ``url``: bounded waits, no retries. Only the fetcher thread
    uses it, so its pool holds one connection."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        username=username or None,
        password=read_password(password_file),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        max_connections=4,
        health_check_interval=0,
        client_name="demand-predictor",
    )


def _error_kind(exc: BaseException) -> str:
    import redis

    if isinstance(exc, redis.TimeoutError | socket.timeout | TimeoutError):
        return "timeout"
    if isinstance(exc, redis.ConnectionError | OSError):
        return "connection"
    return "error"


def _floats(values: list[Any]) -> np.ndarray:
    """Redis replies (bytes or None) as float64, NaN for absent or unparsable values."""
    out = np.full(len(values), np.nan)
    for i, raw in enumerate(values):
        if raw is not None:
            try:
                out[i] = float(raw)
            except ValueError:
                pass
    return out


@dataclass(frozen=True)
class Lookup:
    """What one round trip found. ``zones`` sorted and unique; NaN where absent/invalid."""

    zones: np.ndarray  # int64 (k,)
    rides: np.ndarray  # float64 (k, HISTORY)
    rides_ts: np.ndarray  # float64 (k,)
    weather: np.ndarray  # float64 (3,)
    weather_ts: float


def resp_command(*args: str) -> bytes:
    """One command in the Redis protocol (RESP): what redis-py's packer produces."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class FeatureStore:
    """Reads the two feature views, every key of a batch in one round trip.

    A pipeline in the protocol sense: the HMGET commands are written at once (packed
    once per zone and cached: packing is a third of redis-py's per-command cost), then
    the replies are read in order, over one pooled redis-py connection.
    """

    def __init__(self, client: Any, city: str) -> None:
        self.client = client
        self.city = city
        self._rides_fields = (*RIDES_FIELDS, EVENT_TS)
        self._weather_command = resp_command("HMGET", weather_key(city), *WEATHER_FIELDS, EVENT_TS)
        self._commands: dict[int, bytes] = {}
        self.round_trips = 0  # writes to the socket (tests check one per batch)

    def _rides_command(self, zone: int) -> bytes:
        command = self._commands.get(zone)
        if command is None:
            command = self._commands[zone] = resp_command(
                "HMGET", rides_key(zone), *self._rides_fields
            )
        return command

    def _round_trip(self, packed: bytes, count: int) -> list[Any]:
        from redis.exceptions import ResponseError

        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            self.round_trips += 1
            connection.send_packed_command([packed])
            replies: list[Any] = []
            for _ in range(count):
                try:
                    replies.append(connection.read_response())
                except ResponseError:  # e.g. WRONGTYPE: that key is unusable, not the store
                    replies.append(None)
        except BaseException:
            connection.disconnect()  # replies may be left unread: never reuse it
            raise
        finally:
            pool.release(connection)
        return replies

    def lookup(self, zones: np.ndarray, weather: bool) -> Lookup:
        """One round trip: HMGET of every zone's recent rides (+ the city's weather)."""
        zones = np.unique(zones.astype(np.int64))
        commands = [self._rides_command(zone) for zone in zones.tolist()]
        if weather:
            commands.append(self._weather_command)
        try:
            replies = self._round_trip(b"".join(commands), len(commands))
        except Exception as exc:
            raise FeatureStoreError(_error_kind(exc), f"{type(exc).__name__}: {exc}") from exc
        replies = [r if isinstance(r, list) else [None] * (HISTORY + 1) for r in replies]
        k = zones.shape[0]
        table = _floats([v for reply in replies[:k] for v in reply]).reshape(k, HISTORY + 1)
        rides, rides_ts = table[:, :HISTORY], table[:, HISTORY]
        # Invalid counts (negative, huge, fractional) make the whole row absent.
        bad = ~np.all((rides >= 0) & (rides <= MAX_RIDES) & (rides == np.floor(rides)), axis=1)
        bad |= ~np.isfinite(rides_ts)
        rides[bad] = np.nan
        rides_ts[bad] = np.nan
        weather_values = np.full(3, np.nan)
        weather_ts = math.nan
        if weather:
            found = _floats(replies[k][:4])
            values, ts = found[:3], float(found[3])
            if math.isfinite(ts) and all(
                low <= v <= high for v, (low, high) in zip(values, WEATHER_RANGES, strict=True)
            ):
                weather_values, weather_ts = values, ts
        return Lookup(zones, rides, rides_ts, weather_values, weather_ts)

    def ping(self) -> None:
        try:
            self.round_trips += 1
            self.client.ping()
        except Exception as exc:
            raise FeatureStoreError(_error_kind(exc), f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection
            self.client.close()


def training_means(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(recent rides (HISTORY,), weather (3,)) at the model's training means: what a
    missing key is replaced with. The means are those of the model's own features
    (log1p of rides and rain), mapped back to raw values."""
    mean = spec.mean.astype(np.float64)
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    rides = np.expm1([mean[index[f"log1p_rides_t-{k}"]] for k in range(HISTORY, 0, -1)])
    weather = np.array(
        [
            mean[index["temperature_c"]],
            np.expm1(mean[index["log1p_precipitation_mm_h"]]),
            mean[index["wind_speed_m_s"]],
        ]
    )
    return np.maximum(rides, 0.0), np.maximum(weather, [-60.0, 0.0, 0.0])


@dataclass
class FeatureRequest:
    """A request waiting for store features, then for the inference worker."""

    item: WorkItem  # its columns hold NaN where the store fills in
    spec: FeatureSpec  # of the model version the request started on
    need_rides: np.ndarray  # bool (n,)
    need_weather: np.ndarray  # bool (n,)
    stale: np.ndarray | None = None  # bool (n,), set once filled
    zones: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def rows(self) -> int:
        return self.item.rows


class FeatureFetcher:
    """The fetcher thread: requests that need features -> one round trip -> the worker."""

    def __init__(
        self,
        store: FeatureStore,
        submit: Callable[[WorkItem], None],
        metrics: Metrics,
        max_age_s: float,
        retry_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._submit = submit
        self._metrics = metrics
        self.max_age_s = max_age_s
        self.retry_s = retry_s
        self._clock = clock
        self._queue: deque[FeatureRequest] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self.up = True  # optimistic until the first round trip says otherwise
        self.last_error = ""
        self._last_round_trip = 0.0
        self._fallbacks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._rows = {
            (view, result): metrics.feature_store_rows.labels(view, result)
            for view in (RIDES_VIEW, WEATHER_VIEW)
            for result in ("hit", "stale", "miss")
        }
        metrics.feature_store_up.set(1)
        self._thread = threading.Thread(target=self._run, name="feature-fetcher", daemon=True)

    # -- event loop side ----------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.retry_s))

    def unavailable(self) -> FeatureStoreUnavailable:
        return FeatureStoreUnavailable(
            f"the online feature store is unavailable ({self.last_error or 'down'}); "
            "send weather and recent_rides with the request, or retry",
            self.retry_after_s,
        )

    def submit(self, request: FeatureRequest) -> None:
        """Queue a request; raises FeatureStoreUnavailable while the store is down."""
        if not self.up:
            raise self.unavailable()
        with self._cond:
            if self._stopping:
                raise WorkerStopped("feature fetcher is stopped")
            self._queue.append(request)
            self._cond.notify()

    def stop(self, timeout: float) -> bool:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.store.close()
        return not self._thread.is_alive()

    # -- the fetcher thread -------------------------------------------------------
    def _take(self) -> list[FeatureRequest] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                wait = self._last_round_trip + self.retry_s - time.monotonic()
                if wait <= 0:
                    return []  # idle: time to probe
                self._cond.wait(wait)
            if not self._queue:
                return None  # stopping and nothing left
            taken = list(self._queue)
            self._queue.clear()
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            try:
                if taken:
                    self._serve(taken)
                else:
                    self._probe()
            except BaseException as exc:  # the thread must survive anything
                log.exception("unexpected error in the feature fetcher")
                self._fail(taken or [], exc)

    def _mark(self, error: FeatureStoreError | None) -> None:
        self._last_round_trip = time.monotonic()
        if error is None:
            if not self.up:
                log.info("feature store reachable again", extra={"event": "feature_store_up"})
            self.up = True
            self.last_error = ""
            self._metrics.feature_store_up.set(1)
            return
        self._metrics.feature_store_errors.labels(error.kind).inc()
        if self.up:
            log.error(
                "feature store unavailable: %s",
                error,
                extra={"event": "feature_store_down", "kind": error.kind},
            )
        self.up = False
        self.last_error = f"{error.kind}: {error}"
        self._metrics.feature_store_up.set(0)

    def _probe(self) -> None:
        try:
            self.store.ping()
        except FeatureStoreError as exc:
            self._mark(exc)
            return
        self._mark(None)

    def _fail(self, requests: list[FeatureRequest], exc: BaseException) -> None:
        deliver([r.item for r in requests], [exc] * len(requests))

    def _serve(self, requests: list[FeatureRequest]) -> None:
        for request in requests:
            request.zones = resolve_zones(request.item.columns, request.spec)
        zones = np.concatenate([r.zones[r.need_rides] for r in requests])
        want_weather = any(bool(r.need_weather.any()) for r in requests)
        started = time.perf_counter()
        try:
            found = self.store.lookup(zones, want_weather)
        except FeatureStoreError as exc:
            self._mark(exc)
            self._fail(requests, self.unavailable())
            return
        self._metrics.feature_store_lookup.observe(time.perf_counter() - started)
        self._mark(None)
        now = self._clock()
        for request in requests:
            request.stale = self._fill(request, found, now)
            try:
                self._submit(request.item)
            except WorkerStopped as exc:
                self._fail([request], exc)

    def _fallback(self, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
        key = id(spec)
        cached = self._fallbacks.get(key)
        if cached is None or len(self._fallbacks) > 8:
            self._fallbacks = {key: training_means(spec)}
            cached = self._fallbacks[key]
        return cached

    def _fill(self, request: FeatureRequest, found: Lookup, now: float) -> np.ndarray:
        """Fill the request's missing columns in place; the rows' stale flags."""
        columns: RawColumns = request.item.columns
        stale = np.zeros(len(columns), dtype=bool)
        mean_rides, mean_weather = self._fallback(request.spec)
        rows = np.flatnonzero(request.need_rides)
        if rows.size:
            at = np.searchsorted(found.zones, request.zones[rows])
            values = found.rides[at]
            age = now - found.rides_ts[at]
            missing = np.isnan(found.rides_ts[at])
            old = ~missing & (age > self.max_age_s)
            values[missing] = mean_rides
            columns.recent_rides[rows] = values
            stale[rows] = missing | old
            self._count(RIDES_VIEW, rows.size, int(missing.sum()), int(old.sum()))
        rows = np.flatnonzero(request.need_weather)
        if rows.size:
            missing = math.isnan(found.weather_ts)
            old = not missing and now - found.weather_ts > self.max_age_s
            values = mean_weather if missing else found.weather
            columns.temperature_c[rows] = values[0]
            columns.precipitation_mm_h[rows] = values[1]
            columns.wind_speed_m_s[rows] = values[2]
            stale[rows] |= missing or old
            self._count(WEATHER_VIEW, rows.size, rows.size * missing, rows.size * old)
        n_stale = int(stale.sum())
        if n_stale:
            self._metrics.stale_predictions.inc(n_stale)
        return stale

    def _count(self, view: str, rows: int, missing: int, old: int) -> None:
        if missing:
            self._rows[view, "miss"].inc(missing)
        if old:
            self._rows[view, "stale"].inc(old)
        if rows - missing - old:
            self._rows[view, "hit"].inc(rows - missing - old)
