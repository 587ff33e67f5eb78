"""ASGI middleware: request id, latency metric by route and status, access log.

Pure ASGI (no BaseHTTPMiddleware) to keep per-request overhead small. While the
service drains, every response carries ``Connection: close`` so clients move off this
instance before the listener closes.

Hot routes (``POST /v1/predict``) are plain ASGI handlers dispatched from here
directly: they skip FastAPI's exception/dependency layers and the router. The server
puts a second instance *in front of* the FastAPI app (``only_fast_routes``), so a
prediction does not pass through FastAPI's own middleware stack (error, telemetry and
body-limit wrappers) either; every other path goes through the FastAPI app as usual.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from demand_predictor.logs import request_id_var
from demand_predictor.metrics import Metrics

access_log = logging.getLogger("demand_predictor.access")
_ID_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
MAX_ID_LENGTH = 128

# Scope key: time.perf_counter() when the HTTP protocol parsed the request (set by the
# server's protocol, server.py; absent under other servers and in tests).
ARRIVED_KEY = "demand_predictor.arrived"
Scope = dict[str, Any]
Message = dict[str, Any]
# A hot-route handler: (scope, receive, send, started perf_counter) -> None.
FastHandler = Callable[[Scope, Any, Any, float], Awaitable[None]]


class _IdSource:
    """Generated request ids: a random 64-bit prefix per process + a counter, 32 hex
    characters. Unique like uuid4 for this purpose, without a getrandom() syscall per
    request (which also releases the GIL to the inference thread)."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _IdSource()


def clean_request_id(raw: bytes | None) -> str:
    """The client's X-Request-ID if it is short and plain, else a fresh one."""
    if raw and len(raw) <= MAX_ID_LENGTH and all(b in _ID_CHARS for b in raw):
        return raw.decode("ascii")
    return _ids.next()


class RequestRecorder:
    """Per-request bookkeeping shared by the middleware and the HTTP protocol's early
    refusals: the latency histogram by route/method/status and the access log."""

    def __init__(self, metrics: Metrics, access: bool) -> None:
        self.metrics = metrics
        self.access = access
        self._durations: dict[tuple[str, str, int], Any] = {}  # cached histogram children

    def record(self, route: str, method: str, path: str, status: int, elapsed: float) -> None:
        key = (route, method, status)
        child = self._durations.get(key)
        if child is None:
            child = self.metrics.request_duration.labels(route, method, str(status))
            self._durations[key] = child
        child.observe(elapsed)
        if self.access:
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            return clean_request_id(value)
    return _ids.next()


class RequestContextMiddleware:
    def __init__(
        self,
        app: Any,
        recorder: RequestRecorder,
        draining: Callable[[], bool],
        fast_routes: dict[tuple[str, str], FastHandler] | None = None,
        only_fast_routes: bool = False,
    ) -> None:
        """``only_fast_routes``: pass every other request to ``app`` untouched (for an
        instance in front of the FastAPI app, which has its own instance inside)."""
        self.app = app
        self.recorder = recorder
        self.draining = draining
        self.fast_routes = fast_routes or {}
        self.only_fast_routes = only_fast_routes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (
            self.only_fast_routes and (scope["method"], scope["path"]) not in self.fast_routes
        ):
            await self.app(scope, receive, send)
            return
        # From when the HTTP protocol parsed the request, where it says (server.py).
        started = scope.get(ARRIVED_KEY) or time.perf_counter()
        request_id = request_id_of(scope["headers"])
        token = request_id_var.set(request_id)
        status = 500
        id_header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append(id_header)
                if self.draining():
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        method = scope["method"]
        fast = self.fast_routes.get((method, scope["path"]))
        try:
            if fast is not None:
                await fast(scope, receive, send_with_headers, started)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            if fast is not None:
                template = scope["path"]
            else:
                route = scope.get("route")
                template = getattr(route, "path", None) or "<unmatched>"
            self.recorder.record(template, method, scope["path"], status, elapsed)
            request_id_var.reset(token)
