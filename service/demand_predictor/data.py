"""Deterministic synthetic ride-demand data.

The simulated city has ``n_zones`` zones on a grid inside a bounding box. Time runs in
15-minute intervals over ``weeks`` weeks. Demand in zone z at interval t is

    rate[z, t] = base[z] * profile(kind[z], hour_of_week(t)) * weather(t) * exp(ar[z, t])
    rides[z, t] ~ Poisson(rate[z, t])

* ``base``: per-zone level, log-normal (a few busy zones, many quiet ones).
* ``profile``: hour-of-week seasonality. Business zones peak at the weekday commute
  (08:00 and 18:00), residential zones in the evening and on weekend nights.
* ``weather``: rain raises demand (saturating in mm/h), cold and heat raise it mildly,
  strong wind a little. Weather is shared by all zones and evolves smoothly.
* ``ar``: per-zone AR(1) log-deviation (phi 0.9), which makes recent ride counts
  informative about the next interval (recent-history autocorrelation).
* Poisson sampling is the irreducible noise.

A sample is (zone, hour, day of week, weather, rides in the 4 previous intervals) ->
rides in the next interval. Same seed -> same arrays, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demand_predictor.features import HISTORY, RawColumns

INTERVALS_PER_DAY = 96
INTERVALS_PER_WEEK = 7 * INTERVALS_PER_DAY
# Service area: a generic city bounding box (lat_min, lat_max, lon_min, lon_max).
BOUNDS = (40.60, 40.90, -74.05, -73.75)


@dataclass(frozen=True)
class City:
    zone_lat: np.ndarray
    zone_lon: np.ndarray
    base: np.ndarray
    business: np.ndarray  # bool per zone


@dataclass(frozen=True)
class Dataset:
    columns: RawColumns
    target: np.ndarray  # rides in the next interval, float64
    week: np.ndarray  # week index of each sample, for a time-based split


def make_city(n_zones: int, rng: np.random.Generator) -> City:
    side = int(np.ceil(np.sqrt(n_zones)))
    lat_min, lat_max, lon_min, lon_max = BOUNDS
    idx = np.arange(n_zones)
    lat = lat_min + (idx // side + 0.5) * (lat_max - lat_min) / side
    lon = lon_min + (idx % side + 0.5) * (lon_max - lon_min) / side
    base = np.exp(rng.normal(1.6, 0.7, n_zones))
    business = rng.random(n_zones) < 0.35
    return City(zone_lat=lat, zone_lon=lon, base=base, business=business)


def hourly_profile(business: np.ndarray, hour: np.ndarray, dow: np.ndarray) -> np.ndarray:
    """Multiplicative seasonality, shape (zones, times)."""
    h = hour[None, :].astype(np.float64)
    weekday = (dow < 5)[None, :]
    commute = np.exp(-((h - 8.0) ** 2) / 2.0) + np.exp(-((h - 18.0) ** 2) / 3.0)
    evening = np.exp(-((h - 20.0) ** 2) / 8.0)
    late = np.exp(-(((h + 2.0) % 24 - 1.0) ** 2) / 4.0)  # peaks around 23:00
    daytime = 0.25 + 0.5 * np.exp(-((h - 13.0) ** 2) / 18.0)
    biz = business[:, None]
    weekday_shape = np.where(biz, daytime + 1.6 * commute, daytime + 0.6 * commute + evening)
    weekend_shape = np.where(biz, 0.5 * daytime + 0.3 * late, daytime + 0.8 * evening + late)
    return np.where(weekday, weekday_shape, weekend_shape) + 0.05


def simulate_weather(n_times: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    t = np.arange(n_times)
    day_phase = 2 * np.pi * (t % INTERVALS_PER_DAY) / INTERVALS_PER_DAY
    slow = np.cumsum(rng.normal(0.0, 0.08, n_times))
    slow = slow - np.linspace(slow[0], slow[-1], n_times)  # no long drift
    temperature = 12.0 + 6.0 * np.sin(day_phase - 2.0) + np.clip(slow, -15, 15)
    # Rain: storms arrive as a Bernoulli process and decay geometrically.
    storms = rng.random(n_times) < 0.012
    intensity = rng.gamma(1.5, 3.0, n_times) * storms
    precipitation = np.zeros(n_times)
    level = 0.0
    for i in range(n_times):
        level = 0.93 * level + intensity[i]
        precipitation[i] = level
    precipitation = np.where(precipitation < 0.1, 0.0, precipitation)
    wind = np.clip(4.0 + 2.0 * rng.standard_normal(n_times) + 0.3 * precipitation, 0.0, 40.0)
    return temperature, precipitation, wind


def weather_effect(temperature: np.ndarray, precipitation: np.ndarray, wind: np.ndarray):
    rain = 1.0 + 0.9 * (1.0 - np.exp(-precipitation / 3.0))
    comfort = 1.0 + 0.012 * np.abs(temperature - 18.0)
    gust = 1.0 + 0.01 * np.clip(wind - 8.0, 0.0, None)
    return rain * comfort * gust


def generate(seed: int, n_zones: int = 32, weeks: int = 8) -> tuple[City, Dataset]:
    rng = np.random.default_rng(seed)
    city = make_city(n_zones, rng)
    n_times = weeks * INTERVALS_PER_WEEK
    t = np.arange(n_times)
    hour = (t % INTERVALS_PER_DAY) // 4
    dow = (t // INTERVALS_PER_DAY) % 7
    temperature, precipitation, wind = simulate_weather(n_times, rng)

    ar = np.zeros((n_zones, n_times))
    shocks = rng.normal(0.0, 0.12, (n_zones, n_times))
    for i in range(1, n_times):
        ar[:, i] = 0.9 * ar[:, i - 1] + shocks[:, i]
    rate = (
        city.base[:, None]
        * hourly_profile(city.business, hour, dow)
        * weather_effect(temperature, precipitation, wind)[None, :]
        * np.exp(ar)
    )
    rides = rng.poisson(rate).astype(np.float64)

    # Samples: predict interval i from the HISTORY intervals before it.
    times = np.arange(HISTORY, n_times)
    zone_grid, time_grid = np.meshgrid(np.arange(n_zones), times, indexing="ij")
    zone_idx = zone_grid.ravel()
    time_idx = time_grid.ravel()
    history = np.stack([rides[zone_idx, time_idx - k] for k in range(HISTORY, 0, -1)], axis=1)
    n = zone_idx.size
    columns = RawColumns(
        zone_id=zone_idx.astype(np.int64),
        lat=np.full(n, np.nan),
        lon=np.full(n, np.nan),
        hour=hour[time_idx].astype(np.int64),
        day_of_week=dow[time_idx].astype(np.int64),
        temperature_c=temperature[time_idx],
        precipitation_mm_h=precipitation[time_idx],
        wind_speed_m_s=wind[time_idx],
        recent_rides=history,
    )
    dataset = Dataset(
        columns=columns,
        target=rides[zone_idx, time_idx],
        week=time_idx // INTERVALS_PER_WEEK,
    )
    return city, dataset
