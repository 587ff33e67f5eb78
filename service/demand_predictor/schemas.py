"""Request schema, its validation, and conversion to feature columns.

Validation is strict: JSON integers where integers are meant, no NaN/Infinity, physical
ranges on weather, non-negative ride counts, no unknown fields. Checks that depend on
the loaded model (zone id range, location inside the service area) run after parsing,
vectorised, and report errors in the same format.

Two paths, one set of rules. ``fast_columns`` is a hand-written check that accepts only
requests that are plainly valid under the pydantic models below (a strict subset of
what they accept) and turns them into columns with one numpy call; it costs a few
microseconds per instance. Anything it does not accept goes through the pydantic
models, which either accept it after all or produce the 422 details. So error
messages always come from pydantic, and the common (valid) request skips it.

``weather`` and ``recent_rides`` may be left out when an online feature store is
configured (feature_store.py): the columns then hold NaN there (a client cannot send
NaN), and the service fills them from the store. Values the client sends always win.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from demand_predictor.features import HISTORY, FeatureSpec, RawColumns, nearest_zone

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
MAX_RIDES = 1_000_000


class Weather(BaseModel):
    model_config = _STRICT
    temperature_c: float = Field(ge=-60.0, le=60.0, description="air temperature, Celsius")
    precipitation_mm_h: float = Field(ge=0.0, le=500.0, description="rain, mm per hour")
    wind_speed_m_s: float = Field(ge=0.0, le=120.0, description="wind speed, m/s")


class Instance(BaseModel):
    """One prediction: where (zone_id, or lat+lon), when, and optionally weather and recent
    rides (left out: taken from the online feature store, if one is configured)."""

    model_config = _STRICT
    zone_id: int | None = Field(default=None, ge=0, le=1_000_000)
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    hour: int = Field(ge=0, le=23, description="local hour of day")
    day_of_week: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    weather: Weather | None = None
    recent_rides: list[Annotated[int, Field(ge=0, le=MAX_RIDES)]] | None = Field(
        default=None,
        min_length=HISTORY,
        max_length=HISTORY,
        description=f"rides in the zone in each of the last {HISTORY} 15-minute intervals, "
        "oldest first",
    )

    @model_validator(mode="after")
    def _one_location(self) -> Instance:
        has_zone = self.zone_id is not None
        has_point = self.lat is not None or self.lon is not None
        if has_zone and has_point:
            raise ValueError("give either zone_id or lat+lon, not both")
        if not has_zone and (self.lat is None or self.lon is None):
            raise ValueError("give zone_id, or both lat and lon")
        return self


class InvalidInput(ValueError):
    """A request another wire format's parser refuses (kserve.py): the HTTP status, the
    error code and the message (app.py's ``PredictEndpoint.run`` answers it)."""

    def __init__(self, message: str, status: int = 422, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def request_model(max_rows: int) -> type[BaseModel]:
    """The body of ``POST /v1/predict`` (its row cap is ``DP_MAX_ROWS``)."""

    class PredictRequest(BaseModel):
        model_config = _STRICT
        instances: list[Instance] = Field(min_length=1, max_length=max_rows)

    return PredictRequest


def request_adapter(max_rows: int) -> TypeAdapter[Any]:
    return TypeAdapter(request_model(max_rows))


# The responses of POST /v1/predict, for the OpenAPI document (apidoc.py). The handler
# formats its bodies itself (a template for 200, error_bytes for errors); a test
# validates real responses against the schemas these models give.
_DOCUMENTED = ConfigDict(protected_namespaces=())


class Prediction(BaseModel):
    model_config = _DOCUMENTED
    demand: float = Field(description="predicted rides in the next 15 minutes (the median)")
    lower: float = Field(description="5th percentile: lower end of the 90 % interval")
    upper: float = Field(description="95th percentile: upper end of the 90 % interval")
    stale: bool = Field(
        description="a feature read from the online feature store was stale or missing"
    )
    model_version: str = Field(description="the model version that computed this row")


class PredictResponse(BaseModel):
    model_config = _DOCUMENTED
    model: str = Field(description="model name")
    model_version: str
    interval: str = Field(description='"90% (5th to 95th percentile)"')
    unit: str = Field(description='"rides in the zone in the next 15 minutes"')
    predictions: list[Prediction] = Field(description="one per instance, in request order")


class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable kind of problem, e.g. less_than_equal")
    loc: list[str | int] = Field(description='where, e.g. ["instances", 1, "hour"]')
    msg: str


class ErrorResponse(BaseModel):
    error: str = Field(description="machine-readable code, e.g. invalid_request, queue_full")
    message: str = Field(description="what went wrong and what to do about it")
    details: list[ErrorDetail] | None = Field(
        default=None, description="every validation problem (422 and 400 only)"
    )


def error_list(exc: ValidationError) -> list[dict[str, Any]]:
    return exc.errors(include_url=False, include_input=False, include_context=False)


_NO_WEATHER = Weather.model_construct(
    temperature_c=float("nan"), precipitation_mm_h=float("nan"), wind_speed_m_s=float("nan")
)
_NO_RIDES = [float("nan")] * HISTORY


def to_columns(instances: list[Instance]) -> RawColumns:
    """Columns of validated instances; NaN where weather or recent_rides were left out."""
    n = len(instances)
    zone = np.fromiter((-1 if i.zone_id is None else i.zone_id for i in instances), np.int64, n)
    nan = float("nan")
    weather = [_NO_WEATHER if i.weather is None else i.weather for i in instances]
    return RawColumns(
        zone_id=zone,
        lat=np.fromiter((nan if i.lat is None else i.lat for i in instances), np.float64, n),
        lon=np.fromiter((nan if i.lon is None else i.lon for i in instances), np.float64, n),
        hour=np.fromiter((i.hour for i in instances), np.int64, n),
        day_of_week=np.fromiter((i.day_of_week for i in instances), np.int64, n),
        temperature_c=np.fromiter((w.temperature_c for w in weather), np.float64, n),
        precipitation_mm_h=np.fromiter((w.precipitation_mm_h for w in weather), np.float64, n),
        wind_speed_m_s=np.fromiter((w.wind_speed_m_s for w in weather), np.float64, n),
        recent_rides=np.asarray(
            [_NO_RIDES if i.recent_rides is None else i.recent_rides for i in instances],
            dtype=np.float64,
        ).reshape(n, HISTORY),
    )


def missing_features(columns: RawColumns) -> tuple[np.ndarray, np.ndarray]:
    """(rows without recent_rides, rows without weather): bool masks, for the store."""
    return np.isnan(columns.recent_rides[:, 0]), np.isnan(columns.temperature_c)


def missing_feature_errors(columns: RawColumns) -> list[dict[str, Any]]:
    """422 details for rows that left features out while no feature store is configured."""
    no_rides, no_weather = missing_features(columns)
    errors: list[dict[str, Any]] = []
    why = "required: no online feature store is configured on this service"
    for row in np.flatnonzero(no_weather):
        errors.append({"type": "missing", "loc": ["instances", int(row), "weather"], "msg": why})
    for row in np.flatnonzero(no_rides):
        errors.append(
            {"type": "missing", "loc": ["instances", int(row), "recent_rides"], "msg": why}
        )
    return errors


def model_errors(columns: RawColumns, spec: FeatureSpec, max_km: float) -> list[dict[str, Any]]:
    """Errors for rows the loaded model cannot serve (unknown zone, outside the area)."""
    errors: list[dict[str, Any]] = []
    for row in np.flatnonzero(columns.zone_id >= spec.n_zones):
        errors.append(
            {
                "type": "zone_unknown",
                "loc": ["instances", int(row), "zone_id"],
                "msg": f"zone_id must be between 0 and {spec.n_zones - 1} for this model",
            }
        )
    by_location = np.flatnonzero(columns.zone_id < 0)
    if by_location.size:
        _, dist = nearest_zone(columns.lat[by_location], columns.lon[by_location], spec)
        for row, km in zip(by_location[dist > max_km], dist[dist > max_km], strict=True):
            errors.append(
                {
                    "type": "outside_service_area",
                    "loc": ["instances", int(row)],
                    "msg": f"lat/lon is {km:.1f} km from the nearest zone; the service area "
                    f"extends {max_km:.1f} km around the zone centroids",
                }
            )
    return errors


_INSTANCE_KEYS = frozenset(Instance.model_fields)
_WEATHER_KEYS = frozenset(Weather.model_fields)
_COLUMNS = 8 + HISTORY  # zone, lat, lon, hour, day, temperature, rain, wind, rides...


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")  # NaN, Infinity: let pydantic explain


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _number(value: Any, low: float, high: float) -> bool:
    """A JSON number (not a bool) within [low, high]; NaN fails every comparison."""
    kind = type(value)
    return (kind is float or kind is int) and low <= value <= high


def fast_columns(body: bytes, max_rows: int, n_zones: int) -> tuple[RawColumns, bool] | None:
    """(columns, any row located by lat/lon) for a plainly valid request, else None.

    Accepts a subset of what ``request_adapter`` accepts, with the same values; None
    means "not sure": validate with pydantic. Rows given by lat/lon still need the
    service-area check (``model_errors``); zone ids are checked against ``n_zones``.
    """
    try:
        payload = _DECODER.decode(body.decode("utf-8"))
    except (ValueError, RecursionError):  # includes UnicodeDecodeError, JSONDecodeError
        return None
    if type(payload) is not dict or len(payload) != 1:
        return None
    instances = payload.get("instances")
    if type(instances) is not list or not 0 < len(instances) <= max_rows:
        return None
    nan = float("nan")
    rows: list[tuple[float, ...]] = []
    by_point = False
    for item in instances:
        if type(item) is not dict or not item.keys() <= _INSTANCE_KEYS:
            return None
        hour = item.get("hour")
        day = item.get("day_of_week")
        if not (type(hour) is int and 0 <= hour <= 23 and type(day) is int and 0 <= day <= 6):
            return None
        if "weather" in item:
            weather = item["weather"]
            if type(weather) is not dict or len(weather) != 3:
                return None
            temperature = weather.get("temperature_c")
            rain = weather.get("precipitation_mm_h")
            wind = weather.get("wind_speed_m_s")
            if not (
                _number(temperature, -60.0, 60.0)
                and _number(rain, 0.0, 500.0)
                and _number(wind, 0.0, 120.0)
            ):
                return None
        else:  # from the feature store
            temperature = rain = wind = nan
        if "recent_rides" in item:
            rides = item["recent_rides"]
            if type(rides) is not list or len(rides) != HISTORY:
                return None
            for count in rides:
                if type(count) is not int or not 0 <= count <= MAX_RIDES:
                    return None
        else:  # from the feature store
            rides = _NO_RIDES
        if "zone_id" in item:
            zone = item["zone_id"]
            if type(zone) is not int or not 0 <= zone < n_zones or "lat" in item or "lon" in item:
                return None
            lat = lon = nan
        else:
            zone = -1
            lat = item.get("lat")
            lon = item.get("lon")
            if not (_number(lat, -90.0, 90.0) and _number(lon, -180.0, 180.0)):
                return None
            by_point = True
        rows.append((zone, lat, lon, hour, day, temperature, rain, wind, *rides))
    table = np.array(rows, dtype=np.float64)
    columns = RawColumns(
        zone_id=table[:, 0].astype(np.int64),
        lat=table[:, 1],
        lon=table[:, 2],
        hour=table[:, 3].astype(np.int64),
        day_of_week=table[:, 4].astype(np.int64),
        temperature_c=table[:, 5],
        precipitation_mm_h=table[:, 6],
        wind_speed_m_s=table[:, 7],
        recent_rides=table[:, 8:_COLUMNS],
    )
    return columns, by_point
