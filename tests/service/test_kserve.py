"""Open Inference Protocol (KServe v2): metadata, readiness, inference and its errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from demand_predictor import artifact
from fastapi.testclient import TestClient

from conftest import RedisServer, instance

INFER = "/v2/models/demand-predictor/infer"
WEATHER = ("temperature_c", "precipitation_mm_h", "wind_speed_m_s")
# The protocol's tensor datatypes.
DATATYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
DATATYPES |= {"FP16", "FP32", "FP64", "BYTES"}


def tensors(rows: list[dict[str, Any]], nested: bool = False) -> list[dict[str, Any]]:
    """The v2 inputs carrying the same rows as /v1/predict instances."""
    n = len(rows)
    inputs: list[dict[str, Any]] = []
    location = ("zone_id",) if "zone_id" in rows[0] else ("lat", "lon")
    for name in (*location, "hour", "day_of_week"):
        datatype = "INT64" if name in ("zone_id", "hour", "day_of_week") else "FP64"
        inputs.append(
            {"name": name, "shape": [n], "datatype": datatype, "data": [r[name] for r in rows]}
        )
    if "weather" in rows[0]:
        for name in WEATHER:
            data = [r["weather"][name] for r in rows]
            inputs.append({"name": name, "shape": [n], "datatype": "FP32", "data": data})
    if "recent_rides" in rows[0]:
        rides = [r["recent_rides"] for r in rows]
        data = rides if nested else [count for row in rides for count in row]
        inputs.append({"name": "recent_rides", "shape": [n, 4], "datatype": "INT64", "data": data})
    return inputs


def by_name(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in response["outputs"]}


def rows_for_both(model_dir) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows by zone (varied), and rows by lat/lon."""
    zones = [
        instance(zone_id=z, hour=(5 * z) % 24, day_of_week=z % 7, recent_rides=[z, 2 * z, 3, 4])
        for z in range(12)
    ]
    zones[3]["weather"] = {"temperature_c": -3.25, "precipitation_mm_h": 12, "wind_speed_m_s": 9.5}
    spec = artifact.read_manifest(model_dir).features
    points = []
    for z in (0, 7, 19):
        point = instance(lat=float(spec.zone_lat[z]) + 0.001, lon=float(spec.zone_lon[z]))
        del point["zone_id"]
        points.append(point)
    return zones, points


def test_outputs_equal_those_of_v1_predict_for_the_same_rows(client: TestClient, model_dir) -> None:
    for rows in rows_for_both(model_dir):
        v1 = client.post("/v1/predict", json={"instances": rows})
        assert v1.status_code == 200, v1.text
        predictions = v1.json()["predictions"]
        for nested in (False, True):
            v2 = client.post(INFER, json={"id": "rt", "inputs": tensors(rows, nested)})
            assert v2.status_code == 200, v2.text
            outputs = by_name(v2.json())
            for name in ("demand", "lower", "upper", "stale"):
                assert outputs[name]["data"] == [p[name] for p in predictions], name


