"""The benchmark's request mixes ("scenarios"), deterministic (seeded).

* ``one_row``: every request is one row given by ``zone_id``, with weather and recent
  rides: the cheapest valid prediction, the scenario of the earlier figures.
* ``mix``: closer to real callers: 1-32 rows per request (40 % single rows, the rest
  uniform over 2-32: about 11 rows on average), 30 % of the rows located by lat/lon
  (a point within 2 km of a zone centroid, inside the service area) instead of a zone
  id, and 2 % invalid requests, each of which must be answered 422 (a schema error
  such as hour 24, a negative ride count, an unknown field or a missing weather
  field, or a model error: a zone the model does not know, a point outside the
  service area). A contender that answers them otherwise counts errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from demand_predictor.features import FeatureSpec

SCENARIOS = ("one_row", "mix")
MIX_SINGLE_ROW_SHARE = 0.4
MIX_MAX_ROWS = 32
MIX_POINT_SHARE = 0.3
MIX_INVALID_SHARE = 0.02
_KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class Workload:
    name: str
    bodies: list[bytes]
    expected: list[int]  # the status each body must get: 200, or 422 (invalid)
    rows: list[int]  # instances per body
    description: str

    @property
    def valid_share(self) -> float:
        return sum(1 for s in self.expected if s == 200) / len(self.expected)

    @property
    def mean_rows(self) -> float:
        """Mean rows of the valid requests."""
        valid = [r for r, s in zip(self.rows, self.expected, strict=True) if s == 200]
        return sum(valid) / len(valid)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "bodies": len(self.bodies),
            "valid_share": round(self.valid_share, 4),
            "mean_rows_of_valid": round(self.mean_rows, 2),
            "max_rows": max(self.rows),
            "invalid_bodies": sum(1 for s in self.expected if s != 200),
        }


def _row(rng: np.random.Generator, n_zones: int) -> dict[str, Any]:
    return {
        "zone_id": int(rng.integers(0, n_zones)),
        "hour": int(rng.integers(0, 24)),
        "day_of_week": int(rng.integers(0, 7)),
        "weather": {
            "temperature_c": round(float(rng.normal(12, 6)), 1),
            "precipitation_mm_h": round(float(rng.exponential(1.0)), 1),
            "wind_speed_m_s": round(float(rng.uniform(0, 10)), 1),
        },
        "recent_rides": rng.poisson(8, 4).tolist(),
    }


def _encode(instances: list[Any]) -> bytes:
    return json.dumps({"instances": instances}).encode()


def one_row(n_zones: int = 32, count: int = 256, seed: int = 11) -> Workload:
    rng = np.random.default_rng(seed)
    bodies = [_encode([_row(rng, n_zones)]) for _ in range(count)]
    return Workload(
        "one_row",
        bodies,
        [200] * count,
        [1] * count,
        "1 row per request, by zone_id, with weather and recent rides",
    )


def _at_point(row: dict[str, Any], rng: np.random.Generator, spec: FeatureSpec) -> dict[str, Any]:
    zone = int(rng.integers(0, spec.n_zones))
    km = float(rng.uniform(0.0, 2.0))
    angle = float(rng.uniform(0.0, 2 * math.pi))
    lat = float(spec.zone_lat[zone]) + km * math.sin(angle) / _KM_PER_DEGREE
    lon_scale = _KM_PER_DEGREE * math.cos(math.radians(float(spec.zone_lat[zone])))
    lon = float(spec.zone_lon[zone]) + km * math.cos(angle) / lon_scale
    point = {k: v for k, v in row.items() if k != "zone_id"}
    return {**point, "lat": round(lat, 5), "lon": round(lon, 5)}


INVALID_KINDS = (
    "hour_24",
    "negative_rides",
    "unknown_field",
    "weather_field_missing",
    "zone_beyond_model",
    "outside_service_area",
)


def _spoil(row: dict[str, Any], kind: str, spec: FeatureSpec) -> dict[str, Any]:
    bad = json.loads(json.dumps(row))
    if kind == "hour_24":
        bad["hour"] = 24
    elif kind == "negative_rides":
        bad["recent_rides"][2] = -3
    elif kind == "unknown_field":
        bad["surge"] = True
    elif kind == "weather_field_missing":
        del bad["weather"]["wind_speed_m_s"]
    elif kind == "zone_beyond_model":
        bad["zone_id"] = spec.n_zones
    elif kind == "outside_service_area":
        bad.pop("zone_id", None)
        bad["lat"] = float(spec.zone_lat.max()) + 1.0  # ~111 km north of every zone
        bad["lon"] = float(spec.zone_lon.mean())
    else:
        raise ValueError(kind)
    return bad


def mix(spec: FeatureSpec, count: int = 500, seed: int = 13) -> Workload:
    rng = np.random.default_rng(seed)
    n_invalid = max(1, round(count * MIX_INVALID_SHARE))
    invalid_at = set(rng.choice(count, size=n_invalid, replace=False).tolist())
    bodies: list[bytes] = []
    expected: list[int] = []
    rows: list[int] = []
    kinds = iter(INVALID_KINDS * (n_invalid // len(INVALID_KINDS) + 1))
    for index in range(count):
        if rng.random() < MIX_SINGLE_ROW_SHARE:
            n = 1
        else:
            n = int(rng.integers(2, MIX_MAX_ROWS + 1))
        instances = []
        for _ in range(n):
            row = _row(rng, spec.n_zones)
            if rng.random() < MIX_POINT_SHARE:
                row = _at_point(row, rng, spec)
            instances.append(row)
        if index in invalid_at:
            victim = int(rng.integers(0, n))
            instances[victim] = _spoil(instances[victim], next(kinds), spec)
            expected.append(422)
        else:
            expected.append(200)
        bodies.append(_encode(instances))
        rows.append(n)
    return Workload(
        "mix",
        bodies,
        expected,
        rows,
        f"1-{MIX_MAX_ROWS} rows per request ({MIX_SINGLE_ROW_SHARE:.0%} single rows, the rest "
        f"uniform 2-{MIX_MAX_ROWS}), {MIX_POINT_SHARE:.0%} of rows by lat/lon, "
        f"{MIX_INVALID_SHARE:.0%} invalid requests that must get 422",
    )


def build(name: str, spec: FeatureSpec) -> Workload:
    if name == "one_row":
        return one_row(spec.n_zones)
    if name == "mix":
        return mix(spec)
    raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
