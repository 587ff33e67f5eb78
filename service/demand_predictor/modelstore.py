"""Versioned model store: publish, list and pull verified artifacts.

    python -m demand_predictor.modelstore publish --store DIR ARTIFACT_DIR
    python -m demand_predictor.modelstore list --store DIR_OR_URL [--name NAME]
    python -m demand_predictor.modelstore pull --store DIR_OR_URL --name NAME --version V --dest ROOT

The store is a plain directory, meant to be served as static files (any HTTP server,
a bucket) or read directly (a path or ``file://``):

    <store>/index.json                      {"format_version": 1, "models": [NAME, ...]}
    <store>/<name>/index.json               {"format_version": 1, "name": NAME, "versions": [...]}
    <store>/<name>/<version>/manifest.json  the artifact's manifest (artifact.py)
    <store>/<name>/<version>/model.safetensors

Each index entry: ``version``, ``sha256`` and ``size_bytes`` of the weights,
``manifest_sha256``, ``created`` (UTC, ISO 8601, when published) and ``training_seed``.
Versions are immutable: publishing a version again with other content is refused.

A host keeps the same ``<root>/<name>/<version>/`` layout (``DP_MODEL_DIR`` with
``DP_MODEL_VERSION`` set). ``pull`` downloads a version into it: the index's
``manifest_sha256`` is checked, then the weights are hashed while they stream to a
temporary directory next to the target (artifact.sha256_stream, fixed-size chunks,
nothing kept in memory), compared with the index and the manifest, fsynced, and the
directory is renamed into place: a version directory is either complete and verified
or absent.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from demand_predictor import artifact
from demand_predictor.config import Settings, _identifier

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_check_name = _identifier(allow_empty=False)


class StoreError(RuntimeError):
    """A store operation failed; ``reason`` is not_found, download, checksum or invalid."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _name(value: str, what: str) -> str:
    try:
        return _check_name(value)
    except ValueError as exc:
        raise StoreError("invalid", f"{what} {value!r} {exc}") from exc


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- publish ---------------------------------------------------------------------------
def publish(store: Path, artifact_dir: Path) -> tuple[dict[str, Any], bool]:
    """Copy a verified artifact into the store; (index entry, True if newly published).

    Idempotent for identical content; refuses a version that exists with other content.
    """
    verified = artifact.verify(artifact_dir)
    manifest = verified.manifest
    name = _name(manifest.name, "model name")
    version = _name(manifest.version, "model version")
    manifest_bytes = manifest.path.read_bytes()
    entry = {
        "version": version,
        "sha256": verified.weights.sha256,
        "size_bytes": verified.weights.size,
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "created": _now(),
        "training_seed": manifest.raw.get("training", {}).get("seed"),
    }
    model_root = store / name
    model_root.mkdir(parents=True, exist_ok=True)
    with _locked(model_root):
        index = _read_local_index(model_root, name)
        known = {e["version"]: e for e in index["versions"]}
        target = model_root / version
        if version in known or target.exists():
            existing = known.get(version)
            same = existing is not None and (
                existing["sha256"] == entry["sha256"]
                and existing["manifest_sha256"] == entry["manifest_sha256"]
            )
            if not same:
                raise StoreError(
                    "invalid",
                    f"{name} {version} is already in the store with other content "
                    f"(sha256 {existing['sha256'] if existing else 'unknown'}); versions are "
                    "immutable: publish under a new version",
                )
            return existing, False
        staging = Path(tempfile.mkdtemp(prefix=f".publish-{version}-", dir=model_root))
        try:
            (staging / artifact.MANIFEST_FILE).write_bytes(manifest_bytes)
            weights = staging / manifest.weights_file
            with verified.weights.path.open("rb") as src, weights.open("wb") as dst:
                digest, _ = artifact.sha256_stream(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            if digest != entry["sha256"]:
                raise StoreError("checksum", f"{verified.weights.path} changed while copied")
            for path in staging.iterdir():
                os.chmod(path, 0o644)
            os.chmod(staging, 0o755)
            _fsync_dir(staging)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        index["versions"].append(entry)
        index["updated"] = entry["created"]
        _write_atomic(model_root / INDEX_FILE, _json_bytes(index))
    with _locked(store):
        top = _read_json_file(store / INDEX_FILE) or {
            "format_version": FORMAT_VERSION,
            "models": [],
        }
        if name not in top["models"]:
            top["models"] = sorted({*top["models"], name})
            _write_atomic(store / INDEX_FILE, _json_bytes(top))
    return entry, True


def _read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError("invalid", f"{path}: unreadable: {exc}") from exc


def _read_local_index(model_root: Path, name: str) -> dict[str, Any]:
    index = _read_json_file(model_root / INDEX_FILE)
    if index is None:
        return {"format_version": FORMAT_VERSION, "name": name, "versions": []}
    return index


# -- reading a store (path, file:// or http(s)://) ---------------------------------------
def _is_http(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(source).path))
    return Path(source)


