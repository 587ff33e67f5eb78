"""The host spec's source of truth: the roles' defaults and the group_vars, read here so no
version, path or port is written twice. testinfra's ansible backend gives the hosts.

Run by `invoke verify` (pytest tests/spec --hosts=ansible://all?ansible_inventory=...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from disposable.hosts.rolevars import BUILD_DIR as BUILD
from disposable.hosts.rolevars import role_vars

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    return role_vars()


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    path = BUILD / "model" / "manifest.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `invoke configure` (it trains the model) before verify")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def locked_requirements() -> dict[str, str]:
    """name -> exact version from service/requirements.txt (the hash-locked service deps)."""
    pins: dict[str, str] = {}
    for line in (REPO / "service" / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


@pytest.fixture
def hostvars(host: Any) -> dict[str, Any]:
    return host.ansible.get_variables()


@pytest.fixture
def gpu_stack(hostvars: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Is the GPU stack part of this host's spec? (a GPU, or the install forced without one)"""
    forced = hostvars.get("nvidia_driver_force_install", spec["nvidia_driver_force_install"])
    return int(hostvars.get("dml_gpu_count", 0)) > 0 or bool(forced)


@pytest.fixture
def has_gpu(hostvars: dict[str, Any]) -> bool:
    return int(hostvars.get("dml_gpu_count", 0)) > 0
