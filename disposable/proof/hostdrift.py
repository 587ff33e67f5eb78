"""`invoke drift`'s host layer: what a host IS (the fingerprint probe) against what the code
says it must be and against the baseline taken right after its last verified rebuild.

Per host, each named:
- Debian packages against the apt lock: extra, at another version, missing;
- the holds the roles set (driver, kernel, CUDA toolkit) that are gone;
- the venv: files of installed packages edited, missing or added (RECORD hashes), and
  packages that are not in the host's Python lock;
- an sshd drop-in that sorts before the project's (sshd keeps the first value it reads);
- everything else that differs from the baseline fingerprint: any file a role deploys
  (content, mode, owner), the security files around them, users, the unit's state.
Ansible's check mode cannot see most of these: it only knows the tasks it would change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from disposable.hosts.contract import Host
from disposable.hosts.deployed import destinations
from disposable.hosts.inventory import host_groups, load_contract
from disposable.hosts.rolevars import environment_value, role_vars
from disposable.packages import pylocks
from disposable.packages.aptlock import HostPackages
from disposable.paths import REPO_ROOT
from disposable.proof import fingerprint
from disposable.proof.fingerprint import Fingerprint

# Keys the explicit checks below already name in their own words.
EXPLICIT = ("packages", "apt_lock", "holds", "venv", "venv_integrity")


def expected_holds(env: str, host: Host, groups: list[str]) -> list[str]:
    """What the nvidia_driver and cuda roles hold on this host (none where they do not run)."""
    v = role_vars()
    forced = bool(environment_value(env, "nvidia_driver_force_install"))
    if "inference" not in groups or not (host.gpu_count > 0 or forced):
        return []
    flavour = environment_value(env, "nvidia_driver_kernel_flavour")
    kernel = [f"linux-image-{flavour}", f"linux-headers-{flavour}"]
    return sorted({*v["nvidia_driver_os_packages"], *kernel, v["cuda_toolkit_package"]})


def python_lock_pins(device: str) -> dict[str, str]:
    """name -> version of the host's Python lock (.build/requirements-<device>.txt)."""
    path = REPO_ROOT / ".build" / f"requirements-{device}.txt"
    if not path.exists():
        return {}
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def venv_items(facts: dict[str, Any], host: Host, groups: list[str]) -> list[str]:
    if "inference" not in groups:
        return []
    integrity = facts.get("venv_integrity") or {}
    items = [
        f"venv: {path} was edited (its sha256 differs from the package's RECORD)"
        for path in integrity.get("modified", [])
    ]
    items += [f"venv: {path} is missing (listed in its package's RECORD)" for path in integrity.get("missing", [])]
    items += [f"venv: {path} belongs to no installed package" for path in integrity.get("unrecorded", [])]
    pins = python_lock_pins(pylocks.device_for(host.gpu_count))
    if pins:
        for entry in facts.get("venv", []):
            name, _, version = entry.partition("==")
            key = name.replace("_", "-")
            if key in ("pip", "setuptools", "wheel"):
                continue
            if key not in pins:
                items.append(f"venv: pip package {name} {version} is installed but not in the Python lock")
            elif pins[key] != version:
                items.append(f"venv: pip package {name} is {version}, the Python lock says {pins[key]}")
    return items


SSHD_DROPINS = "/etc/ssh/sshd_config.d/"


def sshd_items(facts: dict[str, Any]) -> list[str]:
    """A drop-in sorting before the project's wins every setting both name."""
    ours = [Path(p).name for p in destinations() if p.startswith(SSHD_DROPINS)]
    present = sorted(Path(p).name for p in facts.get("files", {}) if p.startswith(SSHD_DROPINS) and p.endswith(".conf"))
    return [
        f"sshd: drop-in {other} sorts before the project's {name} (sshd keeps the first value it reads)"
        for name in ours
        for other in present
        if other < name
    ]


def baseline_items(host: str, facts: dict[str, Any], baseline: Fingerprint | None, instance_id: str) -> list[str]:
    if baseline is None or host not in baseline.hosts:
        return []
    if baseline.instances.get(host) != instance_id:
        return []  # re-created since: the baseline describes another host
    old = Fingerprint(baseline.taken_at, {host: _without(baseline.hosts[host])})
    new = Fingerprint(baseline.taken_at, {host: _without(facts)})
    return [line.split(": ", 1)[1] + " (since the last verified rebuild)" for line in fingerprint.differences(old, new)]


def _without(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if k not in EXPLICIT}


def host_drift(env: str, skip_hosts: set[str]) -> tuple[dict[str, list[str]], str]:
    """Per host, what differs from the code and from the baseline; and a note on the baseline."""
    contract = load_contract(env)
    hosts = [h for h in contract.hosts if h.name not in skip_hosts]
    if not hosts:
        return {}, ""
    current = fingerprint.collect(env, skip=skip_hosts)
    baseline = fingerprint.latest_baseline(env)
    result: dict[str, list[str]] = {}
    for host in hosts:
        facts = current.hosts[host.name]
        groups = host_groups(contract, host)
        items = HostPackages.from_dict(facts["apt_lock"]).items()
        held = set(facts.get("holds", []))
        items += [f"{p} is not held (its role holds it)" for p in expected_holds(env, host, groups) if p not in held]
        items += venv_items(facts, host, groups)
        items += sshd_items(facts)
        items += baseline_items(host.name, facts, baseline, host.instance_id)
        result[host.name] = items
    note = (
        f"compared with the baseline of {baseline.taken_at}"
        if baseline
        else "no baseline fingerprint (one is taken by every verified `invoke rebuild`)"
    )
    return result, note
