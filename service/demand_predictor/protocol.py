"""uvicorn's httptools protocol, plus refusal of doomed predictions at header time.

Under overload the cheapest useful thing a server can do with a request it will refuse
is to refuse it without building an ASGI request: no scope for the app, no task, no
middleware, no body. As soon as the request line and headers of ``POST /v1/predict``
are parsed, this protocol asks the endpoint's side-effect-free ``precheck`` (not ready,
event-loop lag, in-flight limit, queue full, predicted wait past the budget or past the
caller's ``X-Request-Timeout-Ms`` deadline) and, if it refuses, writes the same 429/503
response the endpoint would send (JSON body, ``Retry-After``, ``X-Request-ID``), counts
it in the same metrics, and lets the parser skip the body. That costs a fraction of a
full request, so a saturated server still refuses surplus load fast enough to keep the
requests it accepts on time.

Only refusals that keep the connection open take this path; draining (which closes
connections), HTTP/1.0, pipelined and upgrade requests go through the app as usual.
Every request also gets its arrival time in the scope (``ARRIVED_KEY``), so latency
metrics and the queue deadline count from when the request was parsed, not from when
its task first ran.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from demand_predictor.logs import request_id_var
from demand_predictor.middleware import ARRIVED_KEY, RequestRecorder, request_id_of

PREDICT_PATH = "/v1/predict"
_PREDICT_URL = PREDICT_PATH.encode("ascii")


class _Answered:
    """Stands in for uvicorn's RequestResponseCycle of a request refused early: its
    response is complete, so the parser's body callbacks ignore the rest of it."""

    response_complete = True
    disconnected = False
    keep_alive = True

    def __init__(self) -> None:
        self.message_event = asyncio.Event()  # set() by connection_lost


def early_refusal_protocol(
    endpoint: Any, recorder: RequestRecorder, refuse: bool = True
) -> type[HttpToolsProtocol]:
    """A protocol class bound to the app's ``PredictEndpoint`` and ``RequestRecorder``.

    ``refuse=False`` (``DP_EARLY_REFUSAL=false``, the benchmark's ablation): the same
    class, arrival stamp included, without the header-time refusal; every request
    goes to the app, which refuses it there if it must.
    """
    answered = _Answered()

    class EarlyRefusalProtocol(HttpToolsProtocol):
        early_refusal = refuse

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope[ARRIVED_KEY] = time.perf_counter()  # type: ignore[literal-required]

        def on_headers_complete(self) -> None:
            parser = self.parser
            if (
                refuse
                and self.url == _PREDICT_URL
                and parser.get_method() == b"POST"
                and (self.cycle is None or self.cycle.response_complete)
                and not self.pipeline
                and parser.get_http_version() == "1.1"
                and parser.should_keep_alive()
                and not parser.should_upgrade()
            ):
                refusal = endpoint.precheck_headers(self.headers)
                if refusal is not None and refusal.reason != "draining":
                    self._refuse(refusal)
                    return
            super().on_headers_complete()

        def _refuse(self, refusal: Any) -> None:
            started = self.scope[ARRIVED_KEY]  # type: ignore[literal-required]
            request_id = request_id_of(self.headers)
            endpoint.count(refusal.reason)
            body = refusal.body
            content = [STATUS_LINE[refusal.status]]
            for name, value in self.server_state.default_headers:
                content += [name, b": ", value, b"\r\n"]
            content += [
                b"content-type: application/json\r\ncontent-length: ",
                str(len(body)).encode("ascii"),
                b"\r\n",
            ]
            for name, value in refusal.headers:
                content += [name, b": ", value, b"\r\n"]
            content += [b"x-request-id: ", request_id.encode("ascii"), b"\r\n\r\n", body]
            self.transport.write(b"".join(content))
            self.cycle = answered  # type: ignore[assignment]
            token = request_id_var.set(request_id)
            try:
                recorder.record(
                    PREDICT_PATH,
                    "POST",
                    PREDICT_PATH,
                    refusal.status,
                    time.perf_counter() - started,
                )
            finally:
                request_id_var.reset(token)
            self.on_response_complete()  # keep-alive timer, pipelining, request count

    return EarlyRefusalProtocol
