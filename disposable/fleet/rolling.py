"""`invoke rebuild --rolling` and `invoke scale N`: change the fleet one host at a time while
the front door keeps serving.

Rolling rebuild, for each inference host in turn:
  drain (HAProxy runtime API: current sessions finish, no new ones) -> wait for 0 sessions
  -> maint -> replace (terraform apply -replace=<host>) -> configure it -> verify it ->
  its /readyz -> ready -> wait until HAProxy's health checks count it UP.
It stops at the first failure: that host stays in maint, the rest of the fleet serves.

In the local cloud every host shares this machine's cores, so a host being configured
(apt, pip: minutes of CPU) would slow the answers of the hosts serving. While it is
configured and verified it holds a soft CPU share: LXD's `limits.cpu.allowance` of 5 %,
which is cgroup cpu.shares 51 against the serving hosts' 1024. Soft: when the CPUs are
idle it still gets all of them; it only yields when a serving host needs one. The
allowance is removed before the host takes traffic, also on failure. (Verify runs the
same checks at any CPU share; it held the full share until 2026-12-02, when testinfra's
reused SSH connections made it a 8 s burst on the host and the rolling p99 reached 2.03x
steady in CI.) Since 2026-12-07 it is also capped at half a CPU (a hard cgroup quota next
to the soft share: LXD's allowance takes one or the other): with the share alone the host
being built keeps a CPU busy at a low weight, so a serving host's request that wakes up
waits for it to be preempted; capped, it leaves a CPU idle more often. Measured on an AMD
EPYC 2-core machine, 3-host fleet, 83 requests/s, `invoke rebuild --rolling`: rolling p99
14.0 and 14.1 ms with the share alone, 12.4 and 11.5 ms capped (two runs each; CI runs of
the share alone: 12.7, 12.9, 15.6 ms); the rollout takes 500-530 s instead of 330 s. The
host is configured with Ansible's own linear strategy, not Mitogen's:
with Mitogen the serving hosts' answers stalled for up to 1.7 s during the host's
configure (rolling p99 331 ms and 780 ms in two CI runs, 605 ms in a test run, 0-1,304
requests over 50 ms in three diagnostic runs, 2026-12-03), while 7 runs before Mitogen
stayed within 26 ms. The cause was not found (CPU sampling shows no saturation; a 1.5 GB
write on a host, or Mitogen copying the 228 MB wheelhouse alone, does not reproduce it).
Mitogen saves little here (configure of a new host is pip and apt: 63-71 s linear, 79-85 s
linear at nice 19 in CI, 63-79 s Mitogen). This machine's side of configure and verify
(ansible-playbook, ssh, pytest) runs at nice 19: on cgroup v1 a process outside the
containers weighs as much as a whole container. Tried and not kept (2026-12-03): pinning
the hosts being built to the upper half of the CPUs (LXD `limits.cpu` "1-1"): rolling p99
15.4 ms (1.77x steady) against 14.3 ms (2.27x) without, one run each, and a scale-up 40 %
slower (two hosts built on one CPU). A diagnostic run that timestamped every answer over
12 ms put most of them in pip's install of the wheelhouse on the new host, whose writes
are partly done by kernel threads outside every container (btrfs and loop-device workers
show in the CPU samples), which no container CPU setting reaches. (LXD's
`limits.cpu.priority` is no such lever: its lowest value is cpu.shares 1014 against 1024,
measured.) On GCP each host has its own VM and nothing competes.

Scaling: new hosts are configured before the load balancer hears of them, and enter
rotation only once their /readyz passes its checks (then slowstart ramps them up);
removed hosts are drained and put in maint before Terraform destroys them. The load
balancer is reconfigured (a reload) only between those steps, never during a rollout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from disposable import configuring, provisioning
from disposable.console import at_lowest_cpu_priority, fmt_seconds, say, table
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.fleet.haproxy import RuntimeApi
from disposable.hosts import ansible, health
from disposable.hosts.contract import Contract
from disposable.hosts.inventory import load_contract
from disposable.local import lxd
from disposable.proof.verify import verify

# The soft CPU share of a host while it is configured (local cloud only; see above).
BUILDING_CPU_ALLOWANCE = "5%"
# ... and its hard cap, in CPUs: the serving hosts' requests find a CPU idle more often.
BUILDING_CPU_CAP = 0.5


@dataclass
class HostSteps:
    """Seconds each step of one host's replacement took."""

    host: str
    steps: dict[str, float] = field(default_factory=dict)
    failed: str = ""

    def timed(self, name: str, step: Callable[[], object]) -> None:
        start = time.monotonic()
        try:
            step()
        except BaseException:
            self.failed = name
            raise
        finally:
            self.steps[name] = time.monotonic() - start


STEPS = ("drain", "replace", "configure", "verify", "ready")


