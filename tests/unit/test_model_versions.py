"""The controller's model store and the version an environment serves
(disposable/state/models.py), with real trained artifacts (one epoch: seconds)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from disposable.errors import DisposableError
from disposable.paths import SERVICE_DIR
from disposable.state import models


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sys.path.insert(0, str(SERVICE_DIR))
    from demand_predictor import train

    made = {}
    for version, seed in (("1.0.0", 7), ("1.1.0", 8)):
        made[version] = tmp_path_factory.mktemp(f"model-{version}")
        train.train(made[version], seed=seed, epochs=1, version=version)
    return made


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> Path:
    monkeypatch.setenv("DML_MODEL_STORE_DIR", str(tmp_path / "store"))
    return models.store_dir()


def test_publish_is_idempotent_and_the_descriptor_lists_the_versions(
    store: Path, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    first = models.publish(artifacts["1.0.0"])
    assert models.publish(artifacts["1.0.0"]) == first
    models.publish(artifacts["1.1.0"])
    descriptor = json.loads(models.write_descriptor(tmp_path).read_text())
    assert [v["version"] for v in descriptor["versions"]] == ["1.0.0", "1.1.0"]
    assert descriptor["newest"] == "1.1.0" and descriptor["store_dir"] == str(store)


def test_the_store_is_readable_by_the_hosts_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, artifacts: dict[str, Path]
) -> None:
    private = tmp_path / "private-store"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("DML_MODEL_STORE_DIR", str(private))
    old = os.umask(0o077)
    try:
        models.publish(artifacts["1.0.0"])
    finally:
        os.umask(old)
    assert private.stat().st_mode & 0o777 == 0o755
    assert (private / models.MODEL_NAME).stat().st_mode & 0o777 == 0o755
    assert (private / models.MODEL_NAME / "index.json").stat().st_mode & 0o777 == 0o644
    assert (private / models.MODEL_NAME / "1.0.0").stat().st_mode & 0o777 == 0o755


def test_a_rebuilt_model_with_the_same_weights_is_the_same_version(
    store: Path, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    """A retrain records another duration in its manifest: same weights, same version."""
    models.publish(artifacts["1.0.0"])
    again = tmp_path / "again"
    shutil.copytree(artifacts["1.0.0"], again)
    manifest = json.loads((again / "manifest.json").read_text())
    manifest["training"]["duration_s"] = 99.0
    (again / "manifest.json").write_text(json.dumps(manifest))
    assert models.publish(again)["version"] == "1.0.0"


def test_other_weights_under_a_published_version_are_refused(
    store: Path, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    models.publish(artifacts["1.0.0"])
    impostor = tmp_path / "impostor"
    shutil.copytree(artifacts["1.1.0"], impostor)
    manifest = json.loads((impostor / "manifest.json").read_text())
    manifest["model"]["version"] = "1.0.0"
    (impostor / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DisposableError, match="differs from demand-predictor 1.0.0") as err:
        models.publish(impostor)
    assert "new version" in err.value.hint


def test_an_environment_keeps_its_version_until_a_deploy_and_rolls_back(
    store: Path, artifacts: dict[str, Path]
) -> None:
    models.publish(artifacts["1.0.0"])
    assert models.pin("local")["version"] == "1.0.0"
    models.publish(artifacts["1.1.0"])
    assert models.serving("local")["version"] == "1.0.0", "a later publish changes nothing by itself"
    assert models.record_deploy("local", "1.1.0") == {"version": "1.1.0", "previous": ["1.0.0"]}
    assert models.record_rollback("local", "1.0.0") == {"version": "1.0.0", "previous": []}


def test_an_unpublished_version_is_named_with_the_published_ones(store: Path, artifacts: dict[str, Path]) -> None:
    models.publish(artifacts["1.0.0"])
    with pytest.raises(DisposableError, match=r"'9\.9\.9' is not in the model store .*published: 1\.0\.0"):
        models.entry("9.9.9")
