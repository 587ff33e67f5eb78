"""Where things live: the repository, per-environment state, caches."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"
ANSIBLE_DIR = REPO_ROOT / "ansible"
INVENTORY_DIR = REPO_ROOT / "inventories"
IMAGE_RECIPE_DIR = REPO_ROOT / "images" / "debian12"
SERVICE_DIR = REPO_ROOT / "service"


def state_root() -> Path:
    """Per-environment generated state (git-ignored): keys, known_hosts, tfstate, outputs."""
    return Path(os.environ.get("DML_STATE_DIR", REPO_ROOT / ".state"))


def state_dir(env: str) -> Path:
    path = state_root() / env
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def cache_dir() -> Path:
    """Machine-wide cache shared by every clone: image tarballs, provider mirror, wheels."""
    base = os.environ.get("DML_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "disposable-ml"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def outputs_file(env: str) -> Path:
    """Where `provision` writes the Terraform outputs for the inventory plugin."""
    return state_dir(env) / "outputs.json"


def venv_tool(name: str) -> str:
    """A console script installed next to the running interpreter (the project's .venv)."""
    import sys

    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
