"""Open Inference Protocol (KServe v2) REST endpoints, next to ``/v2/health/*``.

* ``GET /v2``: server metadata;
* ``GET /v2/models/{name}[/versions/{version}]``: model metadata (tensors below);
* ``GET /v2/models/{name}[/versions/{version}]/ready``: 200 ``{"name", "ready": true}``
  once the model serves, else 503 with ``"ready": false``;
* ``POST /v2/models/{name}[/versions/{version}]/infer``: inference.

Inference runs through ``PredictEndpoint.run`` (app.py): the same ``X-Request-Timeout-Ms``
deadline, admission control, body limit, feature store, batching queue and model
version as ``POST /v1/predict``, counted in the same metrics; only the wire format
differs. One input tensor per feature column, N = the number of predictions:

=================== ================= ======== ========================================
input               datatype          shape    meaning
=================== ================= ======== ========================================
zone_id             INT64 (or INT32)  [N]      zone; or give lat and lon instead
lat, lon            FP64 (or FP32)    [N]      a point, mapped to the nearest zone
hour, day_of_week   INT64 (or INT32)  [N]      0..23, 0 (Monday)..6
temperature_c,      FP64 (or FP32)    [N]      weather; the three together, or none of
precipitation_mm_h,                            them (then from the feature store)
wind_speed_m_s
recent_rides        INT64 (or INT32)  [N, 4]   rides of the last four 15-minute
                                               intervals, oldest first; or left out
                                               (then from the feature store)
=================== ================= ======== ========================================

The value rules are those of ``/v1/predict`` (schemas.py: strict JSON integers for
integer tensors, the same ranges, the same zone and service-area checks). Outputs:
``demand``, ``lower``, ``upper`` (FP32 [N], the median and the 90 % interval, rounded
like ``/v1/predict``'s) and ``stale`` (BOOL [N]); ``outputs`` in the request picks
some of them. Errors are ``{"error": message}``: 400 for a bad request, 404 for another
model name or version, 413, the shedding status (429 or 503, ``Retry-After``), 503
while not ready, 500 when the model failed.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from demand_predictor import __version__, apidoc
from demand_predictor.config import Settings
from demand_predictor.features import HISTORY, MAX_ZONE_DISTANCE_KM, FeatureSpec, RawColumns
from demand_predictor.logs import request_id_var
from demand_predictor.middleware import ARRIVED_KEY
from demand_predictor.schemas import MAX_RIDES, Instance, InvalidInput, Weather, model_errors

if TYPE_CHECKING:
    from demand_predictor.app import PredictEndpoint, Refusal
    from demand_predictor.runtime import Serving

JSON_TYPE = "application/json"
SERVER_NAME = "demand-predictor"
PLATFORM = "pytorch"
PATHS = (
    "/v2",
    "/v2/models/{name}",
    "/v2/models/{name}/versions/{version}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/versions/{version}/ready",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)
INTEGER_TYPES = ("INT64", "INT32")
FLOAT_TYPES = ("FP64", "FP32")
WEATHER = ("temperature_c", "precipitation_mm_h", "wind_speed_m_s")
OUTPUTS = {"demand": "FP32", "lower": "FP32", "upper": "FP32", "stale": "BOOL"}
REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
INPUT_KEYS = frozenset({"name", "shape", "datatype", "parameters", "data"})
OUTPUT_KEYS = frozenset({"name", "parameters"})


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor: its datatypes, value range and shape ([N], or [N, width])."""

    name: str
    datatypes: tuple[str, ...]  # the first is the one the metadata declares
    low: float
    high: float
    width: int = 0

    @property
    def integer(self) -> bool:
        return self.datatypes[0].startswith("INT")

    @property
    def shape(self) -> list[int]:
        return [-1, self.width] if self.width else [-1]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatypes[0], "shape": self.shape}


def _bounds(model: type[BaseModel], field: str) -> tuple[float, float]:
    """The ge/le bounds of a field of the /v1 request models: one set of rules."""
    low = high = math.nan
    for item in model.model_fields[field].metadata:
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    return low, high


