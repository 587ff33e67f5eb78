"""Controller-side build artifacts the roles deploy, cached by the hash of their inputs:

- the wheelhouse, per device (cpu, cuda): every wheel of service/requirements.txt and of
  the device's torch lock (disposable.packages.pylocks), downloaded once with
  `pip download --require-hashes`, so hosts install byte-identical wheels with --no-index;
- the service code: the demand_predictor package's *.py files;
- the model artifact: trained deterministically by service/demand_predictor/train.py.

The wheelhouse and the code are shipped as deterministic tar bundles named by their
content hash, each described by a small JSON file the roles read (`<name>.json`: file,
sha256): one copy per bundle instead of one round trip per file, and a new release
directory on the host whenever the content changes. Everything lands in .build/
(git-ignored); group_vars point the roles there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from disposable.console import fmt_seconds, say
from disposable.errors import DisposableError
from disposable.hashing import hash_files
from disposable.packages import pylocks
from disposable.packages.pipdownload import pip_download
from disposable.paths import REPO_ROOT, SERVICE_DIR

BUILD_DIR = REPO_ROOT / ".build"
SERVICE_REQUIREMENTS = SERVICE_DIR / "requirements.txt"


def _stamp_ok(directory: Path, key: str) -> bool:
    stamp = directory / ".inputs-sha256"
    return stamp.exists() and stamp.read_text().strip() == key


def _replace_dir(tmp: Path, final: Path, key: str) -> None:
    (tmp / ".inputs-sha256").write_text(key + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _cached_build(name: str, inputs: list[Path], what: str, build: Callable[[Path], None]) -> Path:
    """.build/<name>, rebuilt by `build(tmp_dir)` only when the hash of `inputs` changed."""
    final = BUILD_DIR / name
    key = hash_files(inputs, REPO_ROOT)
    if _stamp_ok(final, key):
        return final
    start = time.monotonic()
    say(f"Artifacts: {what}")
    tmp = BUILD_DIR / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    _replace_dir(tmp, final, key)
    say(f"Artifacts: {name} ready ({fmt_seconds(time.monotonic() - start)})")
    return final


def _download_wheels(device: str) -> Callable[[Path], None]:
    def download(dest: Path) -> None:
        for lock in (SERVICE_REQUIREMENTS, pylocks.DEVICE_LOCKS[device].path):
            if pip_download(lock, dest, "--only-binary=:all:").returncode != 0:
                raise DisposableError(
                    f"Could not build the {device} wheelhouse from {lock.name} (see pip's output above).",
                    "Check access to the indexes the lock names (PyPI; PyTorch's for torch) and that it was "
                    "made with `invoke lock`.",
                )

    return download


def _train(dest: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SERVICE_DIR)}
    proc = subprocess.run([sys.executable, "-m", "demand_predictor.train", "--out", str(dest)], env=env, check=False)
    if proc.returncode != 0:
        raise DisposableError("Training the model failed (see the output above).")


def wheelhouse(device: str = "cpu") -> Path:
    """The wheels a `device` host installs (its lock is .build/requirements-<device>.txt)."""
    inputs = [SERVICE_REQUIREMENTS, pylocks.DEVICE_LOCKS[device].path]
    what = f"downloading the {device} wheelhouse (hash-checked)"
    return _cached_build(f"wheelhouse-{device}", inputs, what, _download_wheels(device))


def model() -> Path:
    return _cached_build(
        "model",
        [*service_files().values(), SERVICE_REQUIREMENTS, pylocks.DEVICE_LOCKS["cpu"].path],
        "training the demand model (deterministic, seeded)",
        _train,
    )


COMPLETE_MARKER = ".complete"


def bundle(name: str, files: dict[str, Path]) -> Path:
    """A reproducible tar of `files` (archive name -> path): sorted, mtime 0, root-owned,
    mode 0644, ending with a `.complete` marker (the roles unpack until it exists).
    Writes .build/<name>-<sha12>.tar and .build/<name>.json; returns the JSON path."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname in sorted(files):
            data = files[arcname].read_bytes()
            _add_member(tar, arcname, data)
        _add_member(tar, COMPLETE_MARKER, b"")
    blob = buffer.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    target = BUILD_DIR / f"{name}-{sha[:12]}.tar"
    if not target.exists():
        for old in BUILD_DIR.glob(f"{name}-*.tar"):
            old.unlink()
        tmp = target.with_suffix(".part")
        tmp.write_bytes(blob)
        os.replace(tmp, target)
    descriptor = BUILD_DIR / f"{name}.json"
    descriptor.write_text(json.dumps({"file": target.name, "sha256": sha, "id": sha[:12]}, indent=2) + "\n")
    return descriptor


def _add_member(tar: tarfile.TarFile, arcname: str, data: bytes) -> None:
    info = tarfile.TarInfo(arcname)
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def service_files() -> dict[str, Path]:
    package = SERVICE_DIR / "demand_predictor"
    return {str(p.relative_to(SERVICE_DIR)): p for p in package.rglob("*.py") if "__pycache__" not in p.parts}


def build_all(devices: Iterable[str] = ("cpu",)) -> None:
    """Everything the roles deploy; a wheelhouse (and host lock) for each device in use."""
    BUILD_DIR.mkdir(exist_ok=True)
    for device in sorted(set(devices)):
        pylocks.host_lock(device, BUILD_DIR)
        wheels = wheelhouse(device)
        bundle(f"wheelhouse-{device}", {p.name: p for p in wheels.glob("*.whl")})
    bundle("service", service_files())
    model()
