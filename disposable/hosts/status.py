"""`invoke status` and `invoke ssh`."""

from __future__ import annotations

import os
import subprocess

import httpx

from disposable.console import say, table
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.hosts import ssh
from disposable.hosts.contract import Contract, Host
from disposable.hosts.health import SERVICE_PORT
from disposable.hosts.inventory import load_contract


def _ssh_ok(env: str, host: Host) -> str:
    proc = subprocess.run([*ssh.ssh_argv(env, host), "true"], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return "ok"
    lines = proc.stderr.strip().splitlines()
    return f"FAIL ({lines[-1] if lines else proc.returncode})"


def _ready(host: Host) -> str:
    if "inference" not in host.groups:
        return "-"
    try:
        return str(httpx.get(f"http://{host.address}:{SERVICE_PORT}/readyz", timeout=3).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def _in_rotation(env: str, contract: Contract) -> dict[str, str]:
    """Each inference host's state at the load balancer (UP, DOWN, DRAIN, MAINT)."""
    if contract.front_door is None or not contract.in_group("lb"):
        return {}
    from disposable.fleet.haproxy import RuntimeApi

    try:
        return {name: s.status for name, s in RuntimeApi.of(env, contract).servers().items()}
    except DisposableError as exc:
        return {h.name: f"? ({exc})" for h in contract.in_group("inference")}


def show(env: Environment) -> None:
    contract = load_contract(env.name)
    rotation = _in_rotation(env.name, contract)
    rows = [
        [h.name, h.address, h.zone, f"{h.gpu_count}x {h.gpu_type}", ",".join(h.groups), _ssh_ok(env.name, h), _ready(h)]
        + ([rotation.get(h.name, "-")] if rotation else [])
        for h in contract.hosts
    ]
    headers = ["host", "address", "zone", "gpu", "groups", "ssh", "readyz"] + (["load balancer"] if rotation else [])
    say(table(headers, rows))
    if contract.front_door:
        door = contract.front_door
        try:
            answer = str(httpx.get(f"{door.url}/readyz", timeout=3).status_code)
        except httpx.HTTPError as exc:
            answer = type(exc).__name__
        say(f"Front door: {door.url} -> /readyz {answer}")
    if contract.feature_store:
        say(f"Feature store: {contract.feature_store.url}")
    if env.is_local:
        from disposable.local import statevolume

        if statevolume.exists(env.name):
            say(f"State kept across rebuilds: {statevolume.describe(env.name)}")


def ssh_into(env: str, name: str, command: list[str]) -> None:
    contract = load_contract(env)
    host = contract.host(name) if name else contract.hosts[0]
    argv = [*ssh.ssh_argv(env, host, batch=False), *command]
    os.execvp(argv[0], argv)
