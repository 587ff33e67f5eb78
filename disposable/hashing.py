"""One content hash for sets of files: image recipes, build inputs, role inputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def hash_files(paths: Iterable[Path], root: Path, length: int = 16) -> str:
    """sha256 over each file's path (relative to `root`) and content, in path order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:length]
