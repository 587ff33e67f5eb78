"""Per-environment SSH identity and known_hosts.

Each environment has its own generated ed25519 key and known_hosts file under
.state/<env>/ssh/ (git-ignored). Host keys are learnt on first contact only for hosts
that were just (re)created (their instance_id is new); every other connection runs with
StrictHostKeyChecking=yes, so a changed key on a known host is refused.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from disposable.console import say
from disposable.errors import DisposableError
from disposable.hosts.contract import Host
from disposable.paths import state_dir


def ssh_dir(env: str) -> Path:
    path = state_dir(env) / "ssh"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_key(env: str) -> Path:
    return ssh_dir(env) / "id_ed25519"


def known_hosts(env: str) -> Path:
    return ssh_dir(env) / "known_hosts"


def ensure_keypair(env: str) -> Path:
    key = private_key(env)
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"disposable-ml-{env}", "-f", str(key)],
            check=True,
        )
        say(f"SSH: generated {key} (git-ignored)")
    return key


def public_key(env: str) -> str:
    return Path(f"{ensure_keypair(env)}.pub").read_text().strip()


def options(env: str, *, accept_new: bool = False, batch: bool = True) -> list[str]:
    """ssh -o options for this environment. accept_new only for freshly created hosts."""
    opts = [
        "-o",
        f"UserKnownHostsFile={known_hosts(env)}",
        "-o",
        f"StrictHostKeyChecking={'accept-new' if accept_new else 'yes'}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=5",
    ]
    return [*opts, "-o", "BatchMode=yes"] if batch else opts


def ssh_argv(env: str, host: Host, *, accept_new: bool = False, batch: bool = True) -> list[str]:
    return [
        "ssh",
        "-i",
        str(private_key(env)),
        *options(env, accept_new=accept_new, batch=batch),
        "-p",
        str(host.ssh_port),
        f"{host.ssh_user}@{host.address}",
    ]


def forget(env: str, address: str) -> None:
    if known_hosts(env).exists():
        subprocess.run(["ssh-keygen", "-R", address, "-f", str(known_hosts(env))], capture_output=True, check=False)


def wait_for_ssh(env: str, hosts: Iterable[Host], fresh: set[str], timeout: float = 180) -> None:
    """Wait until every host answers over SSH; learn host keys of the `fresh` ones only."""
    for host in hosts:
        accept_new = host.name in fresh
        if accept_new:
            forget(env, host.address)
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            proc = subprocess.run(
                [*ssh_argv(env, host, accept_new=accept_new), "true"], capture_output=True, text=True, check=False
            )
            if proc.returncode == 0:
                say(f"SSH: {host.name} ({host.address}) is reachable" + (" - host key recorded" if accept_new else ""))
                break
            last = proc.stderr.strip()
            if "REMOTE HOST IDENTIFICATION HAS CHANGED" in last or "Host key verification failed" in last:
                raise DisposableError(
                    f"The SSH host key of {host.name} ({host.address}) does not match the one recorded "
                    f"in {known_hosts(env)}.",
                    "If the host was re-created outside Terraform, run `invoke rebuild`; otherwise investigate.",
                )
            if time.monotonic() > deadline:
                raise DisposableError(
                    f"{host.name} ({host.address}) is unreachable over SSH after {timeout:.0f}s: {last}",
                    "Check `invoke status`; `lxc list` / the cloud console shows whether the host runs.",
                )
            time.sleep(2)
