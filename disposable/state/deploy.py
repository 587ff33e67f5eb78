"""`invoke deploy-model VERSION` / `invoke rollback-model`: the fleet moves to another model
version one host at a time, each a hot swap (the role pulls the version, rewrites the
configuration, SIGHUPs the service and waits until it serves the version; the old version
answers meanwhile), so no request is refused. The environment's record
(`.state/<env>/model.json`) changes only when every host serves the version, and the next
`configure` or rebuild keeps it.
"""

from __future__ import annotations

import time

from disposable.console import fmt_seconds, say, table
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.hosts.ansible import run_playbook
from disposable.hosts.inventory import load_contract
from disposable.state import models


def deploy_model(env: Environment, version: str, *, rollback: bool = False) -> None:
    from disposable import configuring

    models.entry(version)  # a version the store does not hold is refused before any host is touched
    hosts = load_contract(env.name).in_group("inference")
    if not hosts:
        raise DisposableError(f"Environment {env.name} has no inference hosts.", "`invoke provision` first.")
    before = models.serving(env.name)
    configuring.prepare_inputs(devices=configuring.devices_in_use(env.name))
    rows = []
    for host in hosts:
        started = time.monotonic()
        say(f"Model: {host.name} -> {models.MODEL_NAME} {version}")
        run_playbook(
            env.name,
            "site.yml",
            limit=host.name,
            tags="inference_service",
            extra_args=["-e", f"inference_service_model_version={version}"],
        )
        rows.append([host.name, version, fmt_seconds(time.monotonic() - started)])
    record = models.record_rollback(env.name, version) if rollback else models.record_deploy(env.name, version)
    say(table(["host", "serves", "time"], rows))
    what = "rolled back" if rollback else "deployed"
    move = f"{before.get('version') or '-'} -> {record['version']}"
    say(f"Model: {what} {models.MODEL_NAME} {move} on {len(rows)} host(s)")


def rollback_model(env: Environment) -> None:
    previous = models.serving(env.name).get("previous") or []
    if not previous:
        raise DisposableError(
            f"Environment {env.name} has no earlier model version to return to.",
            "`invoke deploy-model VERSION` records the version it replaces; `invoke models` lists them.",
        )
    deploy_model(env, previous[-1], rollback=True)


def show(env: Environment) -> None:
    serving = models.serving(env.name).get("version")
    rows = [
        [
            v["version"],
            v["sha256"][:12],
            str(v["size_bytes"]),
            v["created"],
            "serving" if v["version"] == serving else "",
        ]
        for v in models.versions()
    ]
    say(f"Model store: {models.store_dir()}")
    say(table(["version", "sha256", "bytes", "published", env.name], rows) if rows else "no version published yet")
