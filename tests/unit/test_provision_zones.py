"""provision's zone fallback wiring: each zone gets its own placements, a lock error still stops.
(GCP itself cannot be reached here: terraform apply is replaced by recorded outcomes.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from disposable import provisioning
from disposable.console import CommandResult
from disposable.engine.binary import Engine
from disposable.engine.terraform import Terraform
from disposable.environments import get_environment
from disposable.errors import DisposableError

ERRORS = Path(__file__).parent / "data" / "gcp_errors"
FAKE_ENGINE = Engine("terraform", ("terraform",), "1.11.4")


def _terraform(env: str) -> Terraform:
    return Terraform(get_environment(env), {"project_id": "p"}, engine=FAKE_ENGINE)


def _capacity_error() -> str:
    return next(p.read_text() for p in sorted(ERRORS.glob("*")) if "capacity" in p.name or "exhausted" in p.name)


def test_next_zone_gets_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_apply(self: Terraform) -> CommandResult:
        seen.append(self.variables["placements"])
        ok = "us-central1-b" in self.variables["placements"]
        return CommandResult(0 if ok else 1, "" if ok else _capacity_error(), 1.0)

    monkeypatch.setattr(Terraform, "apply_unchecked", fake_apply)
    # What the state-aware fallback also asks (nothing runs yet; gcloud lists nothing).
    monkeypatch.setattr("disposable.gcp.zone_fallback.terraform_state", lambda tf: [])
    monkeypatch.setattr(Terraform, "planned_changes", lambda self: [])
    monkeypatch.setattr("disposable.gcp.zone_fallback._default_gcloud", lambda args: "[]")
    provisioning.apply(_terraform("gcp"), ["us-central1-a", "us-central1-b"], hosts_per_zone=2)
    assert seen == ['[{ zone = "us-central1-a", count = 2 }]', '[{ zone = "us-central1-b", count = 2 }]']


def test_zones_are_refused_for_the_local_cloud() -> None:
    with pytest.raises(DisposableError, match="single zone"):
        provisioning.apply(_terraform("local"), ["local-a"])


def test_a_retry_never_plans_to_destroy_hosts_running_in_another_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    running = {
        "address": 'module.hosts.google_compute_instance.host["dml-gcp-us-central1-a-1"]',
        "type": "google_compute_instance",
        "values": {"name": "dml-gcp-us-central1-a-1", "zone": "us-central1-a", "current_status": "RUNNING"},
    }
    applied: list[str] = []

    def fake_apply(self: Terraform) -> CommandResult:
        applied.append(self.variables["placements"])
        return CommandResult(0, "Apply complete!", 1.0)

    monkeypatch.setattr("disposable.gcp.zone_fallback.terraform_state", lambda tf: [running])
    monkeypatch.setattr(Terraform, "planned_changes", lambda self: [])
    monkeypatch.setattr(Terraform, "apply_unchecked", fake_apply)
    monkeypatch.setattr("disposable.gcp.zone_fallback._default_gcloud", lambda args: "[]")
    provisioning.apply(_terraform("gcp"), ["us-central1-b"], hosts_per_zone=2)
    # a-1 runs in us-central1-a: it must stay in the placements of the try in us-central1-b.
    assert applied and '{ zone = "us-central1-a", count = 1 }' in applied[0]
