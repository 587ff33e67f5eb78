"""`invoke load`: the open-loop load of the fleet tests, against a deployed environment's
front door (its load balancer), or its one directly reachable inference host when it has
no front door. Figures per server that answered (HAProxy's X-Served-By), progress every
10 s, and a record in .state/<env>/reports/load.json with the commit it ran from.

It measures the whole path a client takes (load balancer, service, model), from this
machine; on the local cloud every host shares this machine's cores with the load
generator, so the figures describe the setup, not a GCP fleet.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from disposable.console import say, table
from disposable.errors import DisposableError
from disposable.fleet.load import Load, Window
from disposable.hosts.contract import Contract
from disposable.hosts.health import SERVICE_PORT
from disposable.hosts.inventory import load_contract
from disposable.paths import state_dir
from disposable.proof.fingerprint import code_version

MAX_RATE = 2000.0  # requests/s: beyond this the generator itself (one event loop) lags
MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Target:
    address: str
    port: int
    what: str  # "front door" or the host's name


def target(contract: Contract) -> Target:
    """The front door, else the one directly reachable inference host; never a guess."""
    door = contract.front_door
    if door is not None:
        return Target(door.address, door.port, "front door")
    direct = [h for h in contract.in_group("inference") if h.connection == "direct"]
    if len(direct) == 1:
        return Target(direct[0].address, SERVICE_PORT, direct[0].name)
    raise DisposableError(
        f"Environment {contract.environment} has no front door and {len(direct)} directly reachable "
        "inference hosts: nothing to load (or no single one to choose).",
        "Provision a load balancer (lb_count=1), or load a GCP fleet through its load balancer's address.",
    )


def check_arguments(rate: float, seconds: float) -> None:
    if not 0 < rate <= MAX_RATE:
        raise DisposableError(f"--rate {rate:g}: requests per second must be above 0 and at most {MAX_RATE:g}.")
    if not 0 < seconds <= MAX_SECONDS:
        raise DisposableError(f"--seconds {seconds:g}: the duration must be above 0 and at most {MAX_SECONDS:g}.")


def run(env: str, rate: float, seconds: float) -> dict[str, Any]:
    """Load the environment for `seconds` at `rate` requests/s (Poisson arrivals); an error
    when any request failed."""
    check_arguments(rate, seconds)
    where = target(load_contract(env))
    say(f"Load: {rate:g} requests/s for {seconds:g} s on {where.what} {where.address}:{where.port} (open loop)")
    load = Load(where.address, where.port, rate=rate).start()
    window = load.phase(f"{rate:g}/s for {seconds:g} s")
    try:
        deadline = window.start + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(10.0, left))
            so_far = load.figures(window)
            say(f"Load: {time.monotonic() - window.start:5.0f} s  {so_far['requests']} requests, "
                f"{so_far['failed']} failed, p99 {so_far['p99_ms']} ms")  # fmt: skip
        window.end = time.monotonic()
        time.sleep(2.0)  # the last requests get their answers (or their timeouts)
    finally:
        load.stop()
    figures = summarize(load, window.start, window.end, rate, seconds, where)
    show(figures)
    reports = state_dir(env) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "load.json").write_text(json.dumps(figures, indent=2))
    say(f"Load: figures in {reports / 'load.json'}")
    if figures["failed"]:
        raise DisposableError(
            f"{figures['failed']} of {figures['requests']} requests failed "
            f"(statuses {figures['statuses']}, errors {figures['errors']}).",
            "`invoke status` shows which hosts are in rotation; `invoke verify` checks them.",
        )
    return figures


def summarize(load: Load, start: float, end: float, rate: float, seconds: float, where: Target) -> dict[str, Any]:
    figures: dict[str, Any] = dict(load.figures(Window("load", start, end)))
    served = Counter(s.server or "(none)" for s in load.between(start, end) if s.status == 200)
    figures.update(
        target=f"{where.what} {where.address}:{where.port}",
        rate_per_s=rate,
        requested_seconds=seconds,
        served_by=dict(sorted(served.items())),
        commit=code_version(),
        note="p50/p99 over the answered (200) requests; latency from the scheduled send time",
    )
    return figures


def show(figures: dict[str, Any]) -> None:
    rows = [[str(figures["requests"]), str(figures["failed"]), str(figures["p50_ms"]), str(figures["p99_ms"]),
             ", ".join(f"{k} {v}" for k, v in figures["served_by"].items())]]  # fmt: skip
    say(table(["requests", "failed", "p50 ms", "p99 ms", "served by"], rows))