INPUTS: dict[str, TensorSpec] = {
    spec.name: spec
    for spec in (
        TensorSpec("zone_id", INTEGER_TYPES, *_bounds(Instance, "zone_id")),
        TensorSpec("lat", FLOAT_TYPES, *_bounds(Instance, "lat")),
        TensorSpec("lon", FLOAT_TYPES, *_bounds(Instance, "lon")),
        TensorSpec("hour", INTEGER_TYPES, *_bounds(Instance, "hour")),
        TensorSpec("day_of_week", INTEGER_TYPES, *_bounds(Instance, "day_of_week")),
        *(TensorSpec(name, FLOAT_TYPES, *_bounds(Weather, name)) for name in WEATHER),
        TensorSpec("recent_rides", INTEGER_TYPES, 0, MAX_RIDES, HISTORY),
    )
}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, 400)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _flatten(data: Any, shape: list[int]) -> list[Any] | None:
    """The elements of ``data`` in row-major order: a flat list of prod(shape) elements,
    or lists nested exactly like ``shape``; None for anything else."""
    if type(data) is not list:
        return None
    if not any(type(item) is list for item in data):
        return data if len(data) == math.prod(shape) else None
    flat: list[Any] = []

    def walk(node: Any, depth: int) -> bool:
        if depth == len(shape):
            flat.append(node)
            return type(node) is not list
        if type(node) is not list or len(node) != shape[depth]:
            return False
        return all(walk(item, depth + 1) for item in node)

    return flat if walk(data, 0) else None


def _check_values(spec: TensorSpec, datatype: str, flat: list[Any]) -> None:
    integer = spec.integer
    for index, value in enumerate(flat):
        kind = type(value)
        if kind is int or (kind is float and not integer):
            if spec.low <= value <= spec.high:
                continue
            problem = f"must be from {_number(spec.low)} to {_number(spec.high)}"
        else:
            problem = f"each {datatype} element must be a JSON {'integer' if integer else 'number'}"
        where = f"[{index // spec.width}, {index % spec.width}]" if spec.width else f"[{index}]"
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise _bad(f"input {spec.name!r}: element {where} is {shown}; {problem}")


def _input(tensor: Any, position: int) -> tuple[str, list[Any], int]:
    """(name, elements in row-major order, N) of one request input, checked."""
    if type(tensor) is not dict:
        raise _bad(f"inputs[{position}] must be a JSON object (name, shape, datatype, data)")
    name = tensor.get("name")
    if type(name) is not str:
        raise _bad(f"inputs[{position}] has no 'name' string")
    spec = INPUTS.get(name)
    if spec is None:
        raise _bad(f"unknown input {name!r}; this model's inputs are {', '.join(INPUTS)}")
    unknown = sorted(tensor.keys() - INPUT_KEYS)
    if unknown:
        raise _bad(
            f"input {name!r}: unknown key {unknown[0]!r}; an input has name, shape, datatype, "
            "parameters and data"
        )
    for key in ("shape", "datatype", "data"):
        if key not in tensor:
            extension = (
                " (the binary tensor data extension is not supported: send data as JSON)"
                if key == "data"
                else ""
            )
            raise _bad(f"input {name!r} has no {key!r}{extension}")
    if "parameters" in tensor and type(tensor["parameters"]) is not dict:
        raise _bad(f"input {name!r}: 'parameters' must be a JSON object")
    datatype = tensor["datatype"]
    if datatype not in spec.datatypes:
        raise _bad(
            f"input {name!r} has datatype {json.dumps(datatype)}; expected "
            f"{spec.datatypes[0]} (or {', '.join(spec.datatypes[1:])})"
        )
    shape = tensor["shape"]
    expected = f"[N, {spec.width}]" if spec.width else "[N]"
    if (
        type(shape) is not list
        or len(shape) != (2 if spec.width else 1)
        or any(type(size) is not int or size < 0 for size in shape)
        or (spec.width and shape[1] != spec.width)
    ):
        raise _bad(
            f"input {name!r} has shape {json.dumps(shape)}; expected {expected}, "
            "N = the number of predictions"
        )
    flat = _flatten(tensor["data"], shape)
    if flat is None:
        raise _bad(
            f"input {name!r}: 'data' does not hold the {math.prod(shape)} elements of shape "
            f"{shape} (a flat list in row-major order, or lists nested like the shape)"
        )
    _check_values(spec, datatype, flat)
    return name, flat, shape[0]


