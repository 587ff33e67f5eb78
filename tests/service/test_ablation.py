"""The benchmark's ablation switches (DP_BATCHING, DP_FUSED_MODEL, DP_FAST_VALIDATOR,
DP_EARLY_REFUSAL) and the HTTP floor on the service's own stack: each switch takes
another path (counted here), its default keeps the service as it was, and the floor
serves its constant through the service's protocol class and front middleware."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from demand_predictor import app as app_module
from demand_predictor import artifact
from demand_predictor.app import create_app
from demand_predictor.batching import BatchingWorker, WorkItem
from demand_predictor.config import ConfigError, Settings, load_settings
from demand_predictor.metrics import Metrics
from demand_predictor.model import FusedRides, PlainRides, rides_model
from demand_predictor.predictor import Predictor, synthetic_rows
from fastapi.testclient import TestClient

from conftest import instance
from test_fast_paths import _Transport  # the fake asyncio transport the protocol tests share

SWITCHES = ("DP_BATCHING", "DP_FUSED_MODEL", "DP_FAST_VALIDATOR", "DP_EARLY_REFUSAL")


def test_switches_default_to_the_service_as_deployed() -> None:
    settings = load_settings({})
    assert (settings.batching, settings.fused_model) == (True, True)
    assert (settings.fast_validator, settings.early_refusal) == (True, True)
    off = load_settings({name: "false" for name in SWITCHES})
    assert not (off.batching or off.fused_model or off.fast_validator or off.early_refusal)


@pytest.mark.parametrize("name", SWITCHES)
def test_a_switch_takes_only_booleans(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: "sometimes"})


def test_half_precision_needs_the_fused_model() -> None:
    with pytest.raises(ConfigError, match="DP_FUSED_MODEL"):
        load_settings({"DP_HALF": "true", "DP_FUSED_MODEL": "false"})


# -- DP_BATCHING ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor(artifact.load(model_dir, torch.device("cpu")), max_batch=8)


def _batches_for_queued(predictor: Predictor, batching: bool) -> tuple[float, list[int]]:
    """Queue 4 requests (1+2+1+3 rows) before the worker starts; (batches, result rows)."""
    metrics = Metrics(8)
    timings = {size: 0.001 * size for size in predictor.buckets}
    calls: list[int] = []

    def counting(columns: Any) -> np.ndarray:
        calls.append(len(columns))
        return predictor.predict(columns)

    worker = BatchingWorker(counting, 8, metrics, 1, timings, batching=batching)

    async def scenario() -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        futures = []
        for n in (1, 2, 1, 3):
            future = loop.create_future()
            worker.submit(WorkItem(synthetic_rows(n, predictor.spec.n_zones), loop, future))
            futures.append(future)
        worker.start()
        return await asyncio.wait_for(asyncio.gather(*futures), 30)

    results = asyncio.run(scenario())
    assert [len(r) for r in results] == [1, 2, 1, 3]
    assert worker.stop(5)
    return metrics.registry.get_sample_value("dp_batch_size_rows_count") or 0.0, calls


def test_batching_off_runs_one_request_per_batch(predictor: Predictor) -> None:
    assert _batches_for_queued(predictor, batching=True) == (1, [7])
    assert _batches_for_queued(predictor, batching=False) == (4, [1, 2, 1, 3])


def test_predicted_wait_without_batching_is_one_batch_per_request(predictor: Predictor) -> None:
    timings = {1: 0.001, 2: 0.0015, 4: 0.002, 8: 0.003}  # seconds per batch of each bucket
    worker = BatchingWorker(predictor.predict, 8, Metrics(8), 1, timings, batching=False)
    loop = asyncio.new_event_loop()
    try:
        for n in (2, 2, 2):
            worker.submit(WorkItem(synthetic_rows(n, 32), loop, loop.create_future()))
        # 3 requests of 2 rows: 3 batches of the 2-row bucket.
        assert worker.predicted_wait(6) == pytest.approx(3 * 0.0015)
    finally:
        loop.close()
    batched = BatchingWorker(predictor.predict, 8, Metrics(8), 1, timings)
    assert batched.predicted_wait(6) == pytest.approx(6 * 0.003 / 8)  # one 8-row batch


# -- DP_FUSED_MODEL ---------------------------------------------------------------------


def test_fused_model_off_loads_the_eager_network(model_dir: Path) -> None:
    loaded = artifact.load(model_dir, torch.device("cpu"))
    plain = Predictor(loaded, max_batch=8, fused=False)
    fused = Predictor(loaded, max_batch=8)
    assert isinstance(plain._rides_net, PlainRides)
    assert isinstance(fused._rides_net, FusedRides)
    rows = synthetic_rows(8, loaded.manifest.features.n_zones)
    np.testing.assert_allclose(plain.predict(rows), fused.predict(rows), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="float32"):
        rides_model(loaded.net, "plain", dtype=torch.float16)


def test_the_service_runs_the_model_its_setting_names(
    make_client: Callable[..., TestClient],
) -> None:
    body = {"instances": [instance(zone_id=z) for z in range(5)]}
    answers = {}
    for value, kind in (("false", PlainRides), ("true", FusedRides)):
        client = make_client(DP_FUSED_MODEL=value)
        assert isinstance(client.app.state.runtime.predictor._rides_net, kind)
        response = client.post("/v1/predict", json=body)
        assert response.status_code == 200
        answers[value] = [row["demand"] for row in response.json()["predictions"]]
    np.testing.assert_allclose(answers["false"], answers["true"], atol=0.002)


# -- DP_FAST_VALIDATOR ------------------------------------------------------------------


class _Counting:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner(*args, **kwargs)


@pytest.mark.parametrize(("value", "fast_calls"), [("true", 1), ("false", 0)])
def test_fast_validator_off_sends_every_body_to_pydantic(
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    fast_calls: int,
) -> None:
    fast = _Counting(app_module.fast_columns)
    monkeypatch.setattr(app_module, "fast_columns", fast)
    client = make_client(DP_FAST_VALIDATOR=value)
    endpoint = client.app.state.predict_endpoint
    adapter = endpoint.adapter
    pydantic_calls = _Counting(adapter.validate_json)
    monkeypatch.setattr(endpoint, "adapter", type("A", (), {"validate_json": pydantic_calls})())
    response = client.post("/v1/predict", json={"instances": [instance()]})
    assert response.status_code == 200
    assert fast.calls == fast_calls
    assert pydantic_calls.calls == 1 - fast_calls  # the valid body skipped pydantic, or not
    bad = client.post("/v1/predict", json={"instances": [instance(hour=24)]})
    assert bad.status_code == 422  # same answer either way
    assert bad.json()["details"][0]["loc"] == ["instances", 0, "hour"]


# -- DP_EARLY_REFUSAL -------------------------------------------------------------------


def _request(body: bytes, request_id: str) -> bytes:
    head = (
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Request-ID: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _serve_two(settings: Settings, app: Any) -> tuple[type, bytes, int]:
    """Two predictions through the server's own protocol class (server.uvicorn_config);
    (the class, what it wrote, how many requests reached the ASGI app)."""
    from demand_predictor.server import uvicorn_config
    from uvicorn.server import ServerState

    config = uvicorn_config(settings, app)
    front = config.app
    reached = 0

    async def counting_app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal reached
        reached += 1
        await front(scope, receive, send)

    config.app = counting_app
    config.lifespan = "off"
    config.load()

    async def scenario() -> _Transport:
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={},
            _loop=asyncio.get_running_loop(),
        )  # fmt: skip
        transport = _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        body = json.dumps({"instances": [instance()]}).encode()
        protocol.data_received(_request(body, "abc-1") + _request(body, "abc-2"))
        await asyncio.sleep(0.1)
        protocol.connection_lost(None)
        return transport

    transport = asyncio.run(scenario())
    return config.http_protocol_class, transport.written, reached


@pytest.mark.parametrize(("value", "reached"), [("true", 0), ("false", 2)])
def test_early_refusal_off_leaves_refusals_to_the_app(
    model_dir: Path, value: str, reached: int
) -> None:
    pytest.importorskip("httptools")
    settings = load_settings(
        {"DP_MODEL_DIR": str(model_dir), "DP_ACCESS_LOG": "false", "DP_EARLY_REFUSAL": value}
    )
    app = create_app(settings)  # never started: "loading", so every prediction is 503
    protocol_class, written, app_calls = _serve_two(settings, app)
    assert protocol_class.early_refusal is (value == "true")  # type: ignore[attr-defined]
    assert app_calls == reached  # header time (no ASGI request at all), or the app
    responses = written.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 2
    for response in responses:
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"503 ") and json.loads(payload)["error"] == "not_ready"
    registry = app.state.metrics.registry
    assert registry.get_sample_value("dp_rejections_total", {"reason": "not_ready"}) == 2


# -- the floor on the service's stack ---------------------------------------------------


def test_floor_answers_its_constant_through_the_service_stack(model_dir: Path) -> None:
    pytest.importorskip("httptools")
    from demand_predictor.bench.baselines import CONSTANT_BODY, FloorEndpoint, use_floor_endpoint

    settings = load_settings({"DP_MODEL_DIR": str(model_dir), "DP_ACCESS_LOG": "false"})
    app = create_app(settings)
    endpoint = use_floor_endpoint(app)
    assert isinstance(endpoint, FloorEndpoint)
    protocol_class, written, app_calls = _serve_two(settings, app)
    assert protocol_class.early_refusal is True  # type: ignore[attr-defined]
    assert protocol_class.__name__ == "EarlyRefusalProtocol"
    assert app_calls == 2
    responses = written.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 2
    for response, request_id in zip(responses, (b"abc-1", b"abc-2"), strict=True):
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"200 ")
        assert b"x-request-id: " + request_id in head  # the service's front middleware
        assert payload == CONSTANT_BODY
    registry = app.state.metrics.registry
    labels = {"route": "/v1/predict", "method": "POST", "status": "200"}
    assert registry.get_sample_value("dp_http_request_duration_seconds_count", labels) == 2