@contextlib.contextmanager
def _open(source: str, relative: str, timeout_s: float) -> Iterator[BinaryIO]:
    """A binary stream of ``<source>/<relative>``; StoreError not_found / download."""
    if _is_http(source):
        url = source.rstrip("/") + "/" + urllib.parse.quote(relative)
        try:
            response = urllib.request.urlopen(url, timeout=timeout_s)
        except urllib.error.HTTPError as exc:
            reason = "not_found" if exc.code == 404 else "download"
            raise StoreError(reason, f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError("download", f"{url}: {getattr(exc, 'reason', exc)}") from exc
        with response:
            yield response
        return
    path = _local_path(source) / relative
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise StoreError("not_found", f"{path}: not found") from exc
    except OSError as exc:
        raise StoreError("download", f"{path}: {exc.strerror}") from exc
    with handle:
        yield handle


def _read_small(source: str, relative: str, timeout_s: float) -> bytes:
    with _open(source, relative, timeout_s) as stream:
        try:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise StoreError("download", f"{source}/{relative}: {exc}") from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise StoreError("invalid", f"{source}/{relative}: larger than {MAX_MANIFEST_BYTES} bytes")
    return data


def read_index(source: str, name: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The version index of model ``name`` in the store at ``source``."""
    name = _name(name, "model name")
    raw = _read_small(source, f"{name}/{INDEX_FILE}", timeout_s)
    try:
        index = json.loads(raw)
        versions = index["versions"]
        if index.get("name") != name or not isinstance(versions, list):
            raise ValueError("not an index of this model")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError("invalid", f"{source}/{name}/{INDEX_FILE}: {exc}") from exc
    return index


def list_models(source: str, timeout_s: float = 10.0) -> list[str]:
    raw = _read_small(source, INDEX_FILE, timeout_s)
    try:
        return list(json.loads(raw)["models"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError("invalid", f"{source}/{INDEX_FILE}: {exc}") from exc


# -- pull ------------------------------------------------------------------------------
def pull(source: str, name: str, version: str, dest_root: Path, timeout_s: float = 30.0) -> Path:
    """Download ``name`` ``version`` into ``dest_root/name/version`` (verified, atomic).

    An existing complete directory is kept (versions are immutable); the service
    verifies it again when it loads it.
    """
    name = _name(name, "model name")
    version = _name(version, "model version")
    target = dest_root / name / version
    if (target / artifact.MANIFEST_FILE).exists():
        return target
    index = read_index(source, name, timeout_s)
    entry = next((e for e in index["versions"] if e.get("version") == version), None)
    if entry is None:
        known = ", ".join(str(e.get("version")) for e in index["versions"]) or "none"
        raise StoreError("not_found", f"{name} {version} is not in the store (versions: {known})")
    manifest_bytes = _read_small(source, f"{name}/{version}/{artifact.MANIFEST_FILE}", timeout_s)
    actual = hashlib.sha256(manifest_bytes).hexdigest()
    if actual != entry["manifest_sha256"]:
        raise StoreError(
            "checksum",
            f"{name} {version}: manifest.json sha256 {actual} does not match the index "
            f"({entry['manifest_sha256']})",
        )
    (dest_root / name).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{version}-", dir=dest_root / name))
    try:
        (staging / artifact.MANIFEST_FILE).write_bytes(manifest_bytes)
        manifest = artifact.read_manifest(staging)  # also checks the weights file name
        if (manifest.name, manifest.version) != (name, version):
            raise StoreError(
                "invalid",
                f"{name} {version}: the manifest describes {manifest.name} {manifest.version}",
            )
        if manifest.sha256 != entry["sha256"]:
            raise StoreError(
                "checksum",
                f"{name} {version}: the manifest's weights sha256 {manifest.sha256} does not "
                f"match the index ({entry['sha256']})",
            )
        expected_size = int(entry["size_bytes"])
        relative = f"{name}/{version}/{manifest.weights_file}"
        weights = staging / manifest.weights_file
        with _open(source, relative, timeout_s) as stream, weights.open("wb") as sink:
            try:
                digest, size = artifact.sha256_stream(stream, sink, max_bytes=expected_size)
            except OSError as exc:
                raise StoreError("download", f"{source}/{relative}: {exc}") from exc
            except artifact.ArtifactError as exc:
                raise StoreError("checksum", f"{source}/{relative}: {exc}") from exc
            sink.flush()
            os.fsync(sink.fileno())
        if size != expected_size or digest != manifest.sha256:
            raise StoreError(
                "checksum",
                f"checksum mismatch for {source}/{relative}: expected sha256 {manifest.sha256} "
                f"({expected_size} bytes), got {digest} ({size} bytes)",
            )
        for path in staging.iterdir():
            os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        _fsync_dir(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / artifact.MANIFEST_FILE).exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another pull won the race
        _fsync_dir(dest_root / name)
    except artifact.ArtifactError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StoreError("invalid", str(exc)) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# -- the service's view ------------------------------------------------------------------
def resolve_model_dir(settings: Settings, version: str | None = None) -> Path:
    """The artifact directory to load: DP_MODEL_DIR itself, or, with versioned models,
    DP_MODEL_DIR/DP_MODEL_NAME/<version> (``version`` defaults to DP_MODEL_VERSION)."""
    version = version if version is not None else settings.model_version
    if not version:
        return settings.model_dir
    return settings.model_dir / settings.model_name / _name(version, "model version")


def ensure_local(settings: Settings, version: str | None = None) -> Path:
    """The artifact directory of ``version``, pulled from DP_MODEL_STORE_URL if missing."""
    path = resolve_model_dir(settings, version)
    version = version if version is not None else settings.model_version
    if not version or (path / artifact.MANIFEST_FILE).exists():
        return path
    if not settings.model_store_url:
        raise StoreError(
            "not_found",
            f"{path}: no such model version here, and no DP_MODEL_STORE_URL to fetch it from",
        )
    return pull(
        settings.model_store_url,
        settings.model_name,
        version,
        settings.model_dir,
        settings.model_store_timeout_s,
    )


def local_versions(root: Path, name: str) -> list[dict[str, Any]]:
    """Versions present under ``root/name`` (manifest values, not re-verified here)."""
    found = []
    base = root / name
    if not base.is_dir():
        return found
    for path in sorted(base.iterdir()):
        if path.name.startswith(".") or not (path / artifact.MANIFEST_FILE).is_file():
            continue
        try:
            manifest = artifact.read_manifest(path)
        except artifact.ArtifactError:
            continue
        found.append({"version": manifest.version, "sha256": manifest.sha256, "path": str(path)})
    return found


# -- command line ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demand_predictor.modelstore",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="copy a verified artifact into a store directory")
    pub.add_argument("--store", type=Path, required=True, help="store directory")
    pub.add_argument("artifact_dir", type=Path, help="directory with manifest.json + weights")
    lst = sub.add_parser("list", help="print a store's models or a model's versions")
    lst.add_argument("--store", required=True, help="store directory, file:// or http(s):// URL")
    lst.add_argument("--name", default="", help="model name (default: list the models)")
    get = sub.add_parser("pull", help="download and verify a version into a local root")
    get.add_argument("--store", required=True, help="store directory, file:// or http(s):// URL")
    get.add_argument("--name", default="demand-predictor")
    get.add_argument("--version", required=True)
    get.add_argument("--dest", type=Path, required=True, help="local root (DP_MODEL_DIR)")
    for command in (lst, get):
        command.add_argument("--timeout-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "publish":
            entry, new = publish(args.store, args.artifact_dir)
            print(json.dumps({"published": new, **entry}, sort_keys=True))
        elif args.command == "list":
            if args.name:
                print(json.dumps(read_index(args.store, args.name, args.timeout_s), indent=2))
            else:
                print(json.dumps({"models": list_models(args.store, args.timeout_s)}, indent=2))
        else:
            path = pull(args.store, args.name, args.version, args.dest, args.timeout_s)
            print(json.dumps({"version": args.version, "path": str(path), "status": "ok"}))
    except (StoreError, artifact.ArtifactError) as exc:
        print(f"modelstore: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, StoreError) and exc.reason == "not_found" else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
