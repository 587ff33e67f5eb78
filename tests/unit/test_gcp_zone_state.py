"""The GCP zone fallback against Terraform's state: retries keep the hosts that run, a plan
that would destroy a running host elsewhere is refused, a timed-out create is found by its
labels and removed, and a final failure says what is still billed.

GCP cannot exist on this machine (no project, no credentials, no network). Terraform and
gcloud are fakes sharing one tiny simulated project: Terraform "plans" by comparing the
placements variable with its state, "applies" by creating hosts where the zone has capacity
(failing with the recorded provider texts of tests/unit/data/gcp_errors/ where it has none)
and forgets an instance whose create timed out, as the google provider does; gcloud lists
and deletes the project's labelled instances.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from disposable.console import CommandResult
from disposable.environments import Environment, get_environment
from disposable.errors import DisposableError
from disposable.gcp.zone_fallback import (
    Instance,
    Placement,
    ZoneFallbackError,
    destroyed_elsewhere,
    fallback_apply,
    placements_for,
    placements_hcl,
    state_instances,
)

ERRORS = Path(__file__).parent / "data" / "gcp_errors"
PROJECT = "my-dml-project"
PLACEMENT = re.compile(r'\{ zone = "([^"]+)", count = (\d+)(?:, numbers = \[([0-9, ]*)\])? \}')


def _stockout(zone: str) -> str:
    text = (ERRORS / "capacity_two_hosts_one_created.txt").read_text()
    return text.replace("us-central1-a", zone)


@dataclass
class Cloud:
    """The simulated project: instances GCE runs, free GPU capacity per zone, zones whose
    creates time out (GCE creates the instance later, the provider forgets it)."""

    capacity: dict[str, int]
    timeouts: set[str] = field(default_factory=set)
    running: dict[str, str] = field(default_factory=dict)  # name -> zone (what GCE has)
    state: dict[str, str] = field(default_factory=dict)  # name -> zone (what Terraform knows)
    destroyed: list[str] = field(default_factory=list)
    gcloud_calls: list[list[str]] = field(default_factory=list)

    def gcloud(self, args: Sequence[str]) -> str:
        self.gcloud_calls.append(list(args))
        if list(args[:3]) == ["compute", "instances", "list"]:
            assert f"--project={PROJECT}" in args or PROJECT in args
            return json.dumps(
                [
                    {
                        "kind": "compute#instance",
                        "name": name,
                        "zone": f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}",
                        "status": "RUNNING",
                        "labels": {"app": "disposable-ml", "environment": "gcp", "created": "20261201-000000"},
                    }
                    for name, zone in sorted(self.running.items())
                ]
            )
        if list(args[:3]) == ["compute", "instances", "delete"]:
            self.running.pop(args[3])
            self.destroyed.append(args[3])
            return ""
        raise AssertionError(f"unexpected gcloud call {args}")


def _address(name: str) -> str:
    return f'module.hosts.google_compute_instance.host["{name}"]'


@dataclass
class FakeTerraform:
    environment: Environment
    variables: Mapping[str, str]
    cloud: Cloud
    applied: list[str] = field(default_factory=list)  # the placements of every apply
    plans: list[list[str]] = field(default_factory=list)

    def desired(self) -> dict[str, str]:
        wanted: dict[str, str] = {}
        for zone, count, numbers in PLACEMENT.findall(self.variables["placements"]):
            nums = [int(n) for n in numbers.split(",")] if numbers else list(range(1, int(count) + 1))
            wanted.update({f"dml-gcp-{zone}-{n}": zone for n in nums})
        return wanted

    def state_resources(self) -> list[dict[str, Any]]:
        return [
            {
                "address": _address(name),
                "type": "google_compute_instance",
                "values": {"name": name, "zone": zone, "current_status": "RUNNING"},
            }
            for name, zone in sorted(self.cloud.state.items())
        ]

    def planned_changes(self) -> list[str]:
        wanted = self.desired()
        changes = [f"{_address(n)}: delete" for n in sorted(self.cloud.state) if n not in wanted]
        changes += [f"{_address(n)}: create" for n in sorted(wanted) if n not in self.cloud.state]
        self.plans.append(changes)
        return changes

    def apply_unchecked(self) -> CommandResult:
        self.applied.append(self.variables["placements"])
        wanted = self.desired()
        for name in [n for n in self.cloud.state if n not in wanted]:
            del self.cloud.state[name]
            self.cloud.running.pop(name, None)
            self.cloud.destroyed.append(name)
        errors = []
        for name, zone in sorted(wanted.items()):
            if name in self.cloud.state:
                continue
            if zone in self.cloud.timeouts:
                self.cloud.running[name] = zone  # GCE finishes it later; the state forgets it
                errors.append((ERRORS / "timeout_instance_create.txt").read_text())
            elif self.cloud.capacity.get(zone, 0) > 0:
                self.cloud.capacity[zone] -= 1
                self.cloud.state[name] = zone
                self.cloud.running[name] = zone
            else:
                errors.append(_stockout(zone))
        return CommandResult(1 if errors else 0, "\n".join(errors) or "Apply complete!", 1.0)


def _run(cloud: Cloud, zones: list[str], hosts: int) -> tuple[str, FakeTerraform, list[str]]:
    tf = FakeTerraform(get_environment("gcp"), {"project_id": PROJECT}, cloud)
    messages: list[str] = []
    zone = fallback_apply(tf, zones, hosts, messages.append, gcloud=cloud.gcloud, project=PROJECT)
    return zone, tf, messages


def test_a_retry_keeps_the_host_the_failed_zone_did_create() -> None:
    cloud = Cloud(capacity={"us-central1-a": 1, "us-central1-b": 5})
    zone, tf, _ = _run(cloud, ["us-central1-a", "us-central1-b"], hosts=2)
    assert zone == "us-central1-b"
    assert tf.applied == [
        '[{ zone = "us-central1-a", count = 2 }]',
        # a-1 runs: it stays, only the missing host goes to b.
        '[{ zone = "us-central1-a", count = 1 }, { zone = "us-central1-b", count = 1 }]',
    ]
    assert sorted(cloud.state) == ["dml-gcp-us-central1-a-1", "dml-gcp-us-central1-b-1"]
    assert cloud.destroyed == []


def test_the_old_one_zone_placements_would_have_destroyed_it() -> None:
    # What provisioning.apply did before: the retry in b with placements of b only. The plan
    # deletes the running a-1; the guard refuses such a plan before anything is applied.
    cloud = Cloud(capacity={}, state={"dml-gcp-us-central1-a-1": "us-central1-a"})
    tf = FakeTerraform(get_environment("gcp"), {"placements": '[{ zone = "us-central1-b", count = 1 }]'}, cloud)
    existing = state_instances(tf.state_resources())
    assert [i.name for i in destroyed_elsewhere(tf.planned_changes(), existing, "us-central1-b")] == [
        "dml-gcp-us-central1-a-1"
    ]


def test_hosts_running_in_another_zone_are_kept_and_counted() -> None:
    cloud = Cloud(
        capacity={"us-central1-b": 5},
        state={"dml-gcp-us-central1-a-1": "us-central1-a"},
        running={"dml-gcp-us-central1-a-1": "us-central1-a"},
    )
    _, tf, messages = _run(cloud, ["us-central1-b"], hosts=2)
    assert tf.applied == ['[{ zone = "us-central1-a", count = 1 }, { zone = "us-central1-b", count = 1 }]']
    assert all(": delete" not in line for plan in tf.plans for line in plan)
    assert "keeping dml-gcp-us-central1-a-1" in "\n".join(messages)
    assert cloud.destroyed == []


def test_a_plan_that_destroys_a_running_host_elsewhere_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = Cloud(
        capacity={"us-central1-b": 5},
        state={"dml-gcp-us-central1-a-1": "us-central1-a"},
        running={"dml-gcp-us-central1-a-1": "us-central1-a"},
    )
    # Whatever the reason (a hand-edited module, a renamed host), the plan deletes a-1.
    monkeypatch.setattr(
        FakeTerraform, "planned_changes", lambda self: [f"{_address('dml-gcp-us-central1-a-1')}: delete"]
    )
    refused = r"would destroy running host\(s\) in other zones: dml-gcp-us-central1-a-1"
    with pytest.raises(DisposableError, match=refused):
        _run(cloud, ["us-central1-b"], hosts=2)
    assert cloud.destroyed == [] and sorted(cloud.running) == ["dml-gcp-us-central1-a-1"]


def test_a_timed_out_create_is_found_by_its_labels_and_removed() -> None:
    cloud = Cloud(capacity={"us-central1-a": 5}, timeouts={"us-central1-c"})
    zone, tf, messages = _run(cloud, ["us-central1-c", "us-central1-a"], hosts=1)
    assert zone == "us-central1-a"
    # GCE created c-1 after Terraform gave up; Terraform's state never had it.
    delete = ["compute", "instances", "delete", "dml-gcp-us-central1-c-1"]
    assert [c for c in cloud.gcloud_calls if c[:4] == delete] == [
        [*delete, "--project", PROJECT, "--zone", "us-central1-c", "--quiet"]
    ]
    assert cloud.destroyed == ["dml-gcp-us-central1-c-1"]
    assert sorted(cloud.running) == ["dml-gcp-us-central1-a-1"]
    assert "removing dml-gcp-us-central1-c-1 (us-central1-c, RUNNING), created outside the state" in "\n".join(messages)
    list_call = next(c for c in cloud.gcloud_calls if c[:3] == ["compute", "instances", "list"])
    assert "--filter=labels.app=disposable-ml AND labels.environment=gcp" in list_call


def test_the_final_failure_says_what_is_still_running_and_billed() -> None:
    cloud = Cloud(capacity={"us-central1-a": 1}, running={"dml-gcp-us-central1-f-9": "us-central1-f"})
    with pytest.raises(ZoneFallbackError) as caught:
        _run(cloud, ["us-central1-a", "us-central1-b"], hosts=2)
    text = str(caught.value)
    assert "all 2 zone(s) tried failed" in text
    assert "Still running and billed: dml-gcp-us-central1-a-1 (us-central1-a, RUNNING)" in text
    # An instance of this environment that the state does not know is named too.
    assert "dml-gcp-us-central1-f-9 (us-central1-f, RUNNING) NOT in the Terraform state" in text
    assert "Cloud Router and NAT" in text and "invoke destroy --env gcp" in text


def test_without_gcloud_the_state_still_says_what_runs() -> None:
    def broken(args: Sequence[str]) -> str:
        raise DisposableError("The GCP janitor needs the `gcloud` CLI, which is not installed here.")

    cloud = Cloud(capacity={"us-central1-a": 1})
    tf = FakeTerraform(get_environment("gcp"), {}, cloud)
    with pytest.raises(ZoneFallbackError) as caught:
        fallback_apply(tf, ["us-central1-a"], 2, lambda _: None, gcloud=broken, project=PROJECT)
    assert "dml-gcp-us-central1-a-1 (us-central1-a, RUNNING)" in str(caught.value)
    assert "gcloud could not list" in str(caught.value)


def test_placements_for_fills_the_lowest_free_numbers() -> None:
    existing = [
        Instance("dml-gcp-us-central1-a-2", "us-central1-a", "RUNNING"),
        Instance("dml-gcp-us-central1-b-1", "us-central1-b", "TERMINATED"),
    ]
    placements = placements_for(existing, "us-central1-a", 3)
    # Two running hosts are missing (the TERMINATED one is kept but does not count).
    assert placements == [Placement("us-central1-a", (1, 2, 3)), Placement("us-central1-b", (1,))]
    assert placements_for(existing, "us-central1-c", 2) == [
        Placement("us-central1-a", (2,)),
        Placement("us-central1-b", (1,)),
        Placement("us-central1-c", (1,)),
    ]
    assert placements_hcl(placements_for(existing, "us-central1-c", 1)) == (
        '[{ zone = "us-central1-a", count = 1, numbers = [2] }, { zone = "us-central1-b", count = 1 }]'
    )
    with pytest.raises(DisposableError, match="cannot keep"):
        placements_for([Instance("legacy-vm", "us-central1-a", "RUNNING")], "us-central1-b", 1)


def test_the_state_of_a_gcs_backed_root_is_read_with_terraform_show(tmp_path: Path, state_dir: Path) -> None:
    """Terraform.state_resources() only reads a local state file, which a GCS-backed root
    never has: the fallback must ask `terraform show -json` (here a fake engine script)."""
    from disposable.engine.binary import Engine
    from disposable.engine.terraform import Terraform
    from disposable.gcp.zone_fallback import terraform_state

    shown = {
        "values": {
            "root_module": {
                "child_modules": [
                    {
                        "resources": [
                            {
                                "address": _address("dml-gcp-us-central1-a-1"),
                                "mode": "managed",
                                "type": "google_compute_instance",
                                "values": {"name": "dml-gcp-us-central1-a-1", "zone": "us-central1-a"},
                            },
                            {"address": "module.hosts.data.x.y", "mode": "data", "type": "x", "values": {}},
                        ]
                    }
                ]
            }
        }
    }
    (tmp_path / "show.json").write_text(json.dumps(shown))
    engine_script = tmp_path / "terraform"
    engine_script.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/argv\ncat {tmp_path}/show.json\n')
    engine_script.chmod(0o755)
    tf = Terraform(get_environment("gcp"), {}, engine=Engine("terraform", (str(engine_script),), "1.11.4"))
    assert tf.state_resources() == []  # no local file: the engine's own reader sees nothing
    assert [r["address"] for r in terraform_state(tf)] == [_address("dml-gcp-us-central1-a-1")]
    assert (tmp_path / "argv").read_text().split()[1:] == ["show", "-json", "-no-color"]
