"""The OpenAPI document describes POST /v1/predict (a raw ASGI handler FastAPI does not
route) and the Open Inference Protocol routes as the handlers answer them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from conftest import instance

Json = Any


def resolve(schema: Json, doc: Json) -> Json:
    while "$ref" in schema:
        prefix = "#/components/schemas/"
        assert schema["$ref"].startswith(prefix), schema
        schema = doc["components"]["schemas"][schema["$ref"][len(prefix) :]]
    return schema


_ANNOTATIONS = {"title", "description", "default", "examples"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def errors(value: Json, schema: Json, doc: Json, where: str = "$") -> list[str]:
    """JSON Schema validation of the keywords FastAPI/pydantic emit here. Strict: an
    unexpected keyword fails the test instead of being ignored."""
    schema = resolve(schema, doc)
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "properties", "required", "items", "anyOf", "enum", "const", "minimum",
        "maximum", "minItems", "maxItems", "minLength", "maxLength", "additionalProperties",
    }  # fmt: skip
    assert not unknown, f"validator does not know {unknown} (at {where})"
    found: list[str] = []
    if "anyOf" in schema and all(errors(value, o, doc, where) for o in schema["anyOf"]):
        found.append(f"{where}: matches no anyOf option")
    if "type" in schema and not _TYPES[schema["type"]](value):
        return [*found, f"{where}: {value!r} is not {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: {value!r} != {schema['const']!r}")
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{where}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, list | str):
        if len(value) < schema.get("minItems", schema.get("minLength", 0)):
            found.append(f"{where}: too short")
        if len(value) > schema.get("maxItems", schema.get("maxLength", len(value))):
            found.append(f"{where}: too long")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += errors(item, schema["items"], doc, f"{where}[{index}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}: missing {key!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], doc, f"{where}.{key}")
            elif extra is False:
                found.append(f"{where}: unexpected {key!r}")
            elif isinstance(extra, dict):
                found += errors(item, extra, doc, f"{where}.{key}")
    return found


def check(value: Json, schema: Json, doc: Json) -> None:
    problems = errors(value, schema, doc)
    assert not problems, problems
    try:  # the reference implementation too, where it is installed
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(value)


def response_schema(doc: Json, path: str, method: str, status: int) -> Json:
    response = doc["paths"][path][method]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]


@pytest.fixture
def documented(make_client: Callable[..., TestClient]) -> tuple[TestClient, Json]:
    client = make_client(DP_MAX_ROWS="8", DP_QUEUE_LIMIT="4")
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return client, response.json()


def test_predict_is_documented_with_its_request_and_error_answers(
    documented: tuple[TestClient, Json],
) -> None:
    _, doc = documented
    operation = doc["paths"]["/v1/predict"]["post"]
    assert set(doc["paths"]["/v1/predict"]) == {"post"}
    body = resolve(operation["requestBody"]["content"]["application/json"]["schema"], doc)
    assert body["required"] == ["instances"]
    assert body["properties"]["instances"]["maxItems"] == 8  # DP_MAX_ROWS
    item = resolve(body["properties"]["instances"]["items"], doc)
    assert {"zone_id", "lat", "lon", "hour", "day_of_week", "weather", "recent_rides"} == set(
        item["properties"]
    )
    assert set(operation["responses"]) == {"200", "400", "413", "422", "429", "500", "503"}
    for status in ("429", "503"):
        assert "Retry-After" in operation["responses"][status]["headers"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    timeout = headers["X-Request-Timeout-Ms"]["schema"]["anyOf"][0]
    assert (timeout["type"], timeout["minimum"], timeout["maximum"]) == ("integer", 1, 3_600_000)


def test_the_fast_path_is_still_not_routed_by_fastapi(documented: tuple[TestClient, Json]) -> None:
    client, _ = documented
    routes = [r for r in client.app.routes if getattr(r, "path", None) == "/v1/predict"]
    assert len(routes) == 1 and type(routes[0]) is Route and not isinstance(routes[0], APIRoute)


def test_the_documented_request_schema_agrees_with_the_handler(
    documented: tuple[TestClient, Json],
) -> None:
    client, doc = documented
    schema = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    good = {"instances": [instance(), instance(zone_id=5)]}
    check(good, schema["schema"], doc)
    assert client.post("/v1/predict", json=good).status_code == 200
    for bad in (
        {"instances": [instance(hour=24)]},
        {"instances": [instance(recent_rides=[1, 2, 3])]},
        {"instances": [instance()] * 9},  # over DP_MAX_ROWS
        {"instances": []},
    ):
        assert errors(bad, schema["schema"], doc), bad
        assert client.post("/v1/predict", json=bad).status_code == 422


def test_real_responses_match_the_documented_schemas(documented: tuple[TestClient, Json]) -> None:
    client, doc = documented
    answers = {
        200: client.post("/v1/predict", json={"instances": [instance()] * 3}),
        422: client.post("/v1/predict", json={"instances": [instance(hour=99)]}),
        400: client.post(
            "/v1/predict", json={"instances": [instance()]}, headers={"X-Request-Timeout-Ms": "x"}
        ),
        429: client.post("/v1/predict", json={"instances": [instance()] * 5}),  # queue limit 4
        413: client.post("/v1/predict", content=b"{" + b" " * 300_000 + b"}"),
    }
    for status, response in answers.items():
        assert response.status_code == status, response.text
        check(response.json(), response_schema(doc, "/v1/predict", "post", status), doc)
    assert answers[200].json()["predictions"][0]["model_version"] == "1.0.0"
    assert answers[422].json()["details"][0]["loc"] == ["instances", 0, "hour"]


def test_with_shed_status_503_the_document_lists_no_429(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(DP_QUEUE_LIMIT="4", DP_SHED_STATUS="503")
    doc = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v2/models/{name}/infer"):
        responses = doc["paths"][path]["post"]["responses"]
        assert "429" not in responses and "queue_full" in responses["503"]["description"]
    shed = client.post("/v1/predict", json={"instances": [instance()] * 5})
    assert shed.status_code == 503 and shed.json()["error"] == "queue_full"
    check(shed.json(), response_schema(doc, "/v1/predict", "post", 503), doc)


def test_the_inference_protocol_routes_are_documented(documented: tuple[TestClient, Json]) -> None:
    client, doc = documented
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        operation = doc["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert resolve(body, doc)["required"] == ["inputs"]
        assert set(operation["responses"]) == {"200", "400", "404", "413", "429", "500", "503"}
    for path in ("/v2", "/v2/models/{name}", "/v2/models/{name}/ready"):
        assert "422" not in doc["paths"][path]["get"]["responses"]  # never answered
    request = {
        "id": "r-1",
        "inputs": [
            {"name": "zone_id", "shape": [1], "datatype": "INT64", "data": [3]},
            {"name": "hour", "shape": [1], "datatype": "INT64", "data": [18]},
            {"name": "day_of_week", "shape": [1], "datatype": "INT64", "data": [2]},
            {"name": "temperature_c", "shape": [1], "datatype": "FP64", "data": [11.5]},
            {"name": "precipitation_mm_h", "shape": [1], "datatype": "FP64", "data": [2.0]},
            {"name": "wind_speed_m_s", "shape": [1], "datatype": "FP64", "data": [4.0]},
            {
                "name": "recent_rides",
                "shape": [1, 4],
                "datatype": "INT64",
                "data": [10, 12, 14, 15],
            },
        ],
    }
    path = "/v2/models/{name}/infer"
    check(
        request,
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"],
        doc,
    )
    answers = {
        200: client.post("/v2/models/demand-predictor/infer", json=request),
        400: client.post("/v2/models/demand-predictor/infer", json={"inputs": []}),
        404: client.post("/v2/models/other/infer", json=request),
    }
    for status, response in answers.items():
        assert response.status_code == status, response.text
        check(response.json(), response_schema(doc, path, "post", status), doc)
    for get_path, real in (
        ("/v2", "/v2"),
        ("/v2/models/{name}", "/v2/models/demand-predictor"),
        ("/v2/models/{name}/ready", "/v2/models/demand-predictor/ready"),
    ):
        response = client.get(real)
        assert response.status_code == 200
        check(response.json(), response_schema(doc, get_path, "get", 200), doc)
