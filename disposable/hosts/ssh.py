"""Per-environment SSH identity and known_hosts.

Each environment has its own generated ed25519 key and known_hosts file under
.state/<env>/ssh/ (git-ignored). Host keys are never learnt on first use: they are read
through the cloud's authenticated API (disposable.hosts.hostkeys) and written to
known_hosts, and every connection runs with StrictHostKeyChecking=yes, so a key that
does not match is refused.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from disposable.console import say
from disposable.errors import DisposableError
from disposable.hosts import hostkeys
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


def options(env: str, *, batch: bool = True) -> list[str]:
    """ssh -o options for this environment: only keys in its known_hosts are accepted."""
    opts = [
        "-o",
        f"UserKnownHostsFile={known_hosts(env)}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=5",
    ]
    return [*opts, "-o", "BatchMode=yes"] if batch else opts


def iap_proxy_command(env: str, host: Host) -> str:
    """The SSH ProxyCommand that reaches an `iap` host through Identity-Aware Proxy. The
    project is the environment's (disposable.gcp.project: the root's project_id output,
    terraform.tfvars, the provision variables, TF_VAR_project_id), never gcloud's current
    default, which may be another project; unknown, gcloud's default is left to decide."""
    from disposable.gcp.project import project_for

    project = project_for(env)
    project_arg = f" --project={shlex.quote(project)}" if project else ""
    return (
        f"gcloud compute start-iap-tunnel {shlex.quote(host.name)} %p --listen-on-stdin"
        f" --zone={shlex.quote(host.zone)}{project_arg} --verbosity=warning"
    )


def ssh_argv(env: str, host: Host, *, batch: bool = True) -> list[str]:
    proxy = ["-o", f"ProxyCommand={iap_proxy_command(env, host)}"] if host.connection == "iap" else []
    return [
        "ssh",
        "-i",
        str(private_key(env)),
        *options(env, batch=batch),
        *proxy,
        "-p",
        str(host.ssh_port),
        f"{host.ssh_user}@{host.address}",
    ]


def forget(env: str, address: str) -> None:
    if known_hosts(env).exists():
        subprocess.run(["ssh-keygen", "-R", address, "-f", str(known_hosts(env))], capture_output=True, check=False)


def learn_host_keys(env: str, hosts: Iterable[Host], project: str = "") -> None:
    """Write each host's keys, read through the cloud's API, into the environment's
    known_hosts (replacing what was there for its address)."""
    for host in hosts:
        keys = hostkeys.trusted_keys(host, project)
        forget(env, host.address)
        with known_hosts(env).open("a") as handle:
            handle.writelines(line + "\n" for line in hostkeys.known_hosts_lines(host, keys))
        channel = "LXD" if host.zone == "local" else "its guest attributes"
        say(f"SSH: {host.name} host key(s) read through {channel}: {', '.join(k.split()[0] for k in keys)}")


def wait_for_ssh(env: str, hosts: Iterable[Host], project: str = "", timeout: float = 180) -> None:
    """Learn the hosts' keys through the cloud's API, then wait until each answers over SSH
    (with StrictHostKeyChecking=yes: the key it presents must be that one)."""
    hosts = list(hosts)
    learn_host_keys(env, hosts, project)
    for host in hosts:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            proc = subprocess.run([*ssh_argv(env, host), "true"], capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                say(f"SSH: {host.name} ({host.address}) is reachable")
                break
            last = proc.stderr.strip()
            if "REMOTE HOST IDENTIFICATION HAS CHANGED" in last or "Host key verification failed" in last:
                raise DisposableError(
                    f"{host.name} ({host.address}) presents another SSH host key than the one its cloud reports "
                    f"(recorded in {known_hosts(env)}).",
                    "Something else answers on that address, or the host's keys changed while it booted: investigate "
                    "before trusting it; `invoke rebuild` replaces the host.",
                )
            if time.monotonic() > deadline:
                raise DisposableError(
                    f"{host.name} ({host.address}) is unreachable over SSH after {timeout:.0f}s: {last}",
                    "Check `invoke status`; `lxc list` / the cloud console shows whether the host runs.",
                )
            time.sleep(2)
