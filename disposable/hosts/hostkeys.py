"""Host keys, learnt through a channel that is already authenticated, never on first use.

A host's SSH host key is read through the cloud's own API, not from the network SSH
connects over: in the local cloud from the container's file system through LXD
(`lxc exec`, root on this machine), on GCP from the instance's guest attributes
(`hostkeys/`, written by the guest agent at boot, read with the caller's credentials).
The environment's known_hosts then holds exactly those keys, and every SSH connection
runs with StrictHostKeyChecking=yes. So a host that answered SSH before its keys existed,
an outputs.json that was lost or corrupted, or a provision interrupted before it waited
for SSH can never lead to trusting a key nobody checked.
"""

from __future__ import annotations

import json
import subprocess
import time

from disposable.errors import DisposableError
from disposable.hosts.contract import Host

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")


def _local_keys(host: Host, timeout: float) -> list[str]:
    """The container's public host keys (generated at its first boot: waited for)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        proc = subprocess.run(
            ["lxc", "exec", host.name, "--", "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"],
            capture_output=True,
            text=True,
            check=False,
        )
        keys = [
            line.split()[:2] for line in proc.stdout.splitlines() if line.split()[:1] and line.split()[0] in KEY_TYPES
        ]
        if proc.returncode == 0 and keys:
            return [" ".join(k) for k in keys]
        last = proc.stderr.strip() or "no host keys yet"
        if time.monotonic() > deadline:
            raise DisposableError(
                f"Could not read the SSH host keys of {host.name} through LXD within {timeout:.0f}s: {last}",
                "Check that the container booted (`lxc list`, `lxc console --show-log`).",
            )
        time.sleep(1)


def _gcp_keys(host: Host, project: str, timeout: float) -> list[str]:
    """The instance's host keys from its guest attributes (hostkeys/ namespace)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        argv = ["gcloud", "compute", "instances", "get-guest-attributes", host.name, f"--zone={host.zone}",
                "--query-path=hostkeys/", "--format=json"]  # fmt: skip
        argv += [f"--project={project}"] if project else []
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            entries = json.loads(proc.stdout or "[]")
            keys = [f"{e['key']} {e['value']}" for e in entries if e.get("key") in KEY_TYPES]
            if keys:
                return keys
            last = "the guest agent has not published host keys yet"
        else:
            last = proc.stderr.strip()
        if time.monotonic() > deadline:
            raise DisposableError(
                f"Could not read the SSH host keys of {host.name} from its guest attributes: {last}",
                "The instance needs metadata enable-guest-attributes=TRUE (the gpu_vm module sets it) and a "
                "running guest agent; check `gcloud compute instances get-serial-port-output`.",
            )
        time.sleep(3)


def trusted_keys(host: Host, project: str = "", timeout: float = 180) -> list[str]:
    """'<type> <base64>' lines for the host, read through the cloud's API."""
    if host.zone == "local":
        return _local_keys(host, timeout)
    return _gcp_keys(host, project, timeout)


def known_hosts_lines(host: Host, keys: list[str]) -> list[str]:
    name = host.address if host.ssh_port == 22 else f"[{host.address}]:{host.ssh_port}"
    return [f"{name} {key}" for key in keys]
