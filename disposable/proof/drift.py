"""`invoke drift`: is every host still what the code says, and if not, what changed?

Three checks, all read-only:
1. infrastructure: objects Terraform's state holds that were deleted out of band (local
   cloud: asked of LXD directly, since the provider cannot refresh a deleted container),
   then `terraform plan -detailed-exitcode` and the resources it would change;
2. configuration: `ansible-playbook site.yml --check --diff` on every host that exists; the
   tasks that would change are named per host (ansible/callback_plugins/dml_changes.py);
3. hosts: what each host is (the fingerprint probe) against the code and against the
   baseline of its last verified rebuild (disposable.proof.hostdrift): Debian packages
   against the apt lock, holds, the venv's files and packages, sshd drop-ins, and every
   file a role deploys, with mode and owner. Check mode cannot see most of these.

The hosts deleted out of band are found first (asked of LXD); then the plan, the check-mode
playbook and the host probe run side by side (each is read-only and waits mostly on
another process or host: drift of one host 21.2 s -> 14.4 s, medians of 3 on 2 cores).

Exit status of the task: 0 clean, 2 drift, 1 error (the check itself could not run).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from disposable import configuring, provisioning
from disposable.console import say, table
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.hosts.ansible import playbook_argv, run_playbook_unchecked
from disposable.hosts.inventory import load_contract
from disposable.proof.hostdrift import host_drift

REPAIR_HINT = {
    "infrastructure": "`invoke rebuild` (or `invoke provision`) re-creates what was deleted or changed",
    "configuration": "`invoke configure` converges the hosts back to the spec",
    "hosts": "`invoke configure` repairs what the roles own (files they deploy, holds, the venv); `invoke "
    "rebuild` replaces a host whose other state changed (an extra apt package, sudoers, the main sshd config)",
}


@dataclass
class DriftReport:
    infrastructure: list[str] = field(default_factory=list)
    configuration: dict[str, list[str]] = field(default_factory=dict)  # host -> tasks that would change
    hosts: dict[str, list[str]] = field(default_factory=dict)  # host -> what differs from the code / its baseline

    @property
    def clean(self) -> bool:
        return not self.infrastructure and not any(self.configuration.values()) and not any(self.hosts.values())

    def items(self) -> list[str]:
        lines = [f"infrastructure: {item}" for item in self.infrastructure]
        for host, tasks in sorted(self.configuration.items()):
            lines += [f"{host}: {task}" for task in tasks]
        for host, items in sorted(self.hosts.items()):
            lines += [f"{host}: {item}" for item in items]
        return lines


def deleted_infrastructure(env: Environment) -> tuple[list[str], set[str], Callable[[], list[str]]]:
    """Objects deleted out of band (items, and the names of hosts that no longer exist), and
    the rest of the infrastructure check: Terraform's plan, which the caller runs (it may
    run beside the other checks)."""
    tf = provisioning.terraform_for(env, need_image=False, reuse_last=True)
    tf.init()
    resources = tf.state_resources()
    if not resources and env.is_local:
        raise DisposableError(
            f"Environment {env.name} has nothing in its Terraform state: there is nothing to compare.",
            "Run `invoke rebuild` (or provision + configure) first.",
        )
    deleted = provisioning.deleted_out_of_band(resources) if env.is_local else []
    items = [f"{res['values']['name']} ({res['type']}) was deleted out of band" for res in deleted]
    gone_hosts = {res["values"]["name"] for res in deleted if res["type"] == "lxd_container"}

    def planned() -> list[str]:
        if deleted:  # the provider cannot plan over a deleted object; it is named above
            return []
        return [f"terraform would {change}" for change in tf.planned_changes()]

    return items, gone_hosts, planned


def configuration_drift(env: Environment, skip_hosts: set[str]) -> dict[str, list[str]]:
    """Tasks site.yml would change, per host (check mode, with diffs printed)."""
    contract = load_contract(env.name)
    hosts = [h.name for h in contract.hosts if h.name not in skip_hosts]
    if not hosts:
        return {}
    configuring.prepare_inputs(devices=configuring.devices_in_use(env.name))
    with tempfile.TemporaryDirectory() as tmp:
        changes_file = Path(tmp) / "changes.json"
        argv = playbook_argv(env.name, "site.yml", check=True, diff=True, limit=",".join(hosts))
        returncode, _recap = run_playbook_unchecked(argv, {"DML_CHANGES_FILE": str(changes_file)})
        if not changes_file.exists():
            raise DisposableError(f"ansible-playbook --check did not run (exit {returncode}); see the output above.")
        changes = json.loads(changes_file.read_text())
    result: dict[str, list[str]] = {host: list(changes["changed"].get(host, [])) for host in hosts}
    for host, message in changes["unreachable"].items():
        result.setdefault(host, []).append(f"unreachable: {message}")
    for host, failures in changes["failed"].items():
        result.setdefault(host, []).extend(f"check failed: {failure}" for failure in failures)
    return result


def detect(env: Environment) -> DriftReport:
    say(f"Drift: comparing environment {env.name} with its code (read-only)")
    deleted, gone, planned = deleted_infrastructure(env)
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="drift") as pool:
        plan = pool.submit(planned)
        checked = pool.submit(configuration_drift, env, gone)
        probed = pool.submit(host_drift, env.name, gone)
        # In this order, so the first error raised is the one a sequential run would raise.
        infrastructure = deleted + plan.result()
        configuration = checked.result()
        hosts, note = probed.result()
    say(f"Drift: host facts {note}")
    report = DriftReport(infrastructure, configuration, hosts)
    show(report)
    return report


def _short(text: str, width: int = 140) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def show(report: DriftReport) -> None:
    if report.clean:
        say("Drift: none - infrastructure and configuration match the code.")
        return
    rows = [["infrastructure", "-", _short(item)] for item in report.infrastructure]
    rows += [
        ["configuration", host, _short(task)] for host, tasks in sorted(report.configuration.items()) for task in tasks
    ]
    rows += [["host", host, _short(item)] for host, items in sorted(report.hosts.items()) for item in items]
    say(f"Drift: {len(rows)} difference(s):\n" + table(["layer", "host", "what changed out of band"], rows))
    if report.infrastructure:
        say(f"Repair: {REPAIR_HINT['infrastructure']}.")
    if any(report.configuration.values()):
        say(f"Repair: {REPAIR_HINT['configuration']}.")
    if any(report.hosts.values()):
        say(f"Repair: {REPAIR_HINT['hosts']}.")
