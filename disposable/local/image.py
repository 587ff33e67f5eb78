"""The local cloud's host image: built offline with debootstrap, cached by its recipe's hash."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from disposable.console import fmt_seconds, say
from disposable.errors import DisposableError
from disposable.hashing import hash_files
from disposable.local import lxd
from disposable.paths import IMAGE_RECIPE_DIR, cache_dir

ALIAS_PREFIX = "dml-debian12-"


def recipe_hash(recipe_dir: Path = IMAGE_RECIPE_DIR) -> str:
    """sha256 over every file of the recipe (path and content), first 12 hex digits."""
    return hash_files((p for p in recipe_dir.rglob("*") if p.is_file()), recipe_dir, length=12)


def image_alias() -> str:
    return ALIAS_PREFIX + recipe_hash()


def ensure_image() -> str:
    """Make sure LXD holds the image for the current recipe; return its alias."""
    alias = image_alias()
    if lxd.image_exists(alias):
        say(f"Host image: {alias} already in LXD")
        return alias
    tarballs = cache_dir() / "images" / recipe_hash()
    meta, rootfs = tarballs / "meta.tar.gz", tarballs / "rootfs.tar.gz"
    if not (meta.exists() and rootfs.exists()):
        start = time.monotonic()
        say(f"Host image: building {alias} with debootstrap (about 2 minutes, cached afterwards)")
        proc = subprocess.run(["bash", str(IMAGE_RECIPE_DIR / "build.sh"), str(tarballs)], check=False)
        if proc.returncode != 0:
            raise DisposableError(
                "Building the host image failed (see the output above).",
                "Check that debootstrap is installed and the Debian mirror is reachable, then rerun.",
            )
        say(f"Host image: built in {fmt_seconds(time.monotonic() - start)}")
    lxd.import_image(meta, rootfs, alias)
    say(f"Host image: imported {alias}")
    return alias
