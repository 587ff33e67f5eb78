"""The local cloud's host image: debootstrap from the package store's repository of the apt
lock (never from Debian directly), cached by the hash of its recipe and of the lock's image set."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from disposable.console import fmt_seconds, say
from disposable.errors import DisposableError
from disposable.hashing import hash_files
from disposable.local import lxd
from disposable.packages import supply
from disposable.paths import IMAGE_RECIPE_DIR, cache_dir

ALIAS_PREFIX = "dml-debian12-"


def recipe_hash(recipe_dir: Path = IMAGE_RECIPE_DIR) -> str:
    """sha256 over every file of the recipe (path and content) and the apt lock's image set,
    first 12 hex digits."""
    recipe = hash_files((p for p in recipe_dir.rglob("*") if p.is_file()), recipe_dir, length=64)
    image_set = supply.effective().lock.image_hash()
    return hashlib.sha256(f"{recipe}\n{image_set}\n".encode()).hexdigest()[:12]


def image_alias() -> str:
    return ALIAS_PREFIX + recipe_hash()


def require_image() -> str:
    """The alias of the current image; a clear error when it was never built."""
    alias = image_alias()
    if not lxd.image_exists(alias):
        raise DisposableError(
            f"The host image {alias} is not in LXD (the image recipe or the apt lock changed, or it was never built).",
            "Run ./bootstrap.sh setup to build it.",
        )
    return alias


def ensure_image() -> str:
    """Make sure LXD holds the image for the current recipe and apt lock; return its alias."""
    alias = image_alias()
    if lxd.image_exists(alias):
        say(f"Host image: {alias} already in LXD")
        return alias
    tarballs = cache_dir() / "images" / recipe_hash()
    meta, rootfs = tarballs / "meta.tar.gz", tarballs / "rootfs.tar.gz"
    if not (meta.exists() and rootfs.exists()):
        build(tarballs)
    lxd.import_image(meta, rootfs, alias)
    say(f"Host image: imported {alias}")
    return alias


def build(tarballs: Path) -> None:
    current = supply.effective()
    repository = current.store.repository(current.lock)
    if not current.store.published(current.lock):
        raise DisposableError(
            f"The apt lock {current.lock.short_hash} is not in the package store yet.",
            "Run ./bootstrap.sh setup (it fills the store before building the image).",
        )
    start = time.monotonic()
    say(f"Host image: building from the package store ({current.lock.prefix}) with debootstrap (about a minute)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as expected:
        expected.writelines(f"{e.name} {e.version}\n" for e in current.lock.subset("image"))
    env = {
        "DML_IMAGE_MIRROR": f"file://{repository}",
        "DML_IMAGE_KEYRING": str(current.store.keyring),
        "DML_IMAGE_EXPECTED": expected.name,
    }
    try:
        proc = subprocess.run(
            ["bash", str(IMAGE_RECIPE_DIR / "build.sh"), str(tarballs)], env={**os.environ, **env}, check=False
        )
    finally:
        Path(expected.name).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise DisposableError(
            "Building the host image failed (see the output above).",
            "Check that debootstrap is installed; a difference from the apt lock's image set means the lock's "
            "image packages do not resolve the way debootstrap installs them: regenerate it with `invoke lock --apt`.",
        )
    say(f"Host image: built in {fmt_seconds(time.monotonic() - start)}")
