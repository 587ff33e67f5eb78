"""The fleet's controller-side parts: reading HAProxy's runtime API answers, the order in
which scaling removes hosts. (Traffic through a real fleet: tests/integration/test_fleet.py.)"""

from __future__ import annotations

import pytest

from disposable.errors import DisposableError
from disposable.fleet import haproxy, rolling
from disposable.hosts.contract import Host

# `show stat` as HAProxy 2.6 prints it (first columns; the runtime API sends them all).
HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act"
)
SHOW_STAT = (
    HEADER
    + """
front_door,FRONTEND,,,3,12,4096,5012,1,2,0,0,0,,,,,OPEN,,
inference,dml-local-1,0,0,2,8,64,1700,1,2,,0,,0,0,0,0,UP,1,1
inference,dml-local-2,1,3,0,7,64,1650,1,2,,0,,0,0,0,0,DRAIN,1,1
inference,dml-local-3,0,0,0,6,64,1660,1,2,,0,,3,0,0,0,DOWN,1,1
inference,BACKEND,1,3,2,12,410,5012,1,2,0,0,,3,0,0,0,UP,3,3
stats,FRONTEND,,,0,1,262,2,1,2,0,0,0,,,,,OPEN,,
"""
)


class FakeApi(haproxy.RuntimeApi):
    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__("local", _host("dml-local-lb-1"))
        self.answers, self.sent = answers, []

    def command(self, command: str) -> str:
        self.sent.append(command)
        return self.answers.get(command, "")


def _host(name: str) -> Host:
    return Host(name, "10.150.77.2", "deploy", 22, ("lb",), "none", 0, "local", f"lxd:{name}", "direct")


def test_show_stat_gives_each_servers_state_sessions_and_queue() -> None:
    servers = FakeApi({"show stat": SHOW_STAT}).servers()
    assert set(servers) == {"dml-local-1", "dml-local-2", "dml-local-3"}
    assert servers["dml-local-1"] == haproxy.ServerState("dml-local-1", "UP", 2, 0, 1)
    assert (servers["dml-local-2"].status, servers["dml-local-2"].queued) == ("DRAIN", 1)
    assert servers["dml-local-3"].status == "DOWN"


def test_drain_waits_for_sessions_and_queue_then_sets_maint(monkeypatch: pytest.MonkeyPatch) -> None:
    drained = SHOW_STAT.replace("inference,dml-local-2,1,3,0,", "inference,dml-local-2,0,3,0,")
    answers = iter([SHOW_STAT, SHOW_STAT, drained])
    api = FakeApi({})
    monkeypatch.setattr(api, "command", lambda c: (api.sent.append(c), next(answers) if c == "show stat" else "")[1])
    monkeypatch.setattr(haproxy.time, "sleep", lambda s: None)
    rolling.drain(api, "dml-local-2")
    assert api.sent[0] == "set server inference/dml-local-2 state drain"
    assert api.sent[-1] == "set server inference/dml-local-2 state maint"
    assert api.sent.count("show stat") == 3, "waited until no session and nothing queued"


def test_a_refusal_from_the_runtime_api_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    api = haproxy.RuntimeApi("local", _host("dml-local-lb-1"))

    class Done:
        returncode, stdout, stderr = 0, "No such server.\n", ""

    monkeypatch.setattr(haproxy.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(DisposableError, match="No such server"):
        api.set_state("dml-local-9", "drain")


def test_scaling_down_removes_the_highest_numbered_hosts_first() -> None:
    names = ["dml-local-10", "dml-local-2", "dml-local-1", "dml-local-9"]
    hosts = sorted((_host(n) for n in names), key=rolling.host_number)
    assert [h.name for h in hosts] == ["dml-local-1", "dml-local-2", "dml-local-9", "dml-local-10"]


def test_a_host_being_configured_yields_the_cpu_and_gets_it_back_also_on_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LXD's soft allowance (cpu.shares 51 vs 1024) while configuring; removed before verify,
    and when configure fails."""
    from disposable.environments import get_environment
    from disposable.fleet import rolling

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(rolling.lxd, "lxc", lambda *a, **k: calls.append(a))

    def failing(env: object, limit: str, frozen: bool) -> None:
        assert calls == [("config", "set", "dml-local-4", "limits.cpu.allowance", "5%"),
                         ("config", "set", "dml-local-5", "limits.cpu.allowance", "5%")]  # fmt: skip
        raise RuntimeError("apt failed")

    monkeypatch.setattr(rolling.configuring, "configure", failing)
    with pytest.raises(RuntimeError):
        rolling.configure_yielding(get_environment("local"), ["dml-local-4", "dml-local-5"], frozen=False)
    assert calls[2:] == [("config", "unset", "dml-local-4", "limits.cpu.allowance"),
                         ("config", "unset", "dml-local-5", "limits.cpu.allowance")]  # fmt: skip


def test_gcp_hosts_are_never_given_lxd_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from disposable.environments import get_environment
    from disposable.fleet import rolling

    monkeypatch.setattr(rolling.lxd, "lxc", lambda *a, **k: pytest.fail(f"lxc {a} on GCP"))
    seen: list[str] = []
    monkeypatch.setattr(rolling.configuring, "configure", lambda env, limit, frozen: seen.append(limit))
    rolling.configure_yielding(get_environment("gcp"), ["dml-gcp-1"], frozen=False)
    assert seen == ["dml-gcp-1"]
