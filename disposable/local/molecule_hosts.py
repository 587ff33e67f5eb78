"""Test hosts for Molecule scenarios: one LXD container per scenario, on its own bridge,
published through the same output contract and inventory plugin as every environment
(environment "molecule", inventories/molecule.disposable.yml). So role tests reach their
host exactly as production does: the environment's key, its known_hosts, and
StrictHostKeyChecking=yes for everything but the first contact with a fresh container.

    python -m disposable.local.molecule_hosts create NAME
    python -m disposable.local.molecule_hosts destroy NAME
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

from disposable.console import say
from disposable.errors import DisposableError
from disposable.hosts import ssh
from disposable.hosts.contract import CONTRACT_VERSION, Host, parse_outputs
from disposable.local import image, lxd
from disposable.packages.store import PackageStore
from disposable.paths import outputs_file
from disposable.provisioning import write_outputs

ENV = "molecule"
NETWORK = "dml-molecule"
CIDR_PREFIX = "10.150.78"
SSH_USER = "deploy"
STORE_DEVICE = "package-store"


def _address(name: str) -> str:
    """A stable address per scenario host (hosts .10 to .209)."""
    return f"{CIDR_PREFIX}.{10 + zlib.crc32(name.encode()) % 200}"


def _ensure_network() -> None:
    if not lxd.object_exists("network", NETWORK):
        lxd.lxc("network", "create", NETWORK, f"ipv4.address={CIDR_PREFIX}.1/24", "ipv4.nat=true",
                "ipv6.address=none")  # fmt: skip


def _hosts() -> list[Host]:
    path = outputs_file(ENV)
    return list(parse_outputs(json.loads(path.read_text())).hosts) if path.exists() else []


def _publish(hosts: list[Host]) -> None:
    if not hosts:
        outputs_file(ENV).unlink(missing_ok=True)
        return
    write_outputs(
        ENV, {"contract_version": CONTRACT_VERSION, "environment": ENV, "hosts": [h.to_dict() for h in hosts]}
    )


def create(name: str) -> Host:
    lxd.require_daemon()
    alias = image.require_image()
    _ensure_network()
    address = _address(name)
    if lxd.object_exists("instance", name):
        lxd.lxc("delete", "--force", name)
    lxd.lxc("init", alias, name, "--storage", lxd.STORAGE_POOL, "--network", NETWORK,
            "-c", f"{lxd.ENV_LABEL}={ENV}", "-c", "limits.cpu=2", "-c", "limits.memory=4GiB")  # fmt: skip
    lxd.lxc("config", "device", "set", name, "eth0", f"ipv4.address={address}")
    # The package store, read-only, where the base role points apt (as lxd_hosts does).
    lxd.lxc("config", "device", "add", name, STORE_DEVICE, "disk", f"source={PackageStore().public_dir}",
            "path=/var/lib/dml-store", "readonly=true")  # fmt: skip
    key = ssh.public_key(ENV)
    lxd.lxc("start", name)
    lxd.wait_for_address(name)
    push = ["file", "push", "-", f"{name}/home/{SSH_USER}/.ssh/authorized_keys", "--uid=1000", "--gid=1000",
            "--mode=0600"]  # fmt: skip
    subprocess.run(["lxc", *push], input=key + "\n", text=True, check=True)
    host = Host(name=name, address=address, ssh_user=SSH_USER, ssh_port=22, groups=("inference", "molecule"),
                gpu_type="none", gpu_count=0, zone="local", instance_id=f"molecule:{name}:{address}",
                connection="direct")  # fmt: skip
    _publish([h for h in _hosts() if h.name != name] + [host])
    ssh.wait_for_ssh(ENV, [host])
    return host


def destroy(name: str) -> None:
    if lxd.object_exists("instance", name):
        lxd.lxc("delete", "--force", name)
        say(f"Molecule: deleted {name}")
    remaining = [h for h in _hosts() if h.name != name]
    _publish(remaining)
    ssh.forget(ENV, _address(name))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("create", "destroy"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        (create if argv[0] == "create" else destroy)(argv[1])
    except DisposableError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
