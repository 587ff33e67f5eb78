"""`invoke status` and `invoke ssh`."""

from __future__ import annotations

import os
import subprocess

import httpx

from disposable.console import say, table
from disposable.environments import Environment
from disposable.hosts import ssh
from disposable.hosts.contract import Host
from disposable.hosts.health import SERVICE_PORT
from disposable.hosts.inventory import load_contract


def _ssh_ok(env: str, host: Host) -> str:
    proc = subprocess.run([*ssh.ssh_argv(env, host), "true"], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return "ok"
    lines = proc.stderr.strip().splitlines()
    return f"FAIL ({lines[-1] if lines else proc.returncode})"


def _ready(host: Host) -> str:
    try:
        return str(httpx.get(f"http://{host.address}:{SERVICE_PORT}/readyz", timeout=3).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def show(env: Environment) -> None:
    contract = load_contract(env.name)
    rows = [
        [h.name, h.address, h.zone, f"{h.gpu_count}x {h.gpu_type}", ",".join(h.groups), _ssh_ok(env.name, h), _ready(h)]
        for h in contract.hosts
    ]
    say(table(["host", "address", "zone", "gpu", "groups", "ssh", "readyz"], rows))


def ssh_into(env: str, name: str, command: list[str]) -> None:
    contract = load_contract(env)
    host = contract.host(name) if name else contract.hosts[0]
    argv = [*ssh.ssh_argv(env, host, batch=False), *command]
    os.execvp(argv[0], argv)
