"""`pip download` of a hash-locked requirements file: the one way the project fetches
packages it ships elsewhere (the service wheelhouse, the Terraform provider sdists)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pip_download(
    requirements: Path, dest: Path, *options: str, quiet_stderr: bool = False
) -> subprocess.CompletedProcess[str]:
    """Download exactly what `requirements` pins (--require-hashes, --no-deps) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--retries=1",  # an unreachable index (PyTorch's behind some firewalls) fails fast, visibly
        *options,
        "-r",
        str(requirements),
        "-d",
        str(dest),
    ]
    return subprocess.run(cmd, capture_output=quiet_stderr, text=True, check=False)
