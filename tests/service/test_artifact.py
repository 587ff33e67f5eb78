from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from demand_predictor import artifact

from conftest import ServerProcess


@pytest.fixture
def artifact_copy(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def flip_last_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01
    path.write_bytes(bytes(blob))


def test_load_verifies_and_builds_the_model(model_dir: Path) -> None:
    loaded = artifact.load(model_dir, torch.device("cpu"))
    assert loaded.manifest.name == "demand-predictor"
    assert not loaded.net.training


def test_checksum_mismatch_names_file_expected_and_actual(artifact_copy: Path) -> None:
    expected = json.loads((artifact_copy / "manifest.json").read_text())["weights"]["sha256"]
    weights = artifact_copy / "model.safetensors"
    flip_last_byte(weights)
    actual = artifact.sha256_hex(weights.read_bytes())
    with pytest.raises(artifact.ArtifactError) as err:
        artifact.load(artifact_copy, torch.device("cpu"))
    message = str(err.value)
    assert "checksum mismatch" in message
    assert str(weights) in message and expected in message and actual in message


def test_pinned_hash_must_match_too(model_dir: Path) -> None:
    with pytest.raises(artifact.ArtifactError, match="DP_EXPECTED_SHA256"):
        artifact.load(model_dir, torch.device("cpu"), pinned_sha256="0" * 64)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: m["weights"].update(file="../model.safetensors"), "plain file name"),
        (lambda m: m.update(format_version=99), "format_version"),
        (lambda m: m["features"].update(names=["x"]), "feature schema mismatch"),
        (lambda m: m.pop("architecture"), "malformed manifest"),
    ],
)
def test_malformed_manifests_are_refused(
    artifact_copy: Path, edit: Callable[[dict], object], fragment: str
) -> None:
    path = artifact_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(artifact.ArtifactError, match=fragment):
        artifact.load(artifact_copy, torch.device("cpu"))


def test_missing_manifest_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(artifact.ArtifactError, match="demand_predictor.train"):
        artifact.read_manifest(tmp_path)


def test_server_refuses_to_start_on_checksum_mismatch(
    artifact_copy: Path, start_server: Callable[..., ServerProcess]
) -> None:
    flip_last_byte(artifact_copy / "model.safetensors")
    server = start_server(DP_MODEL_DIR=str(artifact_copy))
    assert server.proc.wait(60) == 2
    refused = [e for e in server.events() if e.get("event") == "artifact_rejected"]
    assert refused and "checksum mismatch" in refused[0]["msg"]
    assert str(artifact_copy / "model.safetensors") in refused[0]["msg"]
    assert not [e for e in server.events() if e.get("event") == "listening"]


def test_streamed_hash_equals_the_hash_of_the_bytes(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    digest, size, identity = artifact.sha256_file(weights)
    assert digest == artifact.sha256_hex(weights.read_bytes())
    assert size == weights.stat().st_size == identity[2]


def test_module_built_on_meta_gets_every_parameter(model_dir: Path) -> None:
    # (That they are mapped, not copied, is measured in test_large_model.py.)
    loaded = artifact.load(model_dir, torch.device("cpu"))
    assert not any(p.is_meta for p in loaded.net.parameters())
    assert all(p.device.type == "cpu" for p in loaded.net.parameters())


def test_file_replaced_after_verification_is_refused(artifact_copy: Path) -> None:
    verified = artifact.verify(artifact_copy)
    weights = artifact_copy / "model.safetensors"
    replacement = artifact_copy / "replacement"
    replacement.write_bytes(weights.read_bytes())  # same bytes, another file
    replacement.replace(weights)  # how a deployment swaps a model in
    with pytest.raises(artifact.ArtifactError, match="changed since its checksum was verified"):
        artifact.load(artifact_copy, torch.device("cpu"), verified=verified)
    # Verified afresh, the new file loads.
    assert artifact.load(artifact_copy, torch.device("cpu")).manifest.name == "demand-predictor"


def test_weights_that_do_not_fit_the_architecture_are_refused(artifact_copy: Path) -> None:
    path = artifact_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["architecture"]["hidden"] = 32
    path.write_text(json.dumps(manifest))
    with pytest.raises(artifact.ArtifactError, match="do not fit the manifest architecture"):
        artifact.load(artifact_copy, torch.device("cpu"))
