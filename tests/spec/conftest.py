"""The host spec's source of truth: the roles' defaults and the group_vars, read here so no
version, path or port is written twice. testinfra's ansible backend gives the hosts.

Run by `invoke verify` (pytest tests/spec --hosts=ansible://all?ansible_inventory=...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / ".build"


def _load_defaults() -> dict[str, Any]:
    values: dict[str, Any] = {}
    # Role defaults, then the per-OS variables of the one OS every host runs (Debian 12).
    for pattern in ("*/defaults/main.yml", "*/vars/Debian-12.yml"):
        for path in sorted((REPO / "roles").glob(pattern)):
            values.update(yaml.safe_load(path.read_text()) or {})
    values.update(yaml.safe_load((REPO / "inventories" / "group_vars" / "all.yml").read_text()) or {})
    values["dml_repo_dir"] = str(REPO)
    values["dml_build_dir"] = str(BUILD)
    return values


def _render(values: dict[str, Any]) -> dict[str, Any]:
    """Resolve the simple '{{ other_var }}' references between defaults (a few passes)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    resolved = dict(values)
    for _ in range(5):
        for key, value in resolved.items():
            if isinstance(value, str) and "{{" in value:
                try:
                    resolved[key] = env.from_string(value).render(**resolved)
                except jinja2.exceptions.UndefinedError:
                    continue
    return resolved


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    return _render(_load_defaults())


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