class InferParser:
    """One inference request's body -> validated ``RawColumns`` (for ``run``); keeps its
    ``id`` and the outputs it asked for."""

    def __init__(self, max_rows: int, has_store: bool, version: str | None) -> None:
        self.max_rows = max_rows
        self.has_store = has_store
        self.version = version
        self.request_id: str | None = None
        self.outputs: list[str] = list(OUTPUTS)

    def __call__(self, body: bytes, serving: Serving) -> RawColumns:
        if self.version is not None and self.version != serving.version:
            raise InvalidInput(
                f"model {serving.manifest.name!r} has no version {self.version!r} loaded; "
                f"this service serves version {serving.version!r}",
                404,
                "model_not_found",
            )
        try:
            payload = _DECODER.decode(body.decode("utf-8"))
        except (ValueError, RecursionError):  # includes UnicodeDecodeError
            raise _bad("the body is not valid JSON (NaN and Infinity are not allowed)") from None
        if type(payload) is not dict:
            raise _bad("the inference request must be a JSON object")
        unknown = sorted(payload.keys() - REQUEST_KEYS)
        if unknown:
            raise _bad(
                f"unknown key {unknown[0]!r}; an inference request has id, parameters, "
                "inputs and outputs"
            )
        if "id" in payload:
            if type(payload["id"]) is not str:
                raise _bad("'id' must be a string")
            self.request_id = payload["id"]
        if "parameters" in payload and type(payload["parameters"]) is not dict:
            raise _bad("'parameters' must be a JSON object")
        inputs = payload.get("inputs")
        if type(inputs) is not list or not inputs:
            raise _bad("'inputs' must be a non-empty list of input tensors")
        tensors: dict[str, list[Any]] = {}
        rows, first = -1, ""
        for position, tensor in enumerate(inputs):
            name, flat, n = _input(tensor, position)
            if name in tensors:
                raise _bad(f"input {name!r} is given twice")
            if rows < 0:
                rows, first = n, name
            elif n != rows:
                raise _bad(
                    f"input {name!r} has {n} rows (shape[0]) but input {first!r} has {rows}: "
                    "every input has one row per prediction"
                )
            tensors[name] = flat
        if not 1 <= rows <= self.max_rows:
            raise _bad(f"{rows} rows; a request has 1 to {self.max_rows} (DP_MAX_ROWS)")
        if "outputs" in payload:
            self.outputs = self._outputs(payload["outputs"])
        return self._columns(tensors, rows, serving.manifest.features)

    @staticmethod
    def _outputs(requested: Any) -> list[str]:
        if type(requested) is not list or not requested:
            raise _bad("'outputs' must be a non-empty list of {\"name\": ...} objects")
        names: list[str] = []
        for position, output in enumerate(requested):
            if type(output) is not dict or type(output.get("name")) is not str:
                raise _bad(f"outputs[{position}] must be an object with a 'name' string")
            unknown = sorted(output.keys() - OUTPUT_KEYS)
            if unknown:
                raise _bad(f"outputs[{position}]: unknown key {unknown[0]!r} (name, parameters)")
            name = output["name"]
            if name not in OUTPUTS:
                raise _bad(
                    f"unknown output {name!r}; this model's outputs are {', '.join(OUTPUTS)}"
                )
            if name in names:
                raise _bad(f"output {name!r} is requested twice")
            names.append(name)
        return names

    def _columns(self, tensors: dict[str, list[Any]], rows: int, spec: FeatureSpec) -> RawColumns:
        by_zone = "zone_id" in tensors
        if by_zone and ("lat" in tensors or "lon" in tensors):
            raise _bad("give input zone_id, or inputs lat and lon, not both")
        if not by_zone and not ("lat" in tensors and "lon" in tensors):
            raise _bad("give input zone_id, or both inputs lat and lon")
        for name in ("hour", "day_of_week"):
            if name not in tensors:
                raise _bad(f"input {name!r} is required")
        weather = [name for name in WEATHER if name in tensors]
        if weather and len(weather) < len(WEATHER):
            missing = ", ".join(name for name in WEATHER if name not in tensors)
            raise _bad(f"inputs {', '.join(WEATHER)} go together; missing: {missing}")
        if not self.has_store:
            why = "required: no online feature store is configured on this service"
            if not weather:
                raise _bad(f"inputs {', '.join(WEATHER)} are {why}")
            if "recent_rides" not in tensors:
                raise _bad(f"input 'recent_rides' is {why}")

        def column(name: str, dtype: type) -> np.ndarray:  # NaN: from the feature store
            if name in tensors:
                return np.array(tensors[name], dtype=dtype)
            return np.full(rows, np.nan)  # one array per column: the store fills in place

        columns = RawColumns(
            zone_id=column("zone_id", np.int64) if by_zone else np.full(rows, -1, np.int64),
            lat=column("lat", np.float64),
            lon=column("lon", np.float64),
            hour=column("hour", np.int64),
            day_of_week=column("day_of_week", np.int64),
            temperature_c=column("temperature_c", np.float64),
            precipitation_mm_h=column("precipitation_mm_h", np.float64),
            wind_speed_m_s=column("wind_speed_m_s", np.float64),
            recent_rides=(
                np.array(tensors["recent_rides"], dtype=np.float64).reshape(rows, HISTORY)
                if "recent_rides" in tensors
                else np.full((rows, HISTORY), np.nan)
            ),
        )
        errors = model_errors(columns, spec, MAX_ZONE_DISTANCE_KM)
        if errors:
            problems = []
            for error in errors[:5]:
                loc = error["loc"]
                where = "input 'zone_id'" if loc[-1] == "zone_id" else "inputs lat, lon"
                problems.append(f"{where}: element [{loc[1]}]: {error['msg']}")
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise _bad("; ".join(problems) + more)
        return columns


