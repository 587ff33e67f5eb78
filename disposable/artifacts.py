"""Controller-side build artifacts the roles deploy, cached by the hash of their inputs:

- the wheelhouse: every wheel of service/requirements.txt, downloaded once with
  `pip download --require-hashes`, so hosts install byte-identical wheels with --no-index;
- the model artifact: trained deterministically by service/demand_predictor/train.py.

Both land in .build/ (git-ignored); group_vars point the roles there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from disposable.console import fmt_seconds, say
from disposable.errors import DisposableError
from disposable.paths import REPO_ROOT, SERVICE_DIR

BUILD_DIR = REPO_ROOT / ".build"
SERVICE_REQUIREMENTS = SERVICE_DIR / "requirements.txt"


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _stamp_ok(directory: Path, key: str) -> bool:
    stamp = directory / ".inputs-sha256"
    return stamp.exists() and stamp.read_text().strip() == key


def _replace_dir(tmp: Path, final: Path, key: str) -> None:
    (tmp / ".inputs-sha256").write_text(key + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def wheelhouse() -> Path:
    final = BUILD_DIR / "wheelhouse"
    key = _hash_files([SERVICE_REQUIREMENTS])
    if _stamp_ok(final, key):
        return final
    start = time.monotonic()
    say("Artifacts: downloading the service wheelhouse (hash-checked)")
    tmp = BUILD_DIR / "wheelhouse.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "-r",
            str(SERVICE_REQUIREMENTS),
            "-d",
            str(tmp),
        ],
        check=False,
    )
    if proc.returncode != 0:
        raise DisposableError(
            "Could not build the service wheelhouse (see pip's output above).",
            "Check PyPI access and that service/requirements.txt was locked with `invoke lock`.",
        )
    _replace_dir(tmp, final, key)
    say(f"Artifacts: wheelhouse ready ({fmt_seconds(time.monotonic() - start)})")
    return final


def model() -> Path:
    final = BUILD_DIR / "model"
    sources = [p for p in (SERVICE_DIR / "demand_predictor").rglob("*.py")] + [SERVICE_REQUIREMENTS]
    key = _hash_files(sources)
    if _stamp_ok(final, key):
        return final
    start = time.monotonic()
    say("Artifacts: training the demand model (deterministic, seeded)")
    tmp = BUILD_DIR / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(SERVICE_DIR)}
    proc = subprocess.run([sys.executable, "-m", "demand_predictor.train", "--out", str(tmp)], env=env, check=False)
    if proc.returncode != 0:
        raise DisposableError("Training the model failed (see the output above).")
    _replace_dir(tmp, final, key)
    say(f"Artifacts: model ready ({fmt_seconds(time.monotonic() - start)})")
    return final


def build_all() -> None:
    BUILD_DIR.mkdir(exist_ok=True)
    wheelhouse()
    model()
