"""Model store: publish, list, pull (path, file:// and a static HTTP directory)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from demand_predictor import artifact, modelstore

from conftest import SERVICE_DIR, corrupt, make_version

NAME = "demand-predictor"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_store(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A store directory and the URL of a plain static HTTP server over it."""
    store = tmp_path / "store"
    store.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(store))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield store, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_publish_writes_layout_and_index(
    tmp_path: Path, model_dir: Path, second_model_dir: Path, manifest: dict
) -> None:
    store = tmp_path / "store"
    entry, new = modelstore.publish(store, model_dir)
    assert new
    modelstore.publish(store, second_model_dir)
    assert (store / NAME / "1.0.0" / "model.safetensors").read_bytes() == (
        model_dir / "model.safetensors"
    ).read_bytes()
    index = json.loads((store / NAME / "index.json").read_text())
    assert [e["version"] for e in index["versions"]] == ["1.0.0", "1.1.0"]
    first = index["versions"][0]
    assert first["sha256"] == manifest["weights"]["sha256"]
    assert first["size_bytes"] == manifest["weights"]["size_bytes"]
    assert first["training_seed"] == 7 and index["versions"][1]["training_seed"] == 8
    assert (
        first["manifest_sha256"]
        == hashlib.sha256((model_dir / "manifest.json").read_bytes()).hexdigest()
    )
    assert first["created"].endswith("Z") and first == entry
    assert json.loads((store / "index.json").read_text())["models"] == [NAME]
    assert not [p for p in (store / NAME).iterdir() if p.name.startswith(".publish")]


def test_versions_are_immutable(tmp_path: Path, model_dir: Path, second_model_dir: Path) -> None:
    store = tmp_path / "store"
    modelstore.publish(store, model_dir)
    again, new = modelstore.publish(store, model_dir)  # same content: a no-op
    assert not new and again["version"] == "1.0.0"
    impostor = make_version(second_model_dir, tmp_path / "impostor", version="1.0.0")
    with pytest.raises(modelstore.StoreError, match="immutable"):
        modelstore.publish(store, impostor)


def test_publish_refuses_a_corrupted_artifact(tmp_path: Path, model_dir: Path) -> None:
    bad = make_version(model_dir, tmp_path / "bad")
    corrupt(bad / "model.safetensors")
    with pytest.raises(artifact.ArtifactError, match="checksum mismatch"):
        modelstore.publish(tmp_path / "store", bad)
    assert not (tmp_path / "store" / NAME / "1.0.0").exists()


@pytest.mark.parametrize("scheme", ["http", "file", "path"])
def test_pull_verifies_and_installs_atomically(
    tmp_path: Path, model_dir: Path, http_store: tuple[Path, str], scheme: str
) -> None:
    store, url = http_store
    modelstore.publish(store, model_dir)
    source = {"http": url, "file": store.as_uri(), "path": str(store)}[scheme]
    assert modelstore.read_index(source, NAME)["versions"][0]["version"] == "1.0.0"
    assert modelstore.list_models(source) == [NAME]
    dest = tmp_path / "host-models"
    path = modelstore.pull(source, NAME, "1.0.0", dest)
    assert path == dest / NAME / "1.0.0"
    assert artifact.verify(path).manifest.version == "1.0.0"
    assert stat.S_IMODE(os.stat(path / "model.safetensors").st_mode) == 0o644
    assert [p.name for p in (dest / NAME).iterdir()] == ["1.0.0"]  # no leftovers
    assert modelstore.pull(source, NAME, "1.0.0", dest) == path  # already there: kept


def test_pull_refuses_corrupted_weights_and_leaves_nothing(
    tmp_path: Path, model_dir: Path, http_store: tuple[Path, str]
) -> None:
    store, url = http_store
    modelstore.publish(store, model_dir)
    corrupt(store / NAME / "1.0.0" / "model.safetensors")
    dest = tmp_path / "host-models"
    with pytest.raises(modelstore.StoreError, match="checksum mismatch") as err:
        modelstore.pull(url, NAME, "1.0.0", dest)
    assert err.value.reason == "checksum"
    assert list((dest / NAME).iterdir()) == []


def test_pull_refuses_a_longer_file_and_a_tampered_manifest(
    tmp_path: Path, model_dir: Path, http_store: tuple[Path, str]
) -> None:
    store, url = http_store
    modelstore.publish(store, model_dir)
    weights = store / NAME / "1.0.0" / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0" * 4096)
    with pytest.raises(modelstore.StoreError) as err:
        modelstore.pull(url, NAME, "1.0.0", tmp_path / "a")
    assert err.value.reason == "checksum"
    manifest = store / NAME / "1.0.0" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"1.0.0"', '"1.0.1"'))
    with pytest.raises(modelstore.StoreError, match="manifest.json sha256"):
        modelstore.pull(url, NAME, "1.0.0", tmp_path / "b")


def test_pull_of_an_unknown_version_is_not_found(
    tmp_path: Path, model_dir: Path, http_store: tuple[Path, str]
) -> None:
    store, url = http_store
    modelstore.publish(store, model_dir)
    with pytest.raises(modelstore.StoreError) as err:
        modelstore.pull(url, NAME, "9.9.9", tmp_path / "a")
    assert err.value.reason == "not_found" and "1.0.0" in str(err.value)
    with pytest.raises(modelstore.StoreError) as err:
        modelstore.pull(url, "other-model", "1.0.0", tmp_path / "a")
    assert err.value.reason == "not_found"
    with pytest.raises(modelstore.StoreError, match="model version"):
        modelstore.pull(url, NAME, "../../etc", tmp_path / "a")


def test_cli_publish_list_pull(tmp_path: Path, model_dir: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "demand_predictor.modelstore", *args],
            env={**os.environ, "PYTHONPATH": str(SERVICE_DIR)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    store = tmp_path / "store"
    published = cli("publish", "--store", str(store), str(model_dir))
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["published"] is True
    listed = cli("list", "--store", str(store), "--name", NAME)
    assert json.loads(listed.stdout)["versions"][0]["version"] == "1.0.0"
    pulled = cli(
        "pull", "--store", store.as_uri(), "--version", "1.0.0", "--dest", str(tmp_path / "h")
    )
    assert pulled.returncode == 0 and json.loads(pulled.stdout)["status"] == "ok"
    missing = cli(
        "pull", "--store", str(store), "--version", "2.0.0", "--dest", str(tmp_path / "h")
    )
    assert missing.returncode == 3 and "not in the store" in missing.stderr