def test_the_response_has_the_protocol_shape(client: TestClient) -> None:
    rows = [instance(zone_id=z) for z in range(3)]
    response = client.post(INFER, json={"id": "42", "inputs": tensors(rows)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"model_name", "model_version", "id", "outputs"}
    assert (body["model_name"], body["model_version"], body["id"]) == (
        "demand-predictor",
        "1.0.0",
        "42",
    )
    assert [o["name"] for o in body["outputs"]] == ["demand", "lower", "upper", "stale"]
    for output in body["outputs"]:
        assert set(output) == {"name", "shape", "datatype", "data"}
        assert isinstance(output["name"], str) and output["datatype"] in DATATYPES
        assert output["shape"] == [3] and len(output["data"]) == 3
        kind = bool if output["datatype"] == "BOOL" else float
        assert all(type(value) is kind for value in output["data"])
    outputs = by_name(body)
    for lower, demand, upper in zip(
        outputs["lower"]["data"], outputs["demand"]["data"], outputs["upper"]["data"], strict=True
    ):
        assert 0 <= lower <= demand <= upper


def test_id_defaults_to_the_request_id_and_outputs_can_be_chosen(client: TestClient) -> None:
    request = {"inputs": tensors([instance()]), "outputs": [{"name": "upper"}, {"name": "demand"}]}
    response = client.post(INFER, json=request, headers={"X-Request-ID": "trace-7"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "trace-7" == response.headers["x-request-id"]
    assert [o["name"] for o in body["outputs"]] == ["upper", "demand"]


def test_32_bit_datatypes_are_accepted(client: TestClient) -> None:
    inputs = tensors([instance(), instance(zone_id=9)])
    wide = client.post(INFER, json={"inputs": inputs}).json()["outputs"]
    for tensor in inputs:
        tensor["datatype"] = tensor["datatype"].replace("64", "32")
    narrow = client.post(INFER, json={"inputs": inputs})
    assert narrow.status_code == 200 and narrow.json()["outputs"] == wide


def _set(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        next(t for t in request["inputs"] if t["name"] == name)[key] = value

    return change


def _drop(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        request["inputs"] = [t for t in request["inputs"] if t["name"] not in names]

    return change


def _pop(name: str, key: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        next(t for t in request["inputs"] if t["name"] == name).pop(key)

    return change


def _add(tensor: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda request: request["inputs"].append(tensor)


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("hour as FP32", _set("hour", "datatype", "FP32"), "input 'hour' has datatype \"FP32\"; expected INT64"),
    ("weather as INT64", _set("temperature_c", "datatype", "INT64"), "expected FP64"),
    ("unknown datatype", _set("hour", "datatype", "int"), "datatype"),
    ("rides shape [2, 3]", _set("recent_rides", "shape", [2, 3]), "input 'recent_rides' has shape [2, 3]; expected [N, 4]"),
    ("hour shape [2, 1]", _set("hour", "shape", [2, 1]), "expected [N]"),
    ("shape not a list", _set("hour", "shape", 2), "has shape 2"),
    ("data shorter than shape", _set("hour", "data", [18]), "does not hold the 2 elements"),
    ("ragged nesting", _set("recent_rides", "data", [[1, 2, 3, 4], [1, 2, 3]]), "does not hold the 8 elements"),
    ("rows disagree", lambda r: (_drop("day_of_week")(r), _add({"name": "day_of_week", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]})(r)), "every input has one row per prediction"),
    ("hour 24", _set("hour", "data", [18, 24]), "input 'hour': element [1] is 24; must be from 0 to 23"),
    ("rides negative", _set("recent_rides", "data", [1, 2, 3, 4, 5, 6, -7, 8]), "element [1, 2] is -7"),
    ("float in INT64", _set("hour", "data", [18, 18.0]), "each INT64 element must be a JSON integer"),
    ("bool in INT64", _set("hour", "data", [18, True]), "element [1] is true"),
    ("string number", _set("temperature_c", "data", [1.0, "2"]), "each FP32 element must be a JSON number"),
    ("rain out of range", _set("precipitation_mm_h", "data", [0, 501]), "must be from 0 to 500"),
    ("zone beyond model", _set("zone_id", "data", [3, 32]), "zone_id must be between 0 and 31"),
    ("unknown input", _add({"name": "surge", "shape": [2], "datatype": "FP32", "data": [1, 2]}), "unknown input 'surge'"),
    ("duplicate input", _add({"name": "hour", "shape": [2], "datatype": "INT64", "data": [1, 2]}), "given twice"),
    ("zone and lat/lon", _add({"name": "lat", "shape": [2], "datatype": "FP64", "data": [40.7, 40.7]}), "not both"),
    ("no location", _drop("zone_id"), "give input zone_id, or both inputs lat and lon"),
    ("no hour", _drop("hour"), "input 'hour' is required"),
    ("partial weather", _drop("wind_speed_m_s"), "go together; missing: wind_speed_m_s"),
    ("no weather, no store", _drop(*WEATHER), "no online feature store is configured"),
    ("no rides, no store", _drop("recent_rides"), "no online feature store is configured"),
    ("binary data", _pop("hour", "data"), "input 'hour' has no 'data' (the binary tensor data extension is not supported"),
    ("no datatype", _pop("hour", "datatype"), "input 'hour' has no 'datatype'"),
    ("unknown input key", _set("hour", "contents", [1, 2]), "unknown key 'contents'"),
    ("unknown output", lambda r: r.update(outputs=[{"name": "surge"}]), "unknown output 'surge'"),
    ("unknown request key", lambda r: r.update(instances=[]), "unknown key 'instances'"),
    ("id not a string", lambda r: r.update(id=42), "'id' must be a string"),
    ("no inputs", lambda r: r.update(inputs=[]), "'inputs' must be a non-empty list"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[c for c, _, _ in BAD])
def test_invalid_requests_get_400_with_the_reason(
    client: TestClient, case: str, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    request = {"inputs": tensors([instance(), instance(zone_id=5, hour=7)])}
    change(request)
    response = client.post(INFER, json=request)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and message in body["error"], body
    assert (
        client.app.state.metrics.registry.get_sample_value(
            "dp_rejections_total", {"reason": "invalid"}
        )
        == 1
    )


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", b'{"inputs": [{"name": "hour", "data": [NaN]}]}', b"\xff"]
)
def test_bodies_that_are_not_inference_requests_get_400(client: TestClient, raw: bytes) -> None:
    response = client.post(INFER, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and set(response.json()) == {"error"}


def test_too_many_rows_is_400(make_client: Callable[..., TestClient]) -> None:
    client = make_client(DP_MAX_ROWS="4")
    response = client.post(INFER, json={"inputs": tensors([instance()] * 5)})
    assert response.status_code == 400
    assert "5 rows; a request has 1 to 4 (DP_MAX_ROWS)" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/other/infer",
        "/v2/models/demand-predictor/versions/9.9.9/infer",
    ],
)
def test_another_model_or_version_is_404(client: TestClient, path: str) -> None:
    response = client.post(path, json={"inputs": tensors([instance()])})
    assert response.status_code == 404
    assert set(response.json()) == {"error"} and "this service serves" in response.json()["error"]


def test_the_served_version_can_be_named(client: TestClient) -> None:
    path = "/v2/models/demand-predictor/versions/1.0.0/infer"
    response = client.post(path, json={"inputs": tensors([instance()])})
    assert response.status_code == 200 and response.json()["model_version"] == "1.0.0"


def test_shedding_is_the_same_as_for_v1(make_client: Callable[..., TestClient]) -> None:
    client = make_client(DP_QUEUE_LIMIT="4", DP_MAX_ROWS="16")
    response = client.post(INFER, json={"inputs": tensors([instance()] * 5)})
    assert response.status_code == 429
    assert response.json()["error"].startswith("queue_full: ")
    assert int(response.headers["retry-after"]) >= 1
    registry = client.app.state.metrics.registry
    assert registry.get_sample_value("dp_rejections_total", {"reason": "queue_full"}) == 1
    assert client.post(INFER, json={"inputs": tensors([instance()] * 4)}).status_code == 200
    latency = registry.get_sample_value(
        "dp_http_request_duration_seconds_count",
        {"route": "/v2/models/{name}/infer", "method": "POST", "status": "200"},
    )
    assert latency == 1


def test_body_limit_is_the_same_as_for_v1(make_client: Callable[..., TestClient]) -> None:
    client = make_client(DP_MAX_BODY_BYTES="1024")
    request = {"inputs": tensors([instance()] * 40)}
    response = client.post(INFER, json=request)
    assert response.status_code == 413 and "DP_MAX_BODY_BYTES" in response.json()["error"]


def test_metadata_ready_and_server_endpoints(client: TestClient) -> None:
    server = client.get("/v2").json()
    assert server == {"name": "demand-predictor", "version": "1.0.0", "extensions": []}
    metadata = client.get("/v2/models/demand-predictor")
    assert metadata.status_code == 200
    body = metadata.json()
    assert (body["name"], body["versions"], body["platform"]) == (
        "demand-predictor",
        ["1.0.0"],
        "pytorch",
    )
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in body["inputs"]}
    assert inputs["zone_id"] == ("INT64", [-1]) and inputs["recent_rides"] == ("INT64", [-1, 4])
    assert inputs["temperature_c"] == ("FP64", [-1]) and inputs["lat"] == ("FP64", [-1])
    outputs = {t["name"]: (t["datatype"], t["shape"]) for t in body["outputs"]}
    assert outputs == {
        "demand": ("FP32", [-1]),
        "lower": ("FP32", [-1]),
        "upper": ("FP32", [-1]),
        "stale": ("BOOL", [-1]),
    }
    assert client.get("/v2/models/demand-predictor/versions/1.0.0").json() == body
    ready = client.get("/v2/models/demand-predictor/ready")
    assert ready.status_code == 200 and ready.json() == {"name": "demand-predictor", "ready": True}
    assert client.get("/v2/models/demand-predictor/versions/1.0.0/ready").status_code == 200
    for path in (
        "/v2/models/other",
        "/v2/models/other/ready",
        "/v2/models/demand-predictor/versions/2.0.0",
        "/v2/models/demand-predictor/versions/2.0.0/ready",
    ):
        response = client.get(path)
        assert response.status_code == 404 and set(response.json()) == {"error"}, path


def test_the_metadata_lists_the_inputs_a_request_uses(client: TestClient) -> None:
    metadata = client.get("/v2/models/demand-predictor").json()
    by_zone = {t["name"] for t in tensors([instance()])}
    by_point = {
        t["name"]
        for t in tensors([{k: v for k, v in instance(lat=1, lon=2).items() if k != "zone_id"}])
    }
    assert by_zone | by_point == {t["name"] for t in metadata["inputs"]}


def test_left_out_features_come_from_the_store_like_for_v1(
    make_client: Callable[..., TestClient], redis_server: RedisServer
) -> None:
    from test_feature_store import write_features

    client = make_client(DP_FEATURE_STORE_URL=redis_server.url, DP_FEATURE_STORE_TIMEOUT_MS="500")
    write_features(redis_server, at=time.time() - 3 * 3600)  # old: answered, stale
    rows = [{"zone_id": z, "hour": 18, "day_of_week": 2} for z in (1, 2, 30)]
    v1 = client.post("/v1/predict", json={"instances": rows})
    assert v1.status_code == 200, v1.text
    predictions = v1.json()["predictions"]
    v2 = client.post(INFER, json={"inputs": tensors(rows)})
    assert v2.status_code == 200, v2.text
    outputs = by_name(v2.json())
    assert outputs["stale"]["data"] == [True, True, True]
    for name in ("demand", "lower", "upper", "stale"):
        assert outputs[name]["data"] == [p[name] for p in predictions], name


def test_before_the_model_is_loaded(model_dir) -> None:
    from demand_predictor.app import create_app
    from demand_predictor.config import load_settings

    settings = load_settings({"DP_MODEL_DIR": str(model_dir), "DP_ACCESS_LOG": "false"})
    client = TestClient(create_app(settings))  # lifespan not run: the model stays "loading"
    ready = client.get("/v2/models/demand-predictor/ready")
    assert ready.status_code == 503 and ready.json() == {"name": "demand-predictor", "ready": False}
    assert client.get("/v2/models/demand-predictor").status_code == 503
    assert client.get("/v2/models/other/ready").status_code == 404
    infer = client.post(INFER, json={"inputs": tensors([instance()])})
    assert infer.status_code == 503 and infer.headers["retry-after"] == "1"
    assert infer.json()["error"].startswith("not_ready: the model is not ready")


def test_a_huge_value_is_shown_short(client: TestClient) -> None:
    request = {"inputs": tensors([instance()])}
    next(t for t in request["inputs"] if t["name"] == "hour")["data"] = [10**400]
    response = client.post(INFER, json=request)
    assert response.status_code == 400 and len(response.json()["error"]) < 200
