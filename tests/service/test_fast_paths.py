"""The hand-written request check, the early refusal in the HTTP protocol, deadlines."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from demand_predictor import artifact
from demand_predictor.app import create_app
from demand_predictor.batching import BatchingWorker, DeadlineExceeded, WorkItem
from demand_predictor.config import load_settings
from demand_predictor.features import RawColumns
from demand_predictor.metrics import Metrics
from demand_predictor.predictor import Predictor, synthetic_rows
from demand_predictor.schemas import fast_columns, request_adapter, to_columns
from fastapi.testclient import TestClient

from conftest import instance, poll
from test_api import BAD_BODIES, BAD_INSTANCES

N_ZONES = 32


def _point(lat: float, lon: float) -> dict[str, Any]:
    body = {k: v for k, v in instance().items() if k != "zone_id"}
    return {**body, "lat": lat, "lon": lon}


VALID_BODIES = [
    {"instances": [instance()]},
    {"instances": [instance(zone_id=z, hour=z % 24, day_of_week=z % 7) for z in range(32)]},
    {"instances": [instance(weather={"temperature_c": -60, "precipitation_mm_h": 500, "wind_speed_m_s": 0})]},
    {"instances": [instance(recent_rides=[0, 1_000_000, 7, 3])]},
    {"instances": [_point(40.7, -73.9), instance()]},
    {"instances": [{**instance(), "zone_id": None, "lat": 40.7, "lon": -73.9}]},  # null: pydantic
    # Features left out (taken from the online feature store): NaN columns on both paths.
    {"instances": [{"zone_id": 4, "hour": 7, "day_of_week": 1}, instance()]},
    {"instances": [{k: v for k, v in instance().items() if k != "weather"}]},
    {"instances": [{k: v for k, v in _point(40.7, -73.9).items() if k != "recent_rides"}]},
]  # fmt: skip


def _same(a: RawColumns, b: RawColumns) -> bool:
    return all(
        np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)
        and getattr(a, name).dtype == getattr(b, name).dtype
        for name in RawColumns.__dataclass_fields__
    )


@pytest.mark.parametrize("body", VALID_BODIES)
def test_fast_check_gives_the_columns_pydantic_gives(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    expected = to_columns(request_adapter(256).validate_json(raw).instances)
    fast = fast_columns(raw, 256, N_ZONES)
    if fast is None:  # allowed (pydantic decides), but only for the explicit-null case
        assert body["instances"][0].get("zone_id", 0) is None
        return
    columns, by_point = fast
    assert _same(columns, expected)
    assert by_point == any("lat" in i for i in body["instances"])


@pytest.mark.parametrize(("case", "bad"), BAD_INSTANCES, ids=[c for c, _ in BAD_INSTANCES])
def test_fast_check_never_accepts_an_invalid_instance(case: str, bad: Any) -> None:
    raw = json.dumps({"instances": [instance(), bad]}).encode()
    fast = fast_columns(raw, 256, N_ZONES)
    # Accepting is allowed only where the model-dependent check (service area) follows.
    assert fast is None or (fast[1] and case == "outside service area")


@pytest.mark.parametrize(("case", "raw"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_fast_check_never_accepts_an_invalid_body(case: str, raw: bytes) -> None:
    assert fast_columns(raw, 256, N_ZONES) is None


def test_fast_check_respects_the_row_cap() -> None:
    raw = json.dumps({"instances": [instance()] * 9}).encode()
    assert fast_columns(raw, 8, N_ZONES) is None
    assert fast_columns(raw, 9, N_ZONES) is not None


def test_get_on_predict_is_405(client: TestClient) -> None:
    assert client.get("/v1/predict").status_code == 405


def test_request_past_its_deadline_is_refused_not_computed(model_dir: Path) -> None:
    predictor = Predictor(artifact.load(model_dir, torch.device("cpu")), max_batch=8)
    metrics = Metrics(8)
    timings = {size: 0.001 * size for size in predictor.buckets}
    worker = BatchingWorker(predictor.predict, 8, metrics, 1, initial_batch_seconds=timings)

    async def scenario() -> tuple[BaseException | None, np.ndarray]:
        loop = asyncio.get_running_loop()
        late, on_time = loop.create_future(), loop.create_future()
        rows = synthetic_rows(2, predictor.spec.n_zones)
        worker.submit(WorkItem(rows, loop, late, deadline=time.perf_counter() - 0.001))
        worker.submit(WorkItem(rows, loop, on_time, deadline=time.perf_counter() + 60))
        worker.start()
        result = await asyncio.wait_for(on_time, 30)
        return await asyncio.wait_for(asyncio.gather(late, return_exceptions=True), 30), result

    (error,), result = asyncio.run(scenario())
    assert isinstance(error, DeadlineExceeded)
    assert result.shape == (2, 3)
    assert metrics.registry.get_sample_value("dp_batch_size_rows_sum") == 2  # only on_time
    poll(lambda: worker.pending_rows == 0, timeout=10)  # the late rows left the queue
    assert worker.stop(5)


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name in ("sockname", "peername") else default

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_protocol_refuses_at_header_time_and_keeps_the_connection(
    model_dir: Path, make_request: Callable[[bytes, str], bytes]
) -> None:
    pytest.importorskip("httptools")
    from demand_predictor.protocol import early_refusal_protocol
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    settings = load_settings({"DP_MODEL_DIR": str(model_dir), "DP_ACCESS_LOG": "false"})
    app = create_app(settings)  # never started: the model is "loading", so 503 not_ready
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
        body = json.dumps({"instances": [instance()]}).encode()
        protocol.data_received(make_request(body, "abc-1") + make_request(body, "abc-2"))
        await asyncio.sleep(0.05)
        protocol.connection_lost(None)
        return transport

    transport = asyncio.run(scenario())
    responses = transport.written.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 2  # both requests answered on the one connection
    for response, request_id in zip(responses, (b"abc-1", b"abc-2"), strict=True):
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"503 ")
        assert b"retry-after: 1" in head and b"x-request-id: " + request_id in head
        assert json.loads(payload)["error"] == "not_ready"
    metrics = app.state.metrics.registry
    assert metrics.get_sample_value("dp_rejections_total", {"reason": "not_ready"}) == 2
    assert (
        metrics.get_sample_value(
            "dp_http_request_duration_seconds_count",
            {"route": "/v1/predict", "method": "POST", "status": "503"},
        )
        == 2
    )


@pytest.fixture
def make_request() -> Callable[[bytes, str], bytes]:
    def build(body: bytes, request_id: str) -> bytes:
        head = (
            "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Request-ID: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return build
