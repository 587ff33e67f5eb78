"""The caller's deadline: ``X-Request-Timeout-Ms`` in admission control and the queue."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from demand_predictor.admission import (
    MAX_TIMEOUT_MS,
    TIMEOUT_HEADER,
    AdmissionController,
    InvalidTimeout,
    request_timeout,
)
from fastapi.testclient import TestClient

from conftest import instance, poll

BODY = {"instances": [instance()]}


def rejections(client: TestClient, reason: str) -> float:
    registry = client.app.state.metrics.registry
    return registry.get_sample_value("dp_rejections_total", {"reason": reason}) or 0.0


def batch_rows(client: TestClient) -> float:
    registry = client.app.state.metrics.registry
    return registry.get_sample_value("dp_batch_size_rows_sum") or 0.0


def slow_model(client: TestClient, seconds_per_batch: float = 1.0) -> None:
    """Make the worker predict ``seconds_per_batch`` per batch (its service-time EWMA)."""
    worker = client.app.state.runtime.worker
    for size in worker.batch_seconds:
        worker.batch_seconds[size] = seconds_per_batch


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(b"250", 0.25), (b" 40 ", 0.04), (b"1", 0.001), (str(MAX_TIMEOUT_MS).encode(), 3600.0)],
)
def test_valid_timeouts(raw: bytes, seconds: float) -> None:
    headers = [(b"content-type", b"application/json"), (b"x-request-timeout-ms", raw)]
    assert request_timeout(headers) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "raw",
    [b"0", b"-5", b"+5", b"1.5", b"5ms", b"", b"3600001", b"99999999999", b"1e3", "１２".encode()],
)
def test_invalid_timeouts_say_what_to_send(raw: bytes) -> None:
    with pytest.raises(InvalidTimeout) as error:
        request_timeout([(b"x-request-timeout-ms", raw)])
    message = str(error.value)
    assert TIMEOUT_HEADER in message and "whole number of milliseconds from 1 to 3600000" in message


def test_no_header_is_no_deadline_and_a_repeated_one_is_refused() -> None:
    assert request_timeout([(b"content-type", b"application/json")]) is None
    with pytest.raises(InvalidTimeout, match="more than once"):
        request_timeout([(b"x-request-timeout-ms", b"10"), (b"x-request-timeout-ms", b"20")])


def test_a_deadline_only_ever_shortens_the_latency_budget() -> None:
    control = AdmissionController(
        queue_limit=100, max_inflight=10, latency_budget_s=0.05, loop_lag_limit_s=0.02
    )
    assert control.request_budget(None) == (0.05, False)
    assert control.request_budget(0.01) == (0.01, True)
    assert control.request_budget(60.0) == (0.05, False)  # never extends the budget
    refused = control.check_deadline(remaining_s=0.010, predicted_s=0.012)
    assert refused is not None and refused.reason == "deadline" and refused.retry_after_s == 1
    assert TIMEOUT_HEADER in refused.detail
    assert control.check_deadline(remaining_s=0.010, predicted_s=0.008) is None


@pytest.mark.parametrize("path", ["/v1/predict", "/v2/models/demand-predictor/infer"])
def test_a_malformed_header_is_a_clear_400(client: TestClient, path: str) -> None:
    response = client.post(path, json=BODY, headers={TIMEOUT_HEADER: "soon"})
    assert response.status_code == 400, response.text
    body = response.json()
    message = body["message"] if path == "/v1/predict" else body["error"]
    assert "X-Request-Timeout-Ms must be a whole number of milliseconds" in message
    assert "'soon'" in message
    if path == "/v1/predict":
        assert body["error"] == "invalid_header"
        assert body["details"][0]["loc"] == ["header", TIMEOUT_HEADER]
    assert rejections(client, "invalid_header") == 1


def test_a_deadline_the_predicted_wait_exceeds_is_refused_at_once(client: TestClient) -> None:
    slow_model(client, 1.0)  # one more row: predicted 1 s to answer
    before = batch_rows(client)
    started = time.perf_counter()
    refused = client.post("/v1/predict", json=BODY, headers={TIMEOUT_HEADER: "100"})
    assert time.perf_counter() - started < 1.0  # refused, not waited out
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "deadline"
    assert "left of the request's deadline (X-Request-Timeout-Ms)" in refused.json()["message"]
    assert refused.headers["retry-after"] == "1"
    assert batch_rows(client) == before  # never computed
    assert rejections(client, "deadline") == 1
    # A generous deadline is served; so is a request without one (the server's own
    # budget looks at the queue ahead, which is empty).
    assert (
        client.post("/v1/predict", json=BODY, headers={TIMEOUT_HEADER: "5000"}).status_code == 200
    )
    assert client.post("/v1/predict", json=BODY).status_code == 200


def test_the_same_deadline_applies_to_the_inference_protocol(client: TestClient) -> None:
    slow_model(client, 1.0)
    request = {
        "inputs": [
            {"name": "zone_id", "shape": [1], "datatype": "INT64", "data": [3]},
            {"name": "hour", "shape": [1], "datatype": "INT64", "data": [18]},
            {"name": "day_of_week", "shape": [1], "datatype": "INT64", "data": [2]},
            {"name": "temperature_c", "shape": [1], "datatype": "FP64", "data": [11.5]},
            {"name": "precipitation_mm_h", "shape": [1], "datatype": "FP64", "data": [2.0]},
            {"name": "wind_speed_m_s", "shape": [1], "datatype": "FP64", "data": [4.0]},
            {"name": "recent_rides", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]},
        ]
    }
    path = "/v2/models/demand-predictor/infer"
    refused = client.post(path, json=request, headers={TIMEOUT_HEADER: "100"})
    assert refused.status_code == 429 and refused.json()["error"].startswith("deadline: ")
    assert refused.headers["retry-after"] == "1"
    assert client.post(path, json=request, headers={TIMEOUT_HEADER: "5000"}).status_code == 200


def test_the_protocol_refuses_a_doomed_deadline_at_header_time(
    client: TestClient, make_request: Callable[..., bytes]
) -> None:
    pytest.importorskip("httptools")
    from demand_predictor.protocol import early_refusal_protocol
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from test_fast_paths import _Transport

    app = client.app
    slow_model(client, 1.0)
    protocol_class = early_refusal_protocol(app.state.predict_endpoint, app.state.request_recorder)

    async def scenario() -> _Transport:
        config = Config(app.state.asgi_front, lifespan="off", access_log=False)
        config.load()
        protocol = protocol_class(
            config=config,
            server_state=ServerState(),
            app_state={},
            _loop=asyncio.get_running_loop(),
        )
        transport = _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(make_request(json.dumps(BODY).encode(), "late-1", "100"))
        await asyncio.sleep(0.05)
        protocol.connection_lost(None)
        return transport

    head, _, payload = asyncio.run(scenario()).written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 ") and b"x-request-id: late-1" in head
    assert json.loads(payload)["error"] == "deadline"
    assert rejections(client, "deadline") == 1


@pytest.fixture
def make_request() -> Callable[..., bytes]:
    def build(body: bytes, request_id: str, timeout_ms: str) -> bytes:
        head = (
            "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Request-ID: {request_id}\r\n{TIMEOUT_HEADER}: {timeout_ms}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return build


@contextmanager
def worker_held(client: TestClient) -> Iterator[Callable[..., dict[str, Any]]]:
    """The inference worker blocked inside a batch (a first request holds it) while the
    test queues more requests; released on exit. Yields ``send(headers) -> result``,
    which posts in a thread; results fill in once the worker is released."""
    worker = client.app.state.runtime.worker
    threads: list[threading.Thread] = []

    def send(headers: dict[str, str] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def post() -> None:
            result["response"] = client.post("/v1/predict", json=BODY, headers=headers or {})

        thread = threading.Thread(target=post, daemon=True)
        threads.append(thread)
        thread.start()
        return result

    worker.batch_lock.acquire()
    try:
        first = send()
        poll(lambda: worker.pending_rows > worker.queued_rows, timeout=10)  # running, held
        yield send
    finally:
        worker.batch_lock.release()
        for thread in threads:
            thread.join(30)
    response: httpx.Response = first["response"]
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("budget_ms", "timeout_ms", "reason"),
    [
        ("2000", "150", "deadline"),  # the caller's deadline passes in the queue
        ("150", "60000", "latency_budget"),  # a longer deadline does not extend the budget
    ],
)
def test_a_request_whose_deadline_passes_in_the_queue_is_not_computed(
    make_client: Callable[..., TestClient], budget_ms: str, timeout_ms: str, reason: str
) -> None:
    client = make_client(DP_LATENCY_BUDGET_MS=budget_ms)
    worker = client.app.state.runtime.worker
    before = batch_rows(client)
    with worker_held(client) as send:
        late = send({TIMEOUT_HEADER: timeout_ms})
        poll(lambda: worker.queued_rows == 1, timeout=10)  # admitted and queued
        time.sleep(0.4)  # past 150 ms
    response = late["response"]
    assert response.status_code == 429, response.text
    assert response.json()["error"] == reason
    assert "not started within the" in response.json()["message"]
    assert rejections(client, reason) == 1
    assert batch_rows(client) == before + 1  # only the request that held the worker


def test_a_queued_request_within_its_deadline_is_served(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(DP_LATENCY_BUDGET_MS="5000")
    worker = client.app.state.runtime.worker
    with worker_held(client) as send:
        patient = send({TIMEOUT_HEADER: "4000"})
        poll(lambda: worker.queued_rows == 1, timeout=10)
        time.sleep(0.2)
    assert patient["response"].status_code == 200
    assert rejections(client, "deadline") == 0
