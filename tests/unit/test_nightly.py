"""Nightly: destroy and the janitor run even after a failure; history and report; the janitor
only ever selects old, project-labelled containers. (Stages are replaced by recorders here;
the real stages are covered by the integration suite.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from disposable import janitor, nightly
from disposable.environments import get_environment
from disposable.errors import DisposableError
from disposable.lxd import ENV_LABEL


def test_destroy_and_janitor_run_after_a_failed_configure(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def failing_configure(env: object) -> None:
        calls.append("configure")
        raise DisposableError("ansible failed")

    monkeypatch.setattr(nightly.provisioning, "destroy", lambda env: calls.append("destroy"))
    monkeypatch.setattr(nightly.provisioning, "provision", lambda env, v, zones: calls.append("provision"))
    monkeypatch.setattr(nightly.configuring, "configure", failing_configure)
    monkeypatch.setattr(nightly, "verify", lambda env: calls.append("verify"))
    monkeypatch.setattr(nightly.janitor, "sweep_local", lambda hours: calls.append(f"janitor {hours:g}h"))

    assert nightly.nightly(get_environment("local"), {}, janitor_max_age_hours=6) is False
    assert calls == ["destroy", "provision", "configure", "destroy", "janitor 6h"]

    record = json.loads((state_dir / "local" / "history.jsonl").read_text().splitlines()[-1])
    assert record["title"] == "nightly" and record["succeeded"] is False
    assert [s["status"] for s in record["stages"]] == ["ok", "ok", "failed", "skipped", "ok", "ok"]
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
