"""Nightly: destroy and the janitor run even after a failure; history and report; the janitor
only ever selects old, project-labelled containers. (Stages are replaced by recorders here;
the real stages are covered by the integration suite.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from disposable import rebuilding
from disposable.environments import get_environment
from disposable.errors import DisposableError
from disposable.local import janitor
from disposable.local.lxd import ENV_LABEL
from disposable.proof import nightly


def test_destroy_and_janitor_run_after_a_failed_configure(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def failing_configure(env: object, frozen: bool) -> None:
        calls.append("configure")
        raise DisposableError("ansible failed")

    _fake_inputs(monkeypatch, calls)
    monkeypatch.setattr(nightly.provisioning, "destroy", lambda env, **_: calls.append("destroy"))
    monkeypatch.setattr(nightly.provisioning, "provision", lambda env, v, zones: calls.append("provision"))
    monkeypatch.setattr(rebuilding.configuring, "configure", failing_configure)
    monkeypatch.setattr(rebuilding, "verify", lambda env: calls.append("verify"))
    monkeypatch.setattr(nightly.janitor, "sweep_local", lambda hours: calls.append(f"janitor {hours:g}h"))

    assert nightly.nightly(get_environment("local"), {}, janitor_max_age_hours=6) is False
    assert calls == ["inputs (frozen)", "destroy", "provision", "configure", "destroy", "janitor 6h"]

    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    assert record["title"] == "nightly" and record["succeeded"] is False
    assert [s["status"] for s in record["stages"]] == [
        "ok",
        "ok",
        "ok",
        "failed",
        "skipped",
        "skipped",
        "skipped",
        "ok",
        "ok",
    ]
    assert [s["name"] for s in record["stages"]][5:7] == ["drift", "fingerprint"]
    assert record["apt_lock"] == {"hash": "c0ffee000000", "stale": False}
    report = (state_dir / "local" / "reports" / "nightly.md").read_text()
    assert "**FAILED**" in report and "destroy (always)" in report


def _instance(name: str, hours_old: float, labelled: bool, now: datetime) -> dict[str, object]:
    created = (now - timedelta(hours=hours_old)).isoformat().replace("+00:00", "Z")
    return {"name": name, "created_at": created, "config": {ENV_LABEL: "local"} if labelled else {}}


def test_janitor_selects_only_old_labelled_containers() -> None:
    now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    instances = [
        _instance("dml-local-1", 30, True, now),
        _instance("dml-local-2", 1, True, now),
        _instance("someone-elses", 300, False, now),
    ]
    assert janitor.expired(instances, timedelta(hours=12), now) == ["dml-local-1"]


def _fake_inputs(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    """The inputs stage (apt lock, store, image) without the store: the nightly runs it frozen."""

    def prepare(env: object, facts: rebuilding.RunFacts, frozen: bool) -> None:
        calls.append("inputs (frozen)" if frozen else "inputs")
        facts.apt_lock = {"hash": "c0ffee000000", "stale": False}

    monkeypatch.setattr(rebuilding, "prepare_inputs", prepare)


def _fake_rebuild(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    _fake_inputs(monkeypatch, calls)
    monkeypatch.setattr(nightly.provisioning, "destroy", lambda env, **_: calls.append("destroy"))
    monkeypatch.setattr(nightly.provisioning, "provision", lambda env, v, zones: calls.append("provision"))
    monkeypatch.setattr(rebuilding.configuring, "configure", lambda env, frozen: calls.append("configure"))
    monkeypatch.setattr(rebuilding, "verify", lambda env: calls.append("verify"))
    monkeypatch.setattr(nightly.janitor, "sweep_local", lambda hours: calls.append("janitor"))


def test_drift_after_a_rebuild_fails_the_nightly(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from disposable.proof.drift import DriftReport

    calls: list[str] = []
    _fake_rebuild(monkeypatch, calls)
    drifted = DriftReport(configuration={"dml-local-1": ["base : Configure sshd"]})
    monkeypatch.setattr(nightly.drift, "detect", lambda env: drifted)
    assert nightly.nightly(get_environment("local"), {}) is False
    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    stages = {s["name"]: s for s in record["stages"]}
    assert stages["drift"]["status"] == "failed" and "base : Configure sshd" in stages["drift"]["detail"]
    assert stages["fingerprint"]["status"] == "skipped"
    assert record["drift"] == {"clean": False, "items": ["dml-local-1: base : Configure sshd"]}
    assert calls[-2:] == ["destroy", "janitor"]


def test_same_commit_different_hosts_fails_the_fingerprint_stage(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from disposable.proof.drift import DriftReport
    from disposable.proof.fingerprint import Fingerprint, Recorded

    calls: list[str] = []
    _fake_rebuild(monkeypatch, calls)
    monkeypatch.setattr(nightly.drift, "detect", lambda env: DriftReport())
    before = Fingerprint("t0", {"h": {"packages": {"curl": "1"}}}, "c" * 40)
    after = Fingerprint("t1", {"h": {"packages": {"curl": "2"}}}, "c" * 40)
    recorded = Recorded(after, before, ["h: packages.curl: 1 -> 2"])
    taken: list[bool] = []

    def record(env: str, baseline: bool = False) -> Recorded:
        taken.append(baseline)
        return recorded

    monkeypatch.setattr(rebuilding.fingerprint, "record", record)
    assert nightly.nightly(get_environment("local"), {}) is False
    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    assert record["fingerprint"]["hash"] == after.hash
    assert record["fingerprint_changes"] == ["h: packages.curl: 1 -> 2"]
    assert [s["status"] for s in record["stages"] if s["name"] == "fingerprint"] == ["failed"]

    # A new commit may change the hosts: reported, not failed.
    monkeypatch.setattr(
        rebuilding.fingerprint,
        "record",
        lambda env, baseline=False: Recorded(after, Fingerprint("t0", before.hosts, "d" * 40), ["x"]),
    )
    assert nightly.nightly(get_environment("local"), {}) is True
    assert taken == [True], "a nightly's fingerprint, taken after verify, is the drift baseline"


def test_gcp_nightly_sweeps_gcp_with_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    swept: list[tuple[str, str, float]] = []
    monkeypatch.setattr(nightly.gcp_janitor, "sweep_gcp", lambda p, e, h: swept.append((p, e, h)))
    name, stage = nightly.janitor_stage(get_environment("gcp"), {"project_id": "dml-prod-123"}, 6)
    stage()
    assert name == "janitor" and swept == [("dml-prod-123", "gcp", 6)]


@pytest.mark.parametrize(
    "failure",
    [
        __import__("subprocess").TimeoutExpired(["terraform", "apply"], 600),
        __import__("json").JSONDecodeError("Expecting value", "", 0),
        OSError(28, "No space left on device"),
        RuntimeError("a bug"),
    ],
    ids=["subprocess timeout", "JSON error", "full disk", "any exception"],
)
def test_destroy_and_janitor_run_after_any_exception(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    calls: list[str] = []
    _fake_rebuild(monkeypatch, calls)

    def provision(env: object, variables: object, zones: object) -> None:
        calls.append("provision")
        raise failure

    monkeypatch.setattr(nightly.provisioning, "provision", provision)
    assert nightly.nightly(get_environment("local"), {}) is False
    assert calls[-2:] == ["destroy", "janitor"], calls
    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    failed = next(s for s in record["stages"] if s["status"] == "failed")
    assert failed["name"] == "provision" and type(failure).__name__ in failed["detail"]


def test_ctrl_c_still_destroys_runs_the_janitor_writes_the_record_then_stops(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    _fake_rebuild(monkeypatch, calls)

    def configure(env: object, frozen: bool) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rebuilding.configuring, "configure", configure)
    with pytest.raises(KeyboardInterrupt):
        nightly.nightly(get_environment("local"), {})
    assert calls[-2:] == ["destroy", "janitor"], calls
    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    assert record["succeeded"] is False
    assert any(s["detail"] == "interrupted (KeyboardInterrupt)" for s in record["stages"])


def test_a_failing_fact_gatherer_does_not_lose_the_record(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _fake_rebuild(monkeypatch, calls)

    def broken_versions(env: object) -> dict[str, str]:
        raise OSError("terraform vanished")

    monkeypatch.setattr(rebuilding, "tool_versions", broken_versions)
    nightly.nightly(get_environment("local"), {})
    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    assert record["extras_error"] == "OSError: terraform vanished"
