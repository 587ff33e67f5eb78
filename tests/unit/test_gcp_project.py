"""Where the GCP project and the nightly's zones come from: the IAP ProxyCommand names the
environment's project, the janitor finds it after the final destroy, and the GCP nightly
runs its zone fallback. (No GCP here: gcloud, Terraform and the stages are fakes.)"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from disposable import rebuilding
from disposable.environments import get_environment
from disposable.gcp import project as gcp_project
from disposable.hosts.contract import parse_outputs
from disposable.hosts.inventory import build
from disposable.proof import nightly


@pytest.fixture
def no_ambient_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> Path:
    """No project from this machine: no TF_VAR_project_id, no real terraform.tfvars."""
    monkeypatch.delenv("TF_VAR_project_id", raising=False)
    monkeypatch.delenv(gcp_project.ZONES_ENV, raising=False)
    tfvars = tmp_path / "terraform.tfvars"
    monkeypatch.setattr(gcp_project, "tfvars_file", lambda env: tfvars)
    return tfvars


def _gcp_outputs(outputs: dict[str, Any], project: str | None) -> dict[str, Any]:
    data = json.loads(json.dumps(outputs))
    data["environment"]["value"] = "gcp"
    if project:
        data["project_id"] = {"sensitive": False, "type": "string", "value": project}
    return data


def _proxy(outputs: dict[str, Any]) -> str:
    args = build(parse_outputs(outputs))["_meta"]["hostvars"]["gpu-1"]["ansible_ssh_common_args"]
    return next(a for a in shlex.split(args) if a.startswith("ProxyCommand="))


def test_the_iap_tunnel_names_the_project_terraform_used(
    outputs: dict[str, Any], state_dir: Path, no_ambient_project: Path
) -> None:
    gcp = _gcp_outputs(outputs, "dml-prod-123")
    (state_dir / "gcp").mkdir(parents=True)
    (state_dir / "gcp" / "outputs.json").write_text(json.dumps(gcp))
    assert _proxy(gcp) == (
        "ProxyCommand=gcloud compute start-iap-tunnel gpu-1 %p --listen-on-stdin --zone=us-central1-a"
        " --project=dml-prod-123 --verbosity=warning"
    )


def test_the_extra_output_keeps_the_contract_backward_compatible(outputs: dict[str, Any]) -> None:
    with_project = _gcp_outputs(outputs, "dml-prod-123")
    assert parse_outputs(with_project) == parse_outputs(_gcp_outputs(outputs, None))


def test_without_outputs_the_project_comes_from_tfvars_then_variables_then_provision_then_env(
    state_dir: Path, no_ambient_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gcp_project.project_for("gcp") == ""
    monkeypatch.setenv("TF_VAR_project_id", "from-environment")
    assert gcp_project.project_for("gcp") == "from-environment"
    (state_dir / "gcp").mkdir(parents=True)
    (state_dir / "gcp" / "provision-vars.json").write_text(json.dumps({"project_id": "from-provision"}))
    assert gcp_project.project_for("gcp") == "from-provision"
    assert gcp_project.project_for("gcp", {"project_id": "from-the-var"}) == "from-the-var"
    no_ambient_project.write_text('region = "us-central1"\nproject_id = "from-tfvars" # mine\n')
    # terraform.tfvars beats TF_VAR_* in Terraform itself, so it is where apply would go.
    assert gcp_project.project_for("gcp", {"project_id": "from-the-var"}) == "from-tfvars"
    (state_dir / "gcp" / "outputs.json").write_text(json.dumps({"project_id": {"value": "from-outputs"}}))
    assert gcp_project.project_for("gcp", {"project_id": "from-the-var"}) == "from-outputs"


def test_a_local_host_has_no_proxy_command(outputs: dict[str, Any], state_dir: Path) -> None:
    args = build(parse_outputs(outputs))["_meta"]["hostvars"]["dml-local-1"]["ansible_ssh_common_args"]
    assert "ProxyCommand" not in args and "--project" not in args


def test_the_janitor_takes_the_project_from_tfvars(no_ambient_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_ambient_project.write_text('project_id = "dml-tfvars-1"\n')
    swept: list[tuple[str, str, float]] = []
    monkeypatch.setattr(nightly.gcp_janitor, "sweep_gcp", lambda p, e, h: swept.append((p, e, h)))
    _, stage = nightly.janitor_stage(get_environment("gcp"), {}, 6)
    stage()
    assert swept == [("dml-tfvars-1", "gcp", 6)]


def test_the_janitor_refuses_to_guess_a_project(no_ambient_project: Path) -> None:
    _, stage = nightly.janitor_stage(get_environment("gcp"), {}, 6)
    with pytest.raises(nightly.DisposableError, match="does not know the project"):
        stage()


def test_the_gcp_nightly_uses_the_zones_and_the_provisioned_project(
    state_dir: Path, no_ambient_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project only in provision-vars.json (deleted by the final destroy) still reaches
    the janitor; the zones come from $DML_GCP_ZONES when --zones is not given."""
    from disposable.proof.drift import DriftReport

    calls: list[str] = []
    monkeypatch.setenv(gcp_project.ZONES_ENV, "us-central1-a, us-central1-b")
    vars_file = state_dir / "gcp" / "provision-vars.json"

    def provision(env: object, variables: object, zones: list[str]) -> None:
        calls.append(f"provision {','.join(zones)}")
        vars_file.parent.mkdir(parents=True, exist_ok=True)
        vars_file.write_text(json.dumps({"project_id": "dml-provisioned"}))

    def destroy(env: object, include_state: bool = False) -> None:
        calls.append("destroy")
        vars_file.unlink(missing_ok=True)

    def prepare(env: object, facts: rebuilding.RunFacts, frozen: bool) -> None:
        calls.append("inputs")

    monkeypatch.setattr(rebuilding, "prepare_inputs", prepare)
    monkeypatch.setattr(nightly.provisioning, "provision", provision)
    monkeypatch.setattr(nightly.provisioning, "destroy", destroy)
    monkeypatch.setattr(rebuilding.configuring, "configure", lambda env, frozen: calls.append("configure"))
    monkeypatch.setattr(rebuilding, "verify", lambda env: calls.append("verify"))
    monkeypatch.setattr(nightly.drift, "detect", lambda env: DriftReport())
    monkeypatch.setattr(nightly, "compare_fingerprint", lambda env, facts: calls.append("fingerprint"))
    monkeypatch.setattr(nightly.gcp_janitor, "sweep_gcp", lambda p, e, h: calls.append(f"janitor {p} {e} {h:g}h"))

    assert nightly.nightly(get_environment("gcp"), {}, janitor_max_age_hours=6) is True
    assert calls == [
        "inputs",
        "destroy",
        "provision us-central1-a,us-central1-b",
        "configure",
        "verify",
        "fingerprint",
        "destroy",
        "janitor dml-provisioned gcp 6h",
    ]


def test_nightly_zones_prefer_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gcp_project.ZONES_ENV, "us-central1-a,not a zone, us-central1-f")
    assert gcp_project.nightly_zones([]) == ["us-central1-a", "us-central1-f"]
    assert gcp_project.nightly_zones(["europe-west4-b"]) == ["europe-west4-b"]