def encode(
    model_name: str,
    version: str,
    request_id: str,
    rides: np.ndarray,
    stale: np.ndarray | None,
    outputs: list[str],
) -> bytes:
    """The inference response; values rounded like /v1/predict's."""
    table = rides.tolist()  # rows of (lower, median, upper)
    n = len(table)
    data: dict[str, list[Any]] = {
        "demand": [round(row[1], 3) for row in table],
        "lower": [round(row[0], 3) for row in table],
        "upper": [round(row[2], 3) for row in table],
        "stale": [False] * n if stale is None else stale.tolist(),
    }
    response = {
        "model_name": model_name,
        "model_version": version,
        "id": request_id,
        "outputs": [
            {"name": name, "shape": [n], "datatype": OUTPUTS[name], "data": data[name]}
            for name in outputs
        ],
    }
    return json.dumps(response, separators=(",", ":")).encode()


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": message}, separators=(",", ":"))
    return Response(body, status, headers=headers, media_type=JSON_TYPE)


def refusal_response(refusal: Refusal) -> Response:
    """The protocol's ``{"error": message}`` for one of PredictEndpoint's refusals, with
    its status (400 for validation) and headers (Retry-After). The message says the
    reason (``queue_full: ...``, ``deadline: ...``) except for invalid input."""
    payload = json.loads(refusal.body)
    code, message = payload["error"], payload["message"]
    details = payload.get("details")
    if details:
        message += ": " + "; ".join(
            f"{'.'.join(str(part) for part in d['loc'])}: {d['msg']}" for d in details
        )
    if code not in ("invalid_request", "model_not_found"):
        message = f"{code}: {message}"
    status = 400 if refusal.status == 422 else refusal.status
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in refusal.headers}
    return error_response(status, message, headers)


