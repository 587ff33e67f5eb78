"""A fleet you can destroy under traffic: 3 inference hosts behind HAProxy, an open-loop
load of 83 requests/s (5,000/minute) on the front door from this machine, and each of the
operations users run while it serves. Real LXD hosts, HAProxy, the service, HTTP.

The inference hosts run without the GPU stack (group no_gpu_stack: the driver and CUDA
are proven by the single-host tests) so that a rebuild of a host takes about a minute.
Figures (requests, failures, p50/p99 per phase) go to .state/local/reports/fleet.json.
On 2 cores more hosts buy availability, not throughput: every host shares the same CPUs.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import REPO, Invoke

from disposable.fleet.haproxy import RuntimeApi
from disposable.fleet.load import Load, Window
from disposable.hosts.inventory import load_contract
from disposable.hosts.rolevars import role_vars

STATE = REPO / ".state" / "local"
FLEET = ("--var", "host_count=3", "--var", 'groups=["inference","no_gpu_stack"]')
FIGURES: list[dict[str, object]] = []
LATENCY_BUDGET_MS = float(role_vars()["inference_service_settings"]["latency_budget_ms"])  # what the hosts run


@pytest.fixture(scope="module")
def load(invoke: Invoke) -> Iterator[Load]:
    assert invoke("destroy")[0] == 0
    assert invoke("provision", *FLEET)[0] == 0
    assert invoke("configure", timeout=1800)[0] == 0
    door = load_contract("local").front_door
    assert door is not None, "the local environment has a front door (lb_count=1)"
    running = Load(door.address, door.port).start()
    try:
        yield running
    finally:
        running.stop()
        (STATE / "reports").mkdir(parents=True, exist_ok=True)
        (STATE / "reports" / "fleet.json").write_text(json.dumps(FIGURES, indent=2))
        print("\nFleet figures:\n" + "\n".join(json.dumps(f) for f in FIGURES))
        invoke("destroy")


def _api() -> RuntimeApi:
    return RuntimeApi.of("local", load_contract("local"))


def _measure(
    load: Load, name: str, action: object, settle: float = 3.0, window: Window | None = None
) -> dict[str, object]:
    window = window or load.phase(name)
    action()  # type: ignore[operator]
    time.sleep(settle)  # the requests sent during the action get their answers
    window.end = time.monotonic()
    figures = load.figures(window)
    FIGURES.append(figures)
    print(f"\n{name}: {figures}")
    return figures


def _instance_ids() -> dict[str, str]:
    return {h.name: h.instance_id for h in load_contract("local").in_group("inference")}


def test_1_steady_state(load: Load) -> None:
    figures = _measure(load, "steady, 3 hosts, 60 s", lambda: time.sleep(60), settle=1)
    assert figures["failed"] == 0
    assert figures["requests"] >= 4000, "83 requests/s for 60 s"


def test_2_rolling_rebuild_under_load(invoke: Invoke, load: Load) -> None:
    steady = FIGURES[0]
    before = _instance_ids()
    figures = _measure(load, "rolling rebuild of 3 hosts", lambda: _ok(invoke("rebuild", "--rolling", timeout=2400)))
    after = _instance_ids()
    ratio = figures["p99_ms"] / steady["p99_ms"]  # type: ignore[operator]
    figures["p99_vs_steady"] = round(ratio, 2)
    print(f"rolling p99 / steady p99: {ratio:.2f}x (issue 12's bar: 2x)")
    assert figures["failed"] == 0
    assert all(after[name] != before[name] for name in before), "every host was replaced"
    assert figures["p99_ms"] <= LATENCY_BUDGET_MS, (figures, steady)  # type: ignore[operator]
    # Issue 12's bar. On 2 shared cores the host being configured yields the CPU to the hosts
    # serving (disposable/fleet/rolling.py: a soft LXD CPU allowance while it is configured).
    assert ratio <= 2.0, (figures, steady)


def test_3_sigterm_one_host(load: Load) -> None:
    def stop_and_start() -> None:
        subprocess.run(["lxc", "exec", "dml-local-2", "--", "systemctl", "stop", "demand-predictor"], check=True)
        subprocess.run(["lxc", "exec", "dml-local-2", "--", "systemctl", "start", "demand-predictor"], check=True)
        _api().wait_up("dml-local-2")

    assert _measure(load, "SIGTERM one host (drain), then start it", stop_and_start)["failed"] == 0


def test_4_kill_9_one_host(load: Load) -> None:
    """Only a request the killed service held when it died may fail: HAProxy retries the
    others (conn-failure, empty-response) and takes the host out of rotation."""
    api = _api()
    observed: dict[str, float] = {}
    kill_window: list[float] = []

    def kill() -> None:
        observed["haproxy_sessions_before"] = api.state("dml-local-3").sessions + api.state("dml-local-3").queued
        kill_window.append(time.monotonic())
        subprocess.run(["lxc", "exec", "dml-local-3", "--", "systemctl", "kill", "-s", "KILL", "demand-predictor"],
                       check=True)  # fmt: skip
        kill_window.append(time.monotonic())
        api.wait_down("dml-local-3", timeout=10)
        observed["out_after"] = time.monotonic() - kill_window[0]
        observed["back_after"] = api.wait_up("dml-local-3", timeout=120)  # systemd restarts it (Restart=on-failure)

    window = load.phase("kill -9 one host's service")
    figures = _measure(load, window.name, kill, window=window)
    killed_from, killed_by = kill_window
    sent = load.between(window.start, window.end)
    # Outstanding while the kill ran: sent before it returned, not yet answered when it began.
    outstanding = [s for s in sent if s.due <= killed_by and s.due + s.latency >= killed_from]
    failed = [s for s in sent if s.status != 200]
    observed["outstanding_during_the_kill"] = len(outstanding)
    print(f"kill -9: {observed}")
    details = [
        f"sent {s.due - killed_from:+.3f} s from the kill, answered after {s.latency:.3f} s: "
        f"status {s.status} {s.error or s.server}"
        for s in failed
    ]
    assert all(s in outstanding for s in failed), (figures, observed, details)
    assert observed["out_after"] <= 3.0, "out of rotation within 3 s"


def test_5_a_host_whose_readyz_is_503_gets_no_traffic(load: Load) -> None:
    api = _api()
    flag = "/run/demand-predictor/not-ready"
    subprocess.run(["lxc", "exec", "dml-local-1", "--", "touch", flag], check=True)
    try:
        api.wait_down("dml-local-1", timeout=10)
        window = load.phase("dml-local-1 not ready (503)")
        time.sleep(15)
        window.end = time.monotonic()
        served = [s for s in load.between(window.start, window.end) if s.server == "dml-local-1"]
        FIGURES.append({**load.figures(window), "served_by_the_not_ready_host": len(served)})
        assert served == []
        assert load.figures(window)["failed"] == 0
    finally:
        subprocess.run(["lxc", "exec", "dml-local-1", "--", "rm", "-f", flag], check=True)
    api.wait_up("dml-local-1")


def test_6_scale_3_to_5_to_3(invoke: Invoke, load: Load) -> None:
    up = _measure(load, "scale 3 -> 5", lambda: _ok(invoke("scale", "5", timeout=1800)))
    assert len(load_contract("local").in_group("inference")) == 5
    down = _measure(load, "scale 5 -> 3", lambda: _ok(invoke("scale", "3", timeout=900)))
    assert len(load_contract("local").in_group("inference")) == 3
    assert up["failed"] == 0 and down["failed"] == 0


def _ok(result: tuple[int, str]) -> None:
    assert result[0] == 0
