"""`invoke verify`: the testinfra host spec over the dynamic inventory, then the HTTP health check
(directly for local hosts, on the host over SSH/IAP for private GCP hosts, and through the
load balancer when the environment has a front door)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from disposable.console import run, say
from disposable.errors import DisposableError
from disposable.hosts import health
from disposable.hosts.ansible import ansible_env
from disposable.hosts.inventory import load_contract
from disposable.paths import REPO_ROOT, state_dir


def front_door_url(env: str) -> str:
    """The environment's front door (the contract's load balancer), or ""."""
    door = load_contract(env).front_door
    return door.url if door else ""


def control_path_dir() -> Path:
    """Where Ansible keeps its SSH control connections (ansible.cfg's control_path): testinfra
    reuses them when this directory exists, and opens a new connection per command when it
    does not (62 s instead of 10 s for the spec of 3 hosts)."""
    return Path.home() / ".ansible" / "cp"


def verify(env: str, limit: str = "") -> None:
    """The spec on every host (or only `limit`, a host name: a rolling rebuild checks the
    host it replaced), then readiness on each host and through the front door."""
    contract = load_contract(env)
    if limit:
        contract = replace(contract, hosts=(contract.host(limit),))
    reports = state_dir(env) / "reports"
    reports.mkdir(exist_ok=True)
    control_path_dir().mkdir(mode=0o700, parents=True, exist_ok=True)  # testinfra uses it only when it exists
    junit = reports / "verify.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/spec",  # each module picks its hosts by group (tests/spec/conftest.py: hosts_in)
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
    ]
    result = run(argv, label="verify", cwd=REPO_ROOT, env={**ansible_env(), "DML_ENV": env, "DML_VERIFY_LIMIT": limit})
    if result.returncode != 0:
        raise DisposableError(
            f"The host spec failed on environment {env} (JUnit report: {junit}).",
            "`invoke configure` converges the hosts back to the spec; rerun `invoke verify` afterwards.",
        )
    say(f"Spec: all checks passed on {len(contract.hosts)} host(s) (JUnit report: {junit})")
    health.wait_ready(contract)
    url = front_door_url(env)
    if url and not limit and contract.in_group("inference"):  # a front door with nothing behind it stays 503
        health.wait_front_door(url)
    if contract.feature_store is not None and not limit and contract.in_group("inference"):
        direct = [h for h in contract.in_group("inference") if h.connection == "direct"]
        target = url or (f"http://{direct[0].address}:{health.SERVICE_PORT}" if direct else "")
        if target:
            health.check_zone_only_prediction(target)
        else:
            say("Feature store: no front door and no directly reachable host; zone-only prediction not checked here")
