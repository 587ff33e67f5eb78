"""`invoke configure`: make the hosts' inputs ready on the controller, then run site.yml."""

from __future__ import annotations

import os
from collections.abc import Iterable

from disposable.console import say, table
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.hosts.ansible import HostRecap, run_playbook
from disposable.hosts.inventory import load_contract
from disposable.packages import artifacts, pylocks, supply
from disposable.packages.supply import Supply


def frozen_requested(flag: bool = False) -> bool:
    """--frozen on the command line, or DML_FROZEN=1 in the environment (CI, the nightly)."""
    return flag or os.environ.get("DML_FROZEN", "") in ("1", "true", "yes")


def prepare_inputs(frozen: bool = False, devices: Iterable[str] = ("cpu",)) -> Supply:
    """Everything hosts install, ready on the controller: the apt lock's packages in the
    package store (and .build/apt-lock.json for the roles), a wheelhouse per device in use
    (cpu, cuda), the service bundle, and the model, published in the model store."""
    from disposable.state import models

    current = supply.prepare(frozen_requested(frozen))
    supply.write_descriptor(current)
    artifacts.build_all(devices)
    models.publish(artifacts.BUILD_DIR / "model")  # the model store holds every version hosts serve
    models.write_descriptor(artifacts.BUILD_DIR)
    return current


def devices_in_use(env: str) -> set[str]:
    """The torch builds the environment's hosts need, from the output contract's GPU facts."""
    return {pylocks.device_for(host.gpu_count) for host in load_contract(env).hosts}


def require_running(env: str) -> None:
    """Say which hosts are down before Ansible runs into them (local cloud: LXD knows)."""
    from disposable.local import lxd

    down = {h.name: lxd.instance_status(h.name) or "missing" for h in load_contract(env).hosts}
    down = {name: status for name, status in down.items() if status != "Running"}
    if down:
        raise DisposableError(
            "Host(s) not running: " + ", ".join(f"{name} ({status})" for name, status in sorted(down.items())) + ".",
            "`invoke provision` starts stopped hosts and re-creates missing ones (`invoke rebuild` for a fresh start).",
        )


def configure(
    env: Environment,
    *,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    tags: str | None = None,
    frozen: bool = False,
) -> list[HostRecap]:
    devices = devices_in_use(env.name)  # fails early and clearly when the environment was never provisioned
    if env.is_local:
        require_running(env.name)
    prepare_inputs(frozen, devices)
    recap = run_playbook(env.name, "site.yml", check=check, diff=diff, limit=limit, tags=tags)
    rows = [[r.host, str(r.ok), str(r.changed), str(r.failed), str(r.unreachable)] for r in recap]
    say("Configure recap:\n" + table(["host", "ok", "changed", "failed", "unreachable"], rows))
    contract = load_contract(env.name)
    if not (check or limit or tags) and contract.in_group("inference"):
        from disposable.state import models

        models.pin(env.name)  # what it serves now stays until deploy-model
    if contract.feature_store is not None and not (check or limit or tags):
        from disposable.state.feed import feed

        feed(contract, once=True)  # a converged environment answers zone-only requests at once
    return recap
