"""`invoke verify`: the testinfra host spec over the dynamic inventory, then the HTTP health check
(directly for local hosts, on the host over SSH/IAP for private GCP hosts, and through the
load balancer when the environment has a front door)."""

from __future__ import annotations

import json
import sys

from disposable.console import run, say
from disposable.errors import DisposableError
from disposable.hosts import health
from disposable.hosts.ansible import ansible_env
from disposable.hosts.inventory import load_contract
from disposable.paths import REPO_ROOT, outputs_file, state_dir


def front_door_url(env: str) -> str:
    """The `front_door` output beside the contract (the gcp_fleet root has one), else ""."""
    try:
        outputs = json.loads(outputs_file(env).read_text())
    except (OSError, ValueError):
        return ""
    door = outputs.get("front_door") if isinstance(outputs, dict) else None
    door = door.get("value", door) if isinstance(door, dict) else None
    url = door.get("url") if isinstance(door, dict) else None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else ""


def verify(env: str) -> None:
    contract = load_contract(env)
    reports = state_dir(env) / "reports"
    reports.mkdir(exist_ok=True)
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
    result = run(argv, label="verify", cwd=REPO_ROOT, env={**ansible_env(), "DML_ENV": env})
    if result.returncode != 0:
        raise DisposableError(
            f"The host spec failed on environment {env} (JUnit report: {junit}).",
            "`invoke configure` converges the hosts back to the spec; rerun `invoke verify` afterwards.",
        )
    say(f"Spec: all checks passed on {len(contract.hosts)} host(s) (JUnit report: {junit})")
    health.wait_ready(contract)
    url = front_door_url(env)
    if url:
        health.wait_front_door(url)
