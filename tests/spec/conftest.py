"""The host spec's source of truth: the roles' defaults and the group_vars, read here so no
version, path or port is written twice. testinfra's ansible backend gives the hosts.

Run by `invoke verify` (pytest tests/spec --hosts=ansible://all?ansible_inventory=...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from disposable.hosts.rolevars import BUILD_DIR as BUILD
from disposable.hosts.rolevars import role_vars

REPO = Path(__file__).resolve().parents[2]


def hosts_in(group: str) -> list[str]:
    """testinfra host specs of the hosts of `group` ("all": every host) in the environment
    `invoke verify` checks (DML_ENV); each spec module sets `testinfra_hosts` with it, so a
    load balancer is never held to an inference host's spec. Molecule passes its host with
    --hosts, which takes precedence."""
    import os

    env = os.environ.get("DML_ENV")
    if not env:
        return []
    from disposable.hosts.ansible import inventory_file
    from disposable.hosts.inventory import host_groups, load_contract

    contract = load_contract(env)
    inventory = inventory_file(env)
    only = os.environ.get("DML_VERIFY_LIMIT", "")  # `verify(limit=host)`: one host, e.g. in a rolling rebuild
    return [
        f"ansible://{host.name}?ansible_inventory={inventory}"
        for host in contract.hosts
        if (group == "all" or group in host_groups(contract, host)) and (not only or host.name == only)
    ]


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    return role_vars()


@pytest.fixture
def locked_requirements(hostvars: dict[str, Any]) -> dict[str, str]:
    """name -> exact version from the host's Python lock (service/requirements.txt and the
    torch lock of its device, joined by `invoke configure` in .build/requirements-<device>.txt)."""
    from disposable.packages.pylocks import device_for

    path = BUILD / f"requirements-{device_for(int(hostvars.get('dml_gpu_count', 0)))}.txt"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `invoke configure` before verify")
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


@pytest.fixture(scope="session")
def apt_lock() -> Any:
    """The apt lock `invoke configure` gave the hosts (committed, or its LOCK STALE override)."""
    from disposable.packages import supply

    current = supply.effective()
    configured = supply.read_descriptor()
    if configured["hash"] != current.lock.hash:
        pytest.fail(
            f"the apt lock changed since the last configure ({configured['hash'][:12]} -> {current.lock.short_hash})"
        )
    return current.lock


@pytest.fixture(scope="session")
def apt_versions(apt_lock: Any) -> dict[str, str]:
    return dict(apt_lock.versions())


@pytest.fixture
def hostvars(host: Any) -> dict[str, Any]:
    return host.ansible.get_variables()


@pytest.fixture
def kernel_flavour(hostvars: dict[str, Any], spec: dict[str, Any]) -> str:
    """The kernel flavour the host's environment holds with the driver (GCE: cloud-amd64)."""
    return str(hostvars.get("nvidia_driver_kernel_flavour", spec["nvidia_driver_kernel_flavour"]))


@pytest.fixture
def gpu_stack(hostvars: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Is the GPU stack part of this host's spec? (a GPU, or the install forced without one)"""
    forced = hostvars.get("nvidia_driver_force_install", spec["nvidia_driver_force_install"])
    return int(hostvars.get("dml_gpu_count", 0)) > 0 or bool(forced)


@pytest.fixture
def has_gpu(hostvars: dict[str, Any]) -> bool:
    return int(hostvars.get("dml_gpu_count", 0)) > 0
