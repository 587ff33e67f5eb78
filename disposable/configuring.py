"""`invoke configure`: build the controller-side artifacts, then run site.yml."""

from __future__ import annotations

from disposable.console import say, table
from disposable.environments import Environment
from disposable.hosts.ansible import HostRecap, run_playbook
from disposable.hosts.inventory import load_contract
from disposable.packages import artifacts


def configure(
    env: Environment, *, check: bool = False, diff: bool = False, limit: str | None = None, tags: str | None = None
) -> list[HostRecap]:
    load_contract(env.name)  # fails early and clearly when the environment was never provisioned
    artifacts.build_all()
    recap = run_playbook(env.name, "site.yml", check=check, diff=diff, limit=limit, tags=tags)
    rows = [[r.host, str(r.ok), str(r.changed), str(r.failed), str(r.unreachable)] for r in recap]
    say("Configure recap:\n" + table(["host", "ok", "changed", "failed", "unreachable"], rows))
    return recap
