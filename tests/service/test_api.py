from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from demand_predictor import artifact
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import instance


def predict(client: TestClient, body: Any, **kwargs: Any):
    return client.post("/v1/predict", json=body, **kwargs)


def test_single_prediction_has_interval_and_version(client: TestClient) -> None:
    response = predict(client, {"instances": [instance()]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "demand-predictor" and body["model_version"] == "1.0.0"
    (row,) = body["predictions"]
    assert row["model_version"] == "1.0.0"
    assert 0.0 <= row["lower"] <= row["demand"] <= row["upper"]
    assert 5.0 < row["demand"] < 40.0  # recent history 10..15 rides at evening rush


def test_many_instances_and_rain_raises_demand(client: TestClient) -> None:
    dry = instance(weather={"temperature_c": 15, "precipitation_mm_h": 0, "wind_speed_m_s": 3})
    wet = instance(weather={"temperature_c": 15, "precipitation_mm_h": 15, "wind_speed_m_s": 3})
    rows = [dry, wet] + [instance(zone_id=z) for z in range(10)]
    response = predict(client, {"instances": rows})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 12
    assert predictions[1]["demand"] > predictions[0]["demand"]


def test_lat_lon_equals_its_zone(client: TestClient, model_dir) -> None:
    spec = artifact.read_manifest(model_dir).features
    point = instance(zone_id=None, lat=float(spec.zone_lat[3]), lon=float(spec.zone_lon[3]))
    del point["zone_id"]
    a, b = predict(client, {"instances": [instance(), point]}).json()["predictions"]
    assert a == b


BAD_INSTANCES: list[tuple[str, dict[str, Any]]] = [
    ("hour out of range", instance(hour=24)),
    ("negative hour", instance(hour=-1)),
    ("day out of range", instance(day_of_week=7)),
    ("hour as string", instance(hour="18")),
    ("hour as float", instance(hour=18.5)),
    ("hour as bool", instance(hour=True)),
    ("huge zone", instance(zone_id=10**30)),
    ("zone beyond model", instance(zone_id=32)),
    ("negative rides", instance(recent_rides=[1, 2, -3, 4])),
    ("too few rides", instance(recent_rides=[1, 2, 3])),
    ("too many rides", instance(recent_rides=[1, 2, 3, 4, 5])),
    ("float rides", instance(recent_rides=[1, 2, 3, 4.5])),
    ("huge rides", instance(recent_rides=[1, 2, 3, 10**12])),
    ("rides not a list", instance(recent_rides="1,2,3,4")),
    ("rain negative", instance(weather={"temperature_c": 1, "precipitation_mm_h": -1, "wind_speed_m_s": 1})),
    ("temperature absurd", instance(weather={"temperature_c": 1e300, "precipitation_mm_h": 0, "wind_speed_m_s": 1})),
    ("weather missing field", instance(weather={"temperature_c": 1, "precipitation_mm_h": 0})),
    ("weather not object", instance(weather=[1, 2, 3])),
    ("unknown field", instance(surge=True)),
    ("zone and lat/lon", instance(lat=40.7, lon=-73.9)),
    ("no location", {k: v for k, v in instance().items() if k != "zone_id"}),
    ("lat only", {**{k: v for k, v in instance().items() if k != "zone_id"}, "lat": 40.7}),
    ("outside service area", {**{k: v for k, v in instance().items() if k != "zone_id"}, "lat": 51.5, "lon": -0.1}),
    ("latitude impossible", {**{k: v for k, v in instance().items() if k != "zone_id"}, "lat": 91.0, "lon": 0.0}),
    ("null instance", None),
    ("instance is a number", 5),
]  # fmt: skip


@pytest.mark.parametrize(("case", "bad"), BAD_INSTANCES, ids=[c for c, _ in BAD_INSTANCES])
def test_invalid_instances_get_422_with_location(client: TestClient, case: str, bad: Any) -> None:
    response = predict(client, {"instances": [instance(), bad]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["details"] and all(d["msg"] for d in body["details"])
    assert any(d["loc"][:2] == ["instances", 1] for d in body["details"]), body


BAD_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"instances please"),
    ("truncated json", b'{"instances": [{"zone_id": 1'),
    ("top-level array", b"[]"),
    ("empty object", b"{}"),
    ("no instances", b'{"instances": []}'),
    ("instances not list", b'{"instances": {"zone_id": 1}}'),
    ("NaN literal", json.dumps({"instances": [instance(weather={"temperature_c": float("nan"), "precipitation_mm_h": 0, "wind_speed_m_s": 1})]}).encode()),
    ("Infinity literal", json.dumps({"instances": [instance(weather={"temperature_c": float("inf"), "precipitation_mm_h": 0, "wind_speed_m_s": 1})]}).encode()),
    ("invalid utf-8", b'{"instances": [\xff\xfe]}'),
    ("empty body", b""),
    ("deep nesting", b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "raw"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_invalid_bodies_get_422(client: TestClient, case: str, raw: bytes) -> None:
    response = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


def test_worker_survives_all_bad_input(client: TestClient) -> None:
    for _, bad in BAD_INSTANCES:
        predict(client, {"instances": [bad]})
    for _, raw in BAD_BODIES:
        client.post("/v1/predict", content=raw)
    assert predict(client, {"instances": [instance()]}).status_code == 200


def test_row_cap(make_client: Callable[..., TestClient]) -> None:
    client = make_client(DP_MAX_ROWS="8")
    assert predict(client, {"instances": [instance()] * 8}).status_code == 200
    response = predict(client, {"instances": [instance()] * 9})
    assert response.status_code == 422
    assert response.json()["details"][0]["type"] == "too_long"


def test_oversized_body_413_by_content_length(make_client: Callable[..., TestClient]) -> None:
    client = make_client(DP_MAX_BODY_BYTES="2048")
    response = predict(client, {"instances": [instance()] * 50})
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "DP_MAX_BODY_BYTES" in response.json()["message"]


def test_oversized_streamed_body_413_without_content_length(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(DP_MAX_BODY_BYTES="2048")
    chunk = json.dumps({"instances": [instance()] * 50}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(chunk), 512):
            yield chunk[start : start + 512]

    response = client.post("/v1/predict", content=chunks())  # chunked: no Content-Length
    assert response.status_code == 413


def test_queue_limit_gives_429_with_retry_after(make_client: Callable[..., TestClient]) -> None:
    client = make_client(DP_QUEUE_LIMIT="4", DP_MAX_ROWS="16")
    assert predict(client, {"instances": [instance()] * 4}).status_code == 200
    response = predict(client, {"instances": [instance()] * 5})
    assert response.status_code == 429
    assert response.json()["error"] == "queue_full"
    assert int(response.headers["retry-after"]) >= 1


def test_behind_a_load_balancer_a_shed_request_is_a_retryable_503(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(DP_QUEUE_LIMIT="4", DP_MAX_ROWS="16", DP_SHED_STATUS="503")
    response = predict(client, {"instances": [instance()] * 5})
    assert response.status_code == 503
    assert response.json()["error"] == "queue_full"
    assert int(response.headers["retry-after"]) >= 1


def test_model_metadata(client: TestClient, manifest: dict[str, Any]) -> None:
    response = client.get("/v1/models/demand-predictor")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "1.0.0"
    assert body["weights"]["sha256"] == manifest["weights"]["sha256"]
    assert body["features"]["names"] == manifest["features"]["names"]
    assert body["training"]["metrics"] == manifest["training"]["metrics"]
    assert body["serving"]["batch_buckets"][-1] == 64
    missing = client.get("/v1/models/other-model")
    assert missing.status_code == 404 and missing.json()["error"] == "model_not_found"


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/v2/health/live", "/v2/health/ready"])
def test_health_endpoints(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_request_id_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/livez", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/livez")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = client.get("/livez", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500


def test_metrics_expose_the_named_series(client: TestClient, manifest: dict[str, Any]) -> None:
    predict(client, {"instances": [instance()] * 3})
    predict(client, {"instances": [instance(hour=99)]})
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "dp_http_request_duration_seconds",
        "dp_queue_wait_seconds",
        "dp_inference_duration_seconds",
        "dp_batch_size_rows",
        "dp_queue_depth_rows",
        "dp_rejections",
        "dp_model_info",
        "dp_ready",
    ):
        assert name in families, name
    samples = [s for f in families.values() for s in f.samples]
    assert any(
        s.name == "dp_http_request_duration_seconds_count"
        and s.labels == {"route": "/v1/predict", "method": "POST", "status": "200"}
        for s in samples
    )
    assert any(
        s.name == "dp_rejections_total" and s.labels["reason"] == "invalid" and s.value >= 1
        for s in samples
    )
    info = [s for s in samples if s.name == "dp_model_info"]
    assert info[0].labels["sha256"] == manifest["weights"]["sha256"]
    assert info[0].labels["version"] == "1.0.0"
    batch_sum = next(s for s in samples if s.name == "dp_batch_size_rows_sum")
    assert batch_sum.value >= 3
