from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from demand_predictor import data, train
from demand_predictor.features import FEATURE_NAMES

from conftest import TRAIN_SEED


def test_same_seed_gives_identical_weights(tmp_path: Path, manifest: dict[str, Any]) -> None:
    started = time.perf_counter()
    again = train.train(tmp_path / "again", seed=TRAIN_SEED, epochs=4, version="1.0.0")
    elapsed = time.perf_counter() - started
    assert again["weights"]["sha256"] == manifest["weights"]["sha256"]
    assert elapsed < 30, f"training took {elapsed:.1f} s"


def test_other_seed_gives_other_weights(tmp_path: Path, manifest: dict[str, Any]) -> None:
    other = train.train(tmp_path / "other", seed=TRAIN_SEED + 1, epochs=1, version="1.0.0")
    assert other["weights"]["sha256"] != manifest["weights"]["sha256"]


def test_data_generation_is_deterministic() -> None:
    _, first = data.generate(seed=3, weeks=1)
    _, second = data.generate(seed=3, weeks=1)
    assert np.array_equal(first.target, second.target)
    assert np.array_equal(first.columns.recent_rides, second.columns.recent_rides)


def test_manifest_describes_the_artifact(model_dir: Path, manifest: dict[str, Any]) -> None:
    weights = (model_dir / manifest["weights"]["file"]).read_bytes()
    assert hashlib.sha256(weights).hexdigest() == manifest["weights"]["sha256"]
    assert manifest["weights"]["size_bytes"] == len(weights)
    assert manifest["model"] == {"name": "demand-predictor", "version": "1.0.0"}
    assert manifest["features"]["names"] == list(FEATURE_NAMES)
    assert len(manifest["features"]["mean"]) == len(FEATURE_NAMES)
    assert manifest["training"]["torch_version"] == torch.__version__
    # safetensors: 8-byte little-endian header length, then a JSON header; no pickle.
    header_len = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8 : 8 + header_len])
    assert "zone_embedding.weight" in header


def test_model_learns_something(manifest: dict[str, Any]) -> None:
    metrics = manifest["training"]["metrics"]
    # Beats "next interval = last interval" and the 90 % interval roughly holds.
    assert metrics["validation"]["mae"] < metrics["validation_baseline_last_interval_mae"]
    assert 0.8 < metrics["validation"]["interval_coverage"] < 0.97
