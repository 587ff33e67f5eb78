"""ASGI middleware: request id, latency metric by route and status, access log.

Pure ASGI (no BaseHTTPMiddleware) to keep per-request overhead small. While the
service drains, every response carries ``Connection: close`` so clients move off this
instance before the listener closes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from demand_predictor.logs import request_id_var
from demand_predictor.metrics import Metrics

access_log = logging.getLogger("demand_predictor.access")
_ID_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
MAX_ID_LENGTH = 128

Scope = dict[str, Any]
Message = dict[str, Any]


def clean_request_id(raw: bytes | None) -> str:
    """The client's X-Request-ID if it is short and plain, else a fresh one."""
    if raw and len(raw) <= MAX_ID_LENGTH and all(b in _ID_CHARS for b in raw):
        return raw.decode("ascii")
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(
        self, app: Any, metrics: Metrics, draining: Callable[[], bool], access: bool
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.draining = draining
        self.access = access

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_id = value
                break
        request_id = clean_request_id(raw_id)
        token = request_id_var.set(request_id)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                if self.draining():
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.request_duration.labels(template, scope["method"], str(status)).observe(
                elapsed
            )
            if self.access:
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
            request_id_var.reset(token)
