"""Feature engineering, vectorised over a batch; shared by training and serving.

Raw inputs arrive as columns (one numpy array per field). ``FeatureSpec`` carries what
the trained model fixed: the zone centroids (to map lat/lon to a zone), the service
area, and the normalisation constants of the numeric features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HISTORY = 4
FEATURE_NAMES: tuple[str, ...] = (
    "hour_sin",
    "hour_cos",
    "week_sin_1",
    "week_cos_1",
    "week_sin_2",
    "week_cos_2",
    "is_weekend",
    "temperature_c",
    "log1p_precipitation_mm_h",
    "wind_speed_m_s",
    "log1p_rides_t-4",
    "log1p_rides_t-3",
    "log1p_rides_t-2",
    "log1p_rides_t-1",
    "log1p_rides_mean",
    "rides_trend",
)
# Largest distance (km) from a zone centroid that still counts as inside the service area.
MAX_ZONE_DISTANCE_KM = 5.0
_KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class RawColumns:
    """One request batch, column-wise. ``zone_id`` is -1 where lat/lon were given."""

    zone_id: np.ndarray  # int64 (n,)
    lat: np.ndarray  # float64 (n,), NaN where zone_id was given
    lon: np.ndarray  # float64 (n,)
    hour: np.ndarray  # int64 (n,)
    day_of_week: np.ndarray  # int64 (n,), 0 = Monday
    temperature_c: np.ndarray  # float64 (n,)
    precipitation_mm_h: np.ndarray  # float64 (n,)
    wind_speed_m_s: np.ndarray  # float64 (n,)
    recent_rides: np.ndarray  # float64 (n, HISTORY), oldest first

    def __len__(self) -> int:
        return int(self.zone_id.shape[0])

    @staticmethod
    def concat(parts: list[RawColumns]) -> RawColumns:
        if len(parts) == 1:
            return parts[0]
        return RawColumns(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in RawColumns.__dataclass_fields__
            }
        )

    def take(self, rows: np.ndarray) -> RawColumns:
        return RawColumns(
            **{name: getattr(self, name)[rows] for name in RawColumns.__dataclass_fields__}
        )


@dataclass(frozen=True)
class FeatureSpec:
    zone_lat: np.ndarray
    zone_lon: np.ndarray
    mean: np.ndarray  # float32 (F,)
    std: np.ndarray  # float32 (F,)

    @property
    def n_zones(self) -> int:
        return int(self.zone_lat.shape[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "names": list(FEATURE_NAMES),
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
            "zones": {
                "count": self.n_zones,
                "lat": [float(x) for x in self.zone_lat],
                "lon": [float(x) for x in self.zone_lon],
                "max_distance_km": MAX_ZONE_DISTANCE_KM,
            },
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> FeatureSpec:
        names = tuple(data["names"])
        if names != FEATURE_NAMES:
            raise ValueError(
                f"feature schema mismatch: artifact has {list(names)}, "
                f"this code computes {list(FEATURE_NAMES)}"
            )
        spec = FeatureSpec(
            zone_lat=np.asarray(data["zones"]["lat"], dtype=np.float64),
            zone_lon=np.asarray(data["zones"]["lon"], dtype=np.float64),
            mean=np.asarray(data["mean"], dtype=np.float32),
            std=np.asarray(data["std"], dtype=np.float32),
        )
        if spec.mean.shape != (len(FEATURE_NAMES),) or spec.std.shape != spec.mean.shape:
            raise ValueError("normalisation constants do not match the feature count")
        if not (np.all(np.isfinite(spec.mean)) and np.all(spec.std > 0)):
            raise ValueError("normalisation constants must be finite with std > 0")
        if spec.n_zones < 1 or spec.zone_lon.shape != spec.zone_lat.shape:
            raise ValueError("zone centroids are missing or inconsistent")
        return spec


def nearest_zone(lat: np.ndarray, lon: np.ndarray, spec: FeatureSpec) -> tuple[np.ndarray, ...]:
    """Nearest zone centroid (equirectangular distance) and its distance in km."""
    cos_lat = np.cos(np.radians(lat))[:, None]
    d_lat = lat[:, None] - spec.zone_lat[None, :]
    d_lon = (lon[:, None] - spec.zone_lon[None, :]) * cos_lat
    dist_km = np.sqrt(d_lat**2 + d_lon**2) * _KM_PER_DEGREE
    zone = np.argmin(dist_km, axis=1)
    return zone.astype(np.int64), dist_km[np.arange(lat.shape[0]), zone]


def resolve_zones(columns: RawColumns, spec: FeatureSpec) -> np.ndarray:
    zones = columns.zone_id.copy()
    by_location = zones < 0
    if np.any(by_location):
        found, _ = nearest_zone(columns.lat[by_location], columns.lon[by_location], spec)
        zones[by_location] = found
    return zones


def numeric_features(columns: RawColumns) -> np.ndarray:
    """Un-normalised numeric features, float32 (n, len(FEATURE_NAMES))."""
    hour = columns.hour.astype(np.float64)
    hour_of_week = columns.day_of_week * 24 + hour
    day_angle = 2 * np.pi * hour / 24.0
    week_angle = 2 * np.pi * hour_of_week / 168.0
    log_rides = np.log1p(columns.recent_rides)
    out = np.empty((len(columns), len(FEATURE_NAMES)), dtype=np.float64)
    out[:, 0] = np.sin(day_angle)
    out[:, 1] = np.cos(day_angle)
    out[:, 2] = np.sin(week_angle)
    out[:, 3] = np.cos(week_angle)
    out[:, 4] = np.sin(2 * week_angle)
    out[:, 5] = np.cos(2 * week_angle)
    out[:, 6] = columns.day_of_week >= 5
    out[:, 7] = columns.temperature_c
    out[:, 8] = np.log1p(columns.precipitation_mm_h)
    out[:, 9] = columns.wind_speed_m_s
    out[:, 10 : 10 + HISTORY] = log_rides
    out[:, 14] = np.log1p(columns.recent_rides.mean(axis=1))
    out[:, 15] = log_rides[:, -1] - log_rides[:, 0]
    return out.astype(np.float32)


def fit_normalisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = features.mean(axis=0).astype(np.float32)
    std = features.std(axis=0).astype(np.float32)
    std[std < 1e-6] = 1.0
    return mean, std


def build_inputs(columns: RawColumns, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(zone indices int64 (n,), normalised features float32 (n, F)) for the model."""
    zones = resolve_zones(columns, spec)
    features = (numeric_features(columns) - spec.mean) / spec.std
    return zones, features
