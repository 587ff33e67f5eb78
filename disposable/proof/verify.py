"""`invoke verify`: the testinfra host spec over the dynamic inventory, then the HTTP health check."""

from __future__ import annotations

import sys

from disposable.console import run, say
from disposable.errors import DisposableError
from disposable.hosts import health
from disposable.hosts.ansible import ansible_env
from disposable.hosts.inventory import load_contract
from disposable.paths import REPO_ROOT, state_dir


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
