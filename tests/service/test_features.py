from __future__ import annotations

from pathlib import Path

import numpy as np
from demand_predictor import artifact
from demand_predictor.features import FEATURE_NAMES, RawColumns, build_inputs, nearest_zone
from demand_predictor.predictor import bucket_for, bucket_sizes, synthetic_rows


def spec(model_dir: Path):
    return artifact.read_manifest(model_dir).features


def test_lat_lon_maps_to_the_nearest_zone(model_dir: Path) -> None:
    s = spec(model_dir)
    zone, dist = nearest_zone(s.zone_lat[[5, 17]], s.zone_lon[[5, 17]], s)
    assert zone.tolist() == [5, 17]
    assert np.allclose(dist, 0.0)


def test_features_are_finite_and_vectorised(model_dir: Path) -> None:
    s = spec(model_dir)
    rows = synthetic_rows(20, s.n_zones)
    zones, features = build_inputs(rows, s)
    assert features.shape == (20, len(FEATURE_NAMES)) and features.dtype == np.float32
    assert np.all(np.isfinite(features))
    # Row-by-row equals the batch: no cross-row leakage in feature engineering.
    for i in (0, 7, 19):
        one_zone, one = build_inputs(rows.take(np.array([i])), s)
        assert one_zone[0] == zones[i]
        assert np.allclose(one[0], features[i])


def test_location_rows_resolve_like_zone_rows(model_dir: Path) -> None:
    s = spec(model_dir)
    by_zone = synthetic_rows(3, s.n_zones)
    by_point = RawColumns(
        **{
            **{k: getattr(by_zone, k) for k in RawColumns.__dataclass_fields__},
            "zone_id": np.full(3, -1, dtype=np.int64),
            "lat": s.zone_lat[by_zone.zone_id] + 0.001,
            "lon": s.zone_lon[by_zone.zone_id] - 0.001,
        }
    )
    assert np.array_equal(build_inputs(by_point, s)[0], by_zone.zone_id)


def test_buckets_cover_every_batch_size() -> None:
    assert bucket_sizes(64) == (1, 2, 4, 8, 16, 32, 64)
    assert bucket_sizes(48) == (1, 2, 4, 8, 16, 32, 48)
    assert [bucket_for(n, bucket_sizes(48)) for n in (1, 3, 33, 48)] == [1, 4, 48, 48]