@contextlib.contextmanager
def building(env: Environment, hosts: list[str]) -> Iterator[None]:
    """While `hosts` are configured and verified they, and this machine's commands that
    configure and verify them, yield the CPU to the hosts serving (local cloud only): a
    soft share and a cap of half a CPU for the hosts, nice 19 for the commands. Set and
    removed within this step, so Terraform never sees it; removed on failure too."""
    if not env.is_local:
        yield
        return
    for host in hosts:
        lxd.lxc("config", "set", host, "limits.cpu.allowance", BUILDING_CPU_ALLOWANCE)
        lxd.set_cpu_quota(host, BUILDING_CPU_CAP)
    try:
        with at_lowest_cpu_priority(), ansible.with_strategy("linear"):  # see the module's docstring
            yield
    finally:
        for host in hosts:
            lxd.lxc("config", "unset", host, "limits.cpu.allowance", check=False)  # LXD lifts the cap too
            lxd.set_cpu_quota(host, None)  # whatever LXD did


def show(rows: list[HostSteps]) -> None:
    cells = []
    for row in rows:
        cells.append(
            [row.host]
            + [fmt_seconds(row.steps[s]) if s in row.steps else "-" for s in STEPS]
            + [fmt_seconds(sum(row.steps.values())), f"FAILED at {row.failed}" if row.failed else "ok"]
        )
    say("Rolling rebuild:\n" + table(["host", *STEPS, "total", "result"], cells))


def rolling_rebuild(env: Environment, variables: Mapping[str, str], frozen: bool = False) -> list[HostSteps]:
    """Replace every inference host, one at a time, behind the front door."""
    contract = load_contract(env.name)
    api = RuntimeApi.of(env.name, contract)
    hosts = contract.in_group("inference")
    if len(hosts) < 2:
        raise DisposableError(
            f"A rolling rebuild needs at least 2 inference hosts (environment {env.name} has {len(hosts)}): "
            "with one, replacing it is an outage.",
            "`invoke scale 2` first, or `invoke rebuild` for a plain rebuild.",
        )
    configuring.prepare_inputs(frozen, configuring.devices_in_use(env.name))
    rows: list[HostSteps] = []
    try:
        for host in hosts:
            row = HostSteps(host.name)
            rows.append(row)
            say(f"\n=== rolling rebuild: {host.name} ({len(rows)}/{len(hosts)}) ===")
            row.timed("drain", lambda h=host.name: drain(api, h))
            row.timed("replace", lambda h=host.name: provisioning.provision(env, variables, replace=[h]))
            with building(env, [host.name]):
                row.timed("configure", lambda h=host.name: configuring.configure(env, limit=h, frozen=frozen))
                row.timed("verify", lambda h=host.name: verify(env.name, limit=h))
            row.timed("ready", lambda h=host.name: readmit(api, h))
    finally:
        show(rows)
    return rows


def drain(api: RuntimeApi, host: str) -> None:
    api.set_state(host, "drain")
    waited = api.wait_drained(host)
    api.set_state(host, "maint")
    say(f"Fleet: {host} drained in {fmt_seconds(waited)} and in maintenance")


def readmit(api: RuntimeApi, host: str) -> None:
    api.set_state(host, "ready")
    waited = api.wait_up(host)
    say(f"Fleet: {host} back in rotation ({fmt_seconds(waited)} of health checks)")


def scale(env: Environment, count: int, frozen: bool = False) -> Contract:
    """Grow or shrink the inference hosts to `count`, behind the front door."""
    if count < 1:
        raise DisposableError(f"scale {count}: at least one inference host is needed.")
    contract = load_contract(env.name)
    api = RuntimeApi.of(env.name, contract)
    current = sorted(contract.in_group("inference"), key=host_number)
    if count == len(current):
        say(f"Fleet: already {count} inference host(s)")
        return contract
    variables = {"host_count": str(count)}
    if count > len(current):
        known = {h.name for h in current}
        contract = provisioning.provision(env, variables)
        added = [h.name for h in contract.in_group("inference") if h.name not in known]
        say(f"Fleet: configuring {', '.join(added)} before the load balancer hears of them")
        with building(env, added):
            configuring.configure(env, limit=",".join(added), frozen=frozen)
            for name in added:
                verify(env.name, limit=name)
        health.wait_ready(load_contract(env.name))
        configuring.configure(env, limit="lb", frozen=frozen)  # reload: the new servers, health-checked
        for name in added:
            say(f"Fleet: {name} in rotation after {fmt_seconds(api.wait_up(name))} of health checks")
        return contract
    removed = [h.name for h in current[count:]]
    for name in removed:
        drain(api, name)
    contract = provisioning.provision(env, variables)
    configuring.configure(env, limit="lb", frozen=frozen)  # reload without the removed servers
    say(f"Fleet: removed {', '.join(removed)}; {count} inference host(s) serve")
    return contract


def host_number(host: object) -> int:
    """dml-local-10 after dml-local-9 (Terraform removes the highest numbers first)."""
    suffix = str(getattr(host, "name", "")).rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0
