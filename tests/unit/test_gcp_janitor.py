"""The GCP janitor: which instances and disks it selects, the gcloud command lines it runs,
dry run, and its errors.

GCP cannot exist on this machine (no project, no credentials, no network), so gcloud is
faked: the selection runs on recorded `gcloud compute instances|disks list --format=json`
output (tests/unit/data/gcloud-*.json), the sweep runs with the module's gcloud runner
replaced by a recorder, and the runner itself runs against a fake `gcloud` script on PATH.
The recorded listings deliberately include resources the list filter would not return
(unlabelled, labelled by someone else), so the selection's own guard is what is tested.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from disposable.errors import DisposableError
from disposable.gcp import janitor as gcp_janitor
from disposable.gcp.janitor import GcpResource

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=12)
PROJECT = "my-dml-project"


def _listing(group: str) -> list[dict[str, Any]]:
    return json.loads((DATA / f"gcloud-{group}.json").read_text())


def test_selects_only_old_project_labelled_instances() -> None:
    assert gcp_janitor.expired_gcp(_listing("instances"), MAX_AGE, NOW) == [
        GcpResource(
            "instances", "dml-gcp-us-central1-a-1", "us-central1-a", datetime(2026, 11, 26, 3, 17, 42, tzinfo=UTC)
        )
    ]
    # Not selected: dml-gcp-us-central1-b-1 (under 3 h old), ml-training-box (no labels),
    # legacy-inference-vm (old created label but no app label), dml-gcp-us-central1-c-1
    # (unparseable created label), dml-gcp-us-central1-f-1 (no created label).


def test_selects_only_old_zonal_project_labelled_disks() -> None:
    selected = gcp_janitor.expired_gcp(_listing("disks"), MAX_AGE, NOW)

    # Not selected: the fresh boot disk, scratch-data (unlabelled), the regional disk (no zone).
    assert [(d.group, d.zone, d.name) for d in selected] == [("disks", "us-central1-a", "dml-gcp-us-central1-a-2")]


def test_only_resources_older_than_max_age_are_selected() -> None:
    instances = _listing("instances")  # dml-gcp-us-central1-b-1 is exactly 2 h 45 min old at NOW

    assert [r.name for r in gcp_janitor.expired_gcp(instances, timedelta(hours=2, minutes=44), NOW)] == [
        "dml-gcp-us-central1-a-1",
        "dml-gcp-us-central1-b-1",
    ]
    assert [r.name for r in gcp_janitor.expired_gcp(instances, timedelta(hours=2, minutes=45), NOW)] == [
        "dml-gcp-us-central1-a-1"
    ]
    assert gcp_janitor.expired_gcp(instances, timedelta(days=30), NOW) == []


def test_unlabelled_resources_are_never_selected_however_old() -> None:
    unlabelled = [r for r in _listing("instances") + _listing("disks") if "app" not in r.get("labels", {})]
    assert {r["name"] for r in unlabelled} == {"ml-training-box", "legacy-inference-vm", "scratch-data"}

    assert gcp_janitor.expired_gcp(unlabelled, timedelta(0), NOW + timedelta(days=3650)) == []


@pytest.mark.parametrize("created", ["2026-11-20t11-20-00", "20261320-000000", "", "yesterday"])
def test_a_bad_created_label_is_skipped(created: str) -> None:
    instance = _listing("instances")[0] | {"labels": {"app": "disposable-ml", "created": created}}

    assert gcp_janitor.created_at(instance["labels"]) is None
    assert gcp_janitor.expired_gcp([instance], timedelta(0), NOW) == []


def test_labelled_resources_it_cannot_judge_are_reported() -> None:
    assert gcp_janitor.unidentifiable(_listing("instances")) == ["dml-gcp-us-central1-c-1", "dml-gcp-us-central1-f-1"]
    assert gcp_janitor.unidentifiable(_listing("disks")) == ["dml-gcp-regional-1"]


class FakeGcloud:
    """Records the argv of every gcloud call; answers `list` with the recorded listings."""

    def __init__(self, fail_on: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, args: Sequence[str]) -> str:
        self.calls.append(list(args))
        if self.fail_on and self.fail_on in args:
            raise DisposableError(f"gcloud {' '.join(args)} failed (exit 1):\nERROR: resource is in use")
        if args[2] == "list":
            return json.dumps(_listing(args[1]))
        return ""


def _list_argv(group: str) -> list[str]:
    return [
        "compute",
        group,
        "list",
        "--project",
        PROJECT,
        "--filter=labels.app=disposable-ml AND labels.environment=gcp",
        "--format=json",
    ]


def test_sweep_lists_then_deletes_instances_before_disks(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGcloud()
    monkeypatch.setattr(gcp_janitor, "gcloud", fake)

    selected = gcp_janitor.sweep_gcp(PROJECT, "gcp", 12, now=NOW)

    assert [r.name for r in selected] == ["dml-gcp-us-central1-a-1", "dml-gcp-us-central1-a-2"]
    assert fake.calls == [
        _list_argv("instances"),
        ["compute", "instances", "delete", "dml-gcp-us-central1-a-1"]
        + ["--project", PROJECT, "--zone", "us-central1-a", "--quiet"],
        _list_argv("disks"),
        [
            "compute",
            "disks",
            "delete",
            "dml-gcp-us-central1-a-2",
            "--project",
            PROJECT,
            "--zone",
            "us-central1-a",
            "--quiet",
        ],
    ]


def test_dry_run_lists_and_prints_but_deletes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeGcloud()
    monkeypatch.setattr(gcp_janitor, "gcloud", fake)

    selected = gcp_janitor.sweep_gcp(PROJECT, "gcp", 12, dry_run=True, now=NOW)

    assert len(selected) == 2
    assert fake.calls == [_list_argv("instances"), _list_argv("disks")]
    out = capsys.readouterr().out
    assert (
        "would run: gcloud compute instances delete dml-gcp-us-central1-a-1 "
        "--project my-dml-project --zone us-central1-a --quiet"
    ) in out
    assert "would remove 2 resource(s) older than 12 h" in out
    assert "dml-gcp-us-central1-c-1 is labelled app=disposable-ml but has no usable created label" in out


def test_a_failed_delete_is_reported_after_the_others_are_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGcloud(fail_on="dml-gcp-us-central1-a-1")
    monkeypatch.setattr(gcp_janitor, "gcloud", fake)

    with pytest.raises(DisposableError) as raised:
        gcp_janitor.sweep_gcp(PROJECT, "gcp", 12, now=NOW)

    assert fake.calls[-1][:4] == ["compute", "disks", "delete", "dml-gcp-us-central1-a-2"]  # still tried
    assert "could not delete 1 resource(s)" in raised.value.message
    assert "ERROR: resource is in use" in raised.value.message


def _fake_gcloud_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A `gcloud` shell script as the only thing on PATH; it records its arguments in argv.txt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv.txt\n{script}\n')
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return tmp_path / "argv.txt"


def test_runner_passes_the_argv_and_parses_the_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = shutil.which("cat")  # resolved before PATH is narrowed to the fake gcloud
    argv_file = _fake_gcloud_on_path(tmp_path, monkeypatch, f"{cat} {DATA / 'gcloud-instances.json'}")

    resources = gcp_janitor.list_resources("instances", PROJECT, "gcp")

    assert [r["name"] for r in resources][:2] == ["dml-gcp-us-central1-a-1", "dml-gcp-us-central1-b-1"]
    assert argv_file.read_text().splitlines() == _list_argv("instances")


def test_runner_failure_carries_gclouds_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "ERROR: (gcloud.compute.instances.list) Some requests did not succeed: - Required 'compute.instances.list'"
    _fake_gcloud_on_path(tmp_path, monkeypatch, f'echo "{stderr}" >&2; exit 1')

    with pytest.raises(DisposableError) as raised:
        gcp_janitor.list_resources("instances", PROJECT, "gcp")

    assert "failed (exit 1)" in raised.value.message and stderr in raised.value.message


def test_missing_gcloud_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no gcloud

    with pytest.raises(DisposableError) as raised:
        gcp_janitor.sweep_gcp(PROJECT, "gcp", 12)

    assert "gcloud" in raised.value.message
    assert "Google Cloud SDK" in raised.value.hint and "nightly workflow" in raised.value.hint