# -- the protocol's JSON objects, for the OpenAPI document ---------------------------
_PLAIN = ConfigDict(protected_namespaces=())


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: variable size (N, the number of predictions)")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="the version that can be requested: the active one")
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ModelReady(BaseModel):
    name: str
    ready: bool


class RequestInput(BaseModel):
    name: str = Field(description=", ".join(INPUTS))
    shape: list[int] = Field(description="[N], or [N, 4] for recent_rides")
    datatype: str = Field(description="INT64/INT32 for integer inputs, FP64/FP32 for the others")
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(description="row-major: flat, or nested like the shape")


class RequestOutput(BaseModel):
    name: str = Field(description=", ".join(OUTPUTS))
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    id: str | None = Field(default=None, description="echoed in the response")
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = Field(
        default=None, description="the outputs to return (default: all)"
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float | bool]


class InferResponse(BaseModel):
    model_config = _PLAIN
    model_name: str
    model_version: str
    id: str = Field(description="the request's id, else its X-Request-ID")
    outputs: list[ResponseOutput]


class InferError(BaseModel):
    error: str


def add_routes(app: FastAPI, endpoint: PredictEndpoint, settings: Settings) -> list[APIRoute]:
    """Add the protocol's routes to ``app``; returns the documentation-only routes of the
    infer paths (their handlers read the body themselves), for apidoc.install."""
    runtime = endpoint.runtime

    def served() -> tuple[str, Serving | None]:
        serving = runtime.serving
        return (serving.manifest.name if serving else settings.model_name), serving

    def unknown(name: str, version: str | None, serving: Serving | None) -> Response | None:
        """404 for another model name, or a version that is not loaded; 503 when no
        model is loaded yet; None when the path names the model being served."""
        served_name = serving.manifest.name if serving else settings.model_name
        if name != served_name:
            return error_response(
                404, f"no model named {name!r}; this service serves {served_name!r}"
            )
        if serving is None:
            return error_response(
                503,
                f"the model is not loaded (phase: {runtime.phase.value})",
                {"Retry-After": "1"},
            )
        if version is not None and version != serving.version:
            return error_response(
                404,
                f"model {name!r} has no version {version!r} loaded; this service serves "
                f"version {serving.version!r}",
            )
        return None

    async def server_metadata() -> Response:
        payload = {"name": SERVER_NAME, "version": __version__, "extensions": []}
        return Response(json.dumps(payload), media_type=JSON_TYPE)

    async def model_metadata(name: str, version: str | None = None) -> Response:
        _, serving = served()
        problem = unknown(name, version, serving)
        if problem is not None:
            return problem
        assert serving is not None
        payload = {
            "name": serving.manifest.name,
            "versions": [serving.version],
            "platform": PLATFORM,
            "inputs": [spec.metadata() for spec in INPUTS.values()],
            "outputs": [
                {"name": output, "datatype": datatype, "shape": [-1]}
                for output, datatype in OUTPUTS.items()
            ],
        }
        return Response(json.dumps(payload), media_type=JSON_TYPE)

    async def model_ready(name: str, version: str | None = None) -> Response:
        served_name, serving = served()
        if serving is None and name == served_name:  # loading: known, not ready
            payload = {"name": name, "ready": False}
            return Response(json.dumps(payload), 503, {"Retry-After": "1"}, JSON_TYPE)
        problem = unknown(name, version, serving)
        if problem is not None:
            return problem
        ready = runtime.ready
        headers = None if ready else {"Retry-After": "1"}
        payload = {"name": name, "ready": ready}
        return Response(json.dumps(payload), 200 if ready else 503, headers, JSON_TYPE)

    async def infer(name: str, request: Request, version: str | None = None) -> Response:
        served_name, _ = served()
        if name != served_name:
            return error_response(
                404, f"no model named {name!r}; this service serves {served_name!r}"
            )
        started = request.scope.get(ARRIVED_KEY) or time.perf_counter()
        parser = InferParser(settings.max_rows, runtime.fetcher is not None, version)
        outcome = await endpoint.run(request.scope, request.receive, started, parser)
        if outcome is None:
            return error_response(400, "the request body did not arrive (client disconnected)")
        if not isinstance(outcome, tuple):
            if outcome.reason:
                endpoint.count(outcome.reason)
            return refusal_response(outcome)
        serving, rides, stale = outcome
        request_id = parser.request_id if parser.request_id is not None else request_id_var.get()
        body = encode(
            serving.manifest.name, serving.version, request_id, rides, stale, parser.outputs
        )
        return Response(body, media_type=JSON_TYPE)

    async def infer_version(name: str, version: str, request: Request) -> Response:
        return await infer(name, request, version)

    async def metadata_version(name: str, version: str) -> Response:
        return await model_metadata(name, version)

    async def ready_version(name: str, version: str) -> Response:
        return await model_ready(name, version)

    not_found = {"model": InferError, "description": "another model name, or version"}
    loading = {
        "model": InferError,
        "description": "no model loaded yet",
        "headers": apidoc.RETRY_AFTER,
    }
    gets: list[tuple[str, Callable[..., Any], type[BaseModel], str]] = [
        ("/v2", server_metadata, ServerMetadata, "Server metadata (Open Inference Protocol)"),
        ("/v2/models/{name}", model_metadata, ModelMetadata, "Model metadata"),
        ("/v2/models/{name}/versions/{version}", metadata_version, ModelMetadata, "Model metadata"),
        ("/v2/models/{name}/ready", model_ready, ModelReady, "Model readiness"),
        (
            "/v2/models/{name}/versions/{version}/ready",
            ready_version,
            ModelReady,
            "Model readiness",
        ),
    ]
    for path, handler, model, summary in gets:
        responses: dict[int | str, Any] = {200: {"model": model}}
        if path != "/v2":
            responses[404] = not_found
            responses[503] = (
                {"model": ModelReady, "description": "not ready", "headers": apidoc.RETRY_AFTER}
                if model is ModelReady
                else loading
            )
        app.add_api_route(
            path,
            handler,
            methods=["GET"],
            response_model=None,
            responses=responses,
            summary=summary,
        )
    app.add_api_route("/v2/models/{name}/infer", infer, methods=["POST"], include_in_schema=False)
    app.add_api_route(
        "/v2/models/{name}/versions/{version}/infer",
        infer_version,
        methods=["POST"],
        include_in_schema=False,
    )
    return [infer_route(settings, versioned) for versioned in (False, True)]


