"""The versions of the tools a run used, recorded with every rebuild/nightly in the history."""

from __future__ import annotations

import importlib.metadata
import platform
import re

from disposable.engine.binary import find_engine
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.local import lxd


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _providers(env: Environment) -> dict[str, str]:
    lock = env.stack / ".terraform.lock.hcl"
    if not lock.exists():
        return {}
    found = re.findall(r'provider "([^"]+)" \{\s*version\s*=\s*"([^"]+)"', lock.read_text())
    return {f"provider {name.split('/', 1)[-1]}": version for name, version in found}


def tool_versions(env: Environment) -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "ansible-core": _package("ansible-core"),
        "pytest-testinfra": _package("pytest-testinfra"),
        **_providers(env),
    }
    try:
        engine = find_engine()
        versions[engine.name] = engine.version
    except DisposableError:
        versions["terraform"] = "absent"
    if env.is_local and lxd.daemon_running():
        versions["lxd"] = lxd.lxc("version", check=False).stdout.split("Server version:")[-1].strip()
    return versions
