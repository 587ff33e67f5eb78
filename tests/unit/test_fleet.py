"""The fleet's controller-side parts: reading HAProxy's runtime API answers, the order in
which scaling removes hosts. (Traffic through a real fleet: tests/integration/test_fleet.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from disposable import console
from disposable.errors import DisposableError
from disposable.fleet import haproxy, rolling
from disposable.hosts import ansible
from disposable.hosts.contract import Host
from disposable.local import lxd

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


def _allow(host: str) -> tuple[str, ...]:
    return ("config", "set", host, "limits.cpu.allowance", "5%")


def _unset(host: str) -> tuple[str, ...]:
    return ("config", "unset", host, "limits.cpu.allowance")


def _cap(host: str, cpus: float | None) -> tuple[str, str, float | None]:
    return ("cpu cap", host, cpus)


def _rolling_fakes(monkeypatch: pytest.MonkeyPatch, events: list[object], fail_at: str = "") -> None:
    """rolling_rebuild with every outside part recorded in `events` instead of done."""
    from types import SimpleNamespace

    fleet = SimpleNamespace(in_group=lambda group: [_host("dml-local-2"), _host("dml-local-3")])

    def step(name: str) -> object:
        def run(*args: object, **kwargs: object) -> None:
            how = f" ({ansible.strategy_env()['ANSIBLE_STRATEGY']}, nice {console.niceness()})"
            events.append(name + how if name in ("configure", "verify") else name)
            if name == fail_at:
                raise RuntimeError(f"{name} failed")

        return run

    monkeypatch.setattr(rolling, "load_contract", lambda env: fleet)
    monkeypatch.setattr(rolling.RuntimeApi, "of", staticmethod(lambda env, contract: object()))
    monkeypatch.setattr(rolling.lxd, "lxc", lambda *a, **k: events.append(a))
    monkeypatch.setattr(rolling.lxd, "set_cpu_quota", lambda host, cpus: events.append(_cap(host, cpus)))
    monkeypatch.setattr(rolling.configuring, "prepare_inputs", lambda frozen, devices: None)
    monkeypatch.setattr(rolling.configuring, "devices_in_use", lambda env: [])
    monkeypatch.setattr(rolling.configuring, "configure", step("configure"))
    monkeypatch.setattr(rolling, "verify", step("verify"))
    monkeypatch.setattr(rolling, "drain", step("drain"))
    monkeypatch.setattr(rolling, "readmit", step("ready"))
    monkeypatch.setattr(rolling.provisioning, "provision", step("replace"))


def test_a_host_being_rebuilt_yields_the_cpu_while_configured_and_verified_and_gets_it_back_before_traffic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LXD's soft allowance (cpu.shares 51 vs 1024) and a hard cap of half a CPU from
    configure to verify, Ansible's own strategy and nice 19 for this machine's commands
    that configure and verify it; all removed before the host is readmitted."""
    from disposable.environments import get_environment

    monkeypatch.delenv(ansible.STRATEGY_SETTING, raising=False)
    events: list[object] = []
    _rolling_fakes(monkeypatch, events)
    rolling.rolling_rebuild(get_environment("local"), {})
    building = ("configure (linear, nice 19)", "verify (linear, nice 19)")
    assert events == [
        *("drain", "replace", _allow("dml-local-2"), _cap("dml-local-2", 0.5), *building),
        *(_unset("dml-local-2"), _cap("dml-local-2", None), "ready"),
        *("drain", "replace", _allow("dml-local-3"), _cap("dml-local-3", 0.5), *building),
        *(_unset("dml-local-3"), _cap("dml-local-3", None), "ready"),
    ]
    assert console.niceness() == 0
    assert ansible.strategy_env()["ANSIBLE_STRATEGY"] == "mitogen_linear", "Mitogen again for the rest"


@pytest.mark.parametrize("failing", ["configure", "verify"])
def test_a_host_gets_the_cpu_back_when_its_configure_or_verify_fails(
    monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    from disposable.environments import get_environment

    events: list[object] = []
    _rolling_fakes(monkeypatch, events, fail_at=failing)
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        rolling.rolling_rebuild(get_environment("local"), {})
    assert events[-3:] == [f"{failing} (linear, nice 19)", _unset("dml-local-2"), _cap("dml-local-2", None)]
    assert console.niceness() == 0, "the priority is back for what runs next"
    assert "ready" not in events, "the first host failed: it stays out of rotation and the rest is not touched"


def test_gcp_hosts_are_never_given_lxd_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from disposable.environments import get_environment

    monkeypatch.setattr(rolling.lxd, "lxc", lambda *a, **k: pytest.fail(f"lxc {a} on GCP"))
    monkeypatch.setattr(rolling.lxd, "set_cpu_quota", lambda *a: pytest.fail(f"CPU cap {a} on GCP"))
    with rolling.building(get_environment("gcp"), ["dml-gcp-1"]):
        assert console.niceness() == 0, "on GCP each host has its own VM: nothing to yield to"


def _cgroup_v1(root: Path, name: str) -> Path:
    group = root / "cpu" / f"lxc.payload.{name}"
    group.mkdir(parents=True)
    (group / "cpu.cfs_period_us").write_text("100000\n")
    (group / "cpu.cfs_quota_us").write_text("-1\n")
    return group


def test_the_cpu_cap_is_written_to_the_containers_cgroup_v1_and_lifted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(lxd, "CGROUP_ROOT", tmp_path)
    group = _cgroup_v1(tmp_path, "dml-local-2")
    assert lxd.set_cpu_quota("dml-local-2", 0.5)
    assert (group / "cpu.cfs_quota_us").read_text() == "50000"
    assert lxd.set_cpu_quota("dml-local-2", None)
    assert (group / "cpu.cfs_quota_us").read_text() == "-1"


def test_the_cpu_cap_on_cgroup_v2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(lxd, "CGROUP_ROOT", tmp_path)
    group = tmp_path / "lxc.payload.dml-local-2"
    group.mkdir()
    (group / "cpu.max").write_text("max 100000\n")
    assert lxd.set_cpu_quota("dml-local-2", 0.5)
    assert (group / "cpu.max").read_text() == "50000 100000"
    assert lxd.set_cpu_quota("dml-local-2", None)
    assert (group / "cpu.max").read_text() == "max 100000"


def test_a_container_without_a_cgroup_where_lxd_puts_it_is_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(lxd, "CGROUP_ROOT", tmp_path)
    assert not lxd.set_cpu_quota("dml-local-9", 0.5)
    warning = capsys.readouterr().err
    assert "dml-local-9" in warning and "without the CPU cap" in warning