def infer_route(settings: Settings, versioned: bool) -> APIRoute:
    """The documentation-only twin of an infer route (apidoc.py)."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("name", keyword, annotation=str)]
    path = "/v2/models/{name}/infer"
    if versioned:
        params.append(inspect.Parameter("version", keyword, annotation=str))
        path = "/v2/models/{name}/versions/{version}/infer"
    params.append(inspect.Parameter("body", keyword, annotation=InferRequest))
    responses: dict[int | str, Any] = {
        200: {"description": "the requested outputs", "headers": apidoc.REQUEST_ID},
        400: {
            "model": InferError,
            "description": "invalid request: JSON, tensor names, shapes, datatypes, values; "
            "or an invalid X-Request-Timeout-Ms (`invalid_header: ...`)",
        },
        404: {"model": InferError, "description": "another model name, or version"},
        413: {"model": InferError, "description": "the body exceeds DP_MAX_BODY_BYTES"},
        500: {"model": InferError, "description": "the model failed on this batch"},
    }
    for status, entry in apidoc.shedding_responses(
        settings, "not ready, draining, or the feature store is down"
    ).items():
        responses[status] = {**entry, "model": InferError}
    return APIRoute(
        path,
        apidoc.documented(
            "infer_version" if versioned else "infer",
            [*params, *apidoc.header_params()],
            InferResponse,
        ),
        methods=["POST"],
        response_model=InferResponse,
        responses=responses,
        summary="Inference (Open Inference Protocol)",
        description="Same admission control, queue and model as POST /v1/predict; one input "
        "tensor per feature column (see the service README).",
        operation_id="infer_version" if versioned else "infer",
    )
