"""The versioned model store on the controller, and which version each environment serves.

The store is a directory in the layout of service/demand_predictor/modelstore.py
(`<store>/<name>/index.json`, `<store>/<name>/<version>/{manifest.json,weights}`), at
$DML_MODEL_STORE_DIR or ~/.cache/disposable-ml/model-store, shared by every clone and
environment like the package store. `invoke configure` publishes the model it built
(versions are immutable: a version is published once, by content). The local cloud mounts
the store read-only into the inference hosts at /var/lib/dml-models, and each host pulls
its version from there with the service's own pull (sha256 checked while streaming); where
there is no mount (Molecule, GCP until its bucket is wired) Ansible copies the version from
the controller's store. Either way the host keeps the store's layout under
/opt/demand-predictor/models.

Which version an environment serves is `.state/<env>/model.json`: the newest published
when its first full configure ran, then what `invoke deploy-model` / `invoke rollback-model`
moved it to. A later publish changes nothing by itself, and a rebuild keeps the version.
`.build/model-store.json` describes the store for Ansible (group_vars/all.yml: dml_model).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from disposable.console import say
from disposable.errors import DisposableError
from disposable.paths import SERVICE_DIR, cache_dir, state_dir

MODEL_NAME = "demand-predictor"
HOST_MOUNT = "/var/lib/dml-models"
DESCRIPTOR = "model-store.json"


def store_dir() -> Path:
    path = Path(os.environ.get("DML_MODEL_STORE_DIR") or cache_dir() / "model-store")
    path.mkdir(parents=True, exist_ok=True)
    _readable_by_hosts(path)
    return path


def _readable_by_hosts(directory: Path) -> None:
    """The hosts read the store through a mount as an unprivileged container's root, an
    "other" user on this machine: directories must be 0755 whatever the umask (a 0700
    directory reads as "Permission denied" on every host)."""
    if directory.stat().st_mode & 0o755 != 0o755:
        directory.chmod(directory.stat().st_mode | 0o755)


def _modelstore() -> Any:
    """The service's own store code (one implementation of the layout and its checks)."""
    if str(SERVICE_DIR) not in sys.path:
        sys.path.insert(0, str(SERVICE_DIR))
    from demand_predictor import modelstore

    return modelstore


def versions(name: str = MODEL_NAME, store: Path | None = None) -> list[dict[str, Any]]:
    """The published versions of `name`, oldest first (empty when none)."""
    index = (store or store_dir()) / name / "index.json"
    return list(json.loads(index.read_text())["versions"]) if index.exists() else []


def publish(artifact_dir: Path, store: Path | None = None) -> dict[str, Any]:
    """Publish a built artifact. The same weights under a published version are that version
    (the manifest also records the training's duration, which differs run to run); other
    weights under a published version are refused: versions are immutable."""
    store = store or store_dir()
    manifest = json.loads((artifact_dir / "manifest.json").read_text())
    name, version = manifest["model"]["name"], manifest["model"]["version"]
    for entry in versions(name, store):
        if entry["version"] == version:
            if entry["sha256"] != manifest["weights"]["sha256"]:
                raise DisposableError(
                    f"The model built in {artifact_dir} differs from {name} {version} in the model store "
                    f"(weights sha256 {manifest['weights']['sha256'][:12]} vs {entry['sha256'][:12]}).",
                    "Versions are immutable: train it under a new version (train.py --version), "
                    "or `invoke models` to see what is published.",
                )
            return entry
    modelstore = _modelstore()
    try:
        entry, _ = modelstore.publish(store, artifact_dir)
    except modelstore.StoreError as exc:
        raise DisposableError(f"Could not publish {artifact_dir}: {exc}", "The artifact must verify.") from exc
    _readable_by_hosts(store / name)
    say(f"Model store: published {name} {version} (sha256 {entry['sha256'][:12]}) in {store}")
    return dict(entry)


def write_descriptor(build_dir: Path, name: str = MODEL_NAME) -> Path:
    """`.build/model-store.json` for the roles: the store, the model, its versions."""
    published = versions(name)
    if not published:
        raise DisposableError(f"No version of {name} in the model store {store_dir()}.", "`invoke configure`.")
    path = build_dir / DESCRIPTOR
    descriptor = {"store_dir": str(store_dir()), "name": name, "versions": published}
    descriptor["newest"] = published[-1]["version"]
    path.write_text(json.dumps(descriptor, indent=2, sort_keys=True))
    return path


def serving_file(env: str) -> Path:
    return state_dir(env) / "model.json"


def serving(env: str, name: str = MODEL_NAME) -> dict[str, Any]:
    """{"version", "previous"} the environment serves: its deploy record, else the newest."""
    path = serving_file(env)
    if path.exists():
        return dict(json.loads(path.read_text()))
    published = versions(name)
    return {"version": published[-1]["version"] if published else "", "previous": []}


def pin(env: str, name: str = MODEL_NAME) -> dict[str, Any]:
    """After a full configure: an environment without a record now serves the newest
    version, and keeps it (a later publish changes nothing until `invoke deploy-model`)."""
    path = serving_file(env)
    if path.exists():
        return dict(json.loads(path.read_text()))
    record = serving(env, name)
    path.write_text(json.dumps(record, indent=2))
    say(f"Model: environment {env} serves {name} {record['version']} (the newest published)")
    return record


def entry(version: str, name: str = MODEL_NAME) -> dict[str, Any]:
    """The index entry of a published version, or an error that lists the published ones."""
    published = versions(name)
    for candidate in published:
        if candidate["version"] == version:
            return candidate
    known = ", ".join(v["version"] for v in published) or "none"
    raise DisposableError(
        f"{name} {version!r} is not in the model store {store_dir()} (published: {known}).",
        "`invoke models` lists the versions; `invoke configure` publishes the model it builds.",
    )


def record_deploy(env: str, version: str) -> dict[str, Any]:
    """Remember what the environment serves now; the version it replaces goes on the stack."""
    before = serving(env)
    previous = list(before.get("previous", []))
    if before.get("version") and before["version"] != version:
        previous.append(before["version"])
    record = {"version": version, "previous": previous}
    serving_file(env).write_text(json.dumps(record, indent=2))
    return record


def record_rollback(env: str, version: str) -> dict[str, Any]:
    """After a rollback to the top of the stack: it is served again, and leaves the stack."""
    before = serving(env)
    previous = [v for v in before.get("previous", []) if v != version]
    record = {"version": version, "previous": previous}
    serving_file(env).write_text(json.dumps(record, indent=2))
    return record
