"""Static checks of every Terraform module and root under terraform/ (python-hcl2, no providers).

`terraform validate` needs the providers, which the gcp stacks cannot get offline; these
tests pin down the decisions that must not regress: the output contract, GPU maintenance
policy, firewall exposure guards, the gcs backend, provider pinning and labels.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import hcl2
import pytest

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
MODULE_DIRS = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
GCP_MODULES = [
    "network",
    "firewall",
    "gpu_vm",
    "host_identity",
    "gpu_fleet",
    "front_door",
    "feature_store",
    "model_store",
]
ENV_ROOTS = ["environments/local", "environments/gcp", "environments/gcp_fleet"]
CONTRACT_OUTPUTS = {"contract_version", "environment", "hosts"}
# Outputs a GCP root may add beside the contract (its parser ignores them, so they are
# backward compatible): the project (IAP tunnels, janitor), the fleet's front door, the
# state outside the hosts (feature store, its AUTH secret's id and CA, the model bucket).
GCP_STATE_OUTPUTS = {"feature_store", "feature_store_auth_secret", "feature_store_server_ca_certs", "model_store"}
EXTRA_OUTPUTS = {
    "environments/local": {"front_door", "feature_store"},
    "environments/gcp": {"project_id"} | GCP_STATE_OUTPUTS,
    "environments/gcp_fleet": {"project_id", "front_door", "instance_group_managers"} | GCP_STATE_OUTPUTS,
}
MODULE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}

# google_* resource types that take `labels` in their API, and those that have none. A new
# type must be added to one of them (a decision), and labelled types must set labels.
LABELLED_TYPES = {
    "google_compute_instance",
    "google_compute_instance_template",
    "google_compute_disk",
    "google_compute_address",
    "google_compute_image",
    "google_storage_bucket",
    "google_redis_instance",
    "google_secret_manager_secret",
}
UNLABELLED_TYPES = {
    "google_compute_network",
    "google_compute_subnetwork",
    "google_compute_router",
    "google_compute_router_nat",
    "google_compute_firewall",
    "google_service_account",
    "google_service_account_iam_member",
    "google_project_iam_member",
    "google_os_login_ssh_public_key",
    "google_compute_health_check",
    "google_compute_region_instance_group_manager",
    "google_compute_region_autoscaler",
    "google_compute_backend_service",
    "google_compute_url_map",
    "google_compute_target_http_proxy",
    "google_compute_target_https_proxy",
    "google_compute_managed_ssl_certificate",
    "google_compute_ssl_policy",
    "google_service_networking_connection",
    "google_secret_manager_secret_version",
    "google_secret_manager_secret_iam_member",
    "google_storage_bucket_iam_member",
    # These two have labels in the API, but provider support differs by version and cannot
    # be checked offline; the front door's resources are found by name (front_door/README).
    "google_compute_global_address",
    "google_compute_global_forwarding_rule",
}

# ---------------------------------------------------------------------------- parsing


def _clean(value: Any) -> Any:
    """hcl2 8.x output without its markers: keys unquoted, "literal" -> literal, ${expr} -> expr."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return _unquote(value)
    return value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text.startswith('"') and text.endswith('"') else text


@functools.cache
def parse_file(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return _clean(hcl2.load(handle))


def tf_dirs() -> list[Path]:
    return sorted({p.parent for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts})


def blocks(directory: Path, kind: str) -> dict[str, Any]:
    """name -> body of every `kind` block (variable, output, module, locals merged) in a directory."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse_file(path).get(kind, []):
            found.update(entry)
    return found


def resources(directory: Path) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted(directory.glob("*.tf")):
        for entry in parse_file(path).get("resource", []):
            for rtype, named in entry.items():
                found.extend((rtype, name, body) for name, body in named.items())
    return found


def terraform_blocks(directory: Path) -> list[dict[str, Any]]:
    return [t for path in sorted(directory.glob("*.tf")) for t in parse_file(path).get("terraform", [])]


def required_providers(directory: Path) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for block in terraform_blocks(directory):
        for providers in block.get("required_providers", []):
            found.update(providers)
    return found


def rel(path: Path) -> str:
    return str(path.relative_to(TERRAFORM))


# ---------------------------------------------------------------------------- layout


@pytest.mark.parametrize("module", MODULE_DIRS, ids=rel)
def test_module_has_standard_files(module: Path) -> None:
    present = {p.name for p in module.iterdir()}
    assert present >= MODULE_FILES, f"{rel(module)} lacks {sorted(MODULE_FILES - present)}"


def test_gcp_modules_and_roots_exist() -> None:
    for name in GCP_MODULES:
        assert (TERRAFORM / "modules" / name).is_dir()
    for root in (
        "environments/gcp",
        "environments/gcp_fleet",
        "bootstrap/gcs_state",
        "examples/gcp_single_t4",
        "examples/gcp_fleet",
        "examples/gcp_state",
    ):
        assert (TERRAFORM / root / "main.tf").is_file()


@pytest.mark.parametrize("directory", tf_dirs(), ids=rel)
def test_every_variable_has_description_and_type(directory: Path) -> None:
    for name, body in blocks(directory, "variable").items():
        assert str(body.get("description", "")).strip(), f"{rel(directory)}: variable {name} has no description"
        assert "type" in body, f"{rel(directory)}: variable {name} has no type"


@pytest.mark.parametrize("module", GCP_MODULES)
def test_gcp_module_inputs_are_validated(module: str) -> None:
    variables = blocks(TERRAFORM / "modules" / module, "variable")
    validated = [name for name, body in variables.items() if body.get("validation")]
    assert len(validated) >= len(variables) // 2, f"{module}: only {validated} have validation blocks"


@pytest.mark.parametrize("directory", tf_dirs(), ids=rel)
def test_required_version_is_set(directory: Path) -> None:
    assert any("required_version" in t for t in terraform_blocks(directory)), rel(directory)


# ---------------------------------------------------------------------------- the output contract


@pytest.mark.parametrize("root", ENV_ROOTS)
def test_environment_exposes_exactly_the_contract(root: str) -> None:
    directory = TERRAFORM / root
    outputs = blocks(directory, "output")
    assert set(outputs) == CONTRACT_OUTPUTS | EXTRA_OUTPUTS[root]
    for name in CONTRACT_OUTPUTS:
        assert outputs[name]["value"] == f"module.contract.{name}", f"{root}: output {name} bypasses module.contract"
    assert blocks(directory, "module")["contract"]["source"] == "../../modules/host_contract"


def test_gcp_hosts_flow_from_gpu_vm_through_host_contract() -> None:
    modules = blocks(TERRAFORM / "environments/gcp", "module")
    assert modules["contract"]["hosts"] == "module.hosts.hosts"
    assert modules["hosts"]["source"] == "../../modules/gpu_vm"
    assert modules["network"]["source"] == "../../modules/network"
    assert modules["firewall"]["source"] == "../../modules/firewall"


def test_gpu_vm_hosts_output_has_every_contract_field() -> None:
    hosts_value = blocks(TERRAFORM / "modules/gpu_vm", "output")["hosts"]["value"]
    fields = ["name", "address", "ssh_user", "ssh_port", "groups", "gpu_type", "gpu_count", "zone", "instance_id"]
    for field in [*fields, "connection"]:
        assert f"{field} = " in hosts_value, f"hosts output lacks {field}"
    assert '"iap"' in hosts_value and '"direct"' in hosts_value
    assert "network_ip" in hosts_value and "nat_ip" in hosts_value


# ---------------------------------------------------------------------------- gpu_vm


def gpu_instance() -> dict[str, Any]:
    return next(b for t, _, b in resources(TERRAFORM / "modules/gpu_vm") if t == "google_compute_instance")


def test_gpu_hosts_terminate_on_host_maintenance() -> None:
    scheduling = gpu_instance()["scheduling"][0]
    assert scheduling["automatic_restart"] is True
    policy = scheduling["on_host_maintenance"]
    if policy.startswith("local."):
        policy = blocks(TERRAFORM / "modules/gpu_vm", "locals")[policy.removeprefix("local.")]
    assert policy == 'var.gpu_count > 0 ? "TERMINATE" : "MIGRATE"'
    assert "on_host_maintenance" not in blocks(TERRAFORM / "modules/gpu_vm", "variable"), "must not be overridable"


def test_gpu_hosts_are_private_shielded_and_use_os_login() -> None:
    instance = gpu_instance()
    variables = blocks(TERRAFORM / "modules/gpu_vm", "variable")
    assert variables["assign_public_ip"]["default"] is False
    assert instance["network_interface"][0]["dynamic"][0]["access_config"]["for_each"].startswith(
        "var.assign_public_ip ?"
    )
    shielded = instance["shielded_instance_config"][0]
    assert shielded["enable_vtpm"] is True and shielded["enable_integrity_monitoring"] is True
    assert variables["enable_secure_boot"]["default"] is False
    assert instance["metadata"]["block-project-ssh-keys"] == "TRUE"
    assert instance["metadata"]["enable-oslogin"] == 'var.enable_oslogin ? "TRUE" : "FALSE"'
    assert variables["enable_oslogin"]["default"] is True


def test_gpu_hosts_use_a_dedicated_least_privilege_service_account() -> None:
    variables = blocks(TERRAFORM / "modules/gpu_vm", "variable")
    assert gpu_instance()["service_account"][0]["email"] == "var.service_account_email"
    assert not any("cloud-platform" in s for s in variables["service_account_scopes"]["default"])
    identity = blocks(TERRAFORM / "modules/host_identity", "variable")
    assert identity["roles"]["default"] == ["roles/logging.logWriter", "roles/monitoring.metricWriter"]


IAM_ADMIN_TYPES = {"google_service_account", "google_project_iam_member", "google_service_account_iam_member"}


@pytest.mark.parametrize(
    "directory", ["modules/gpu_vm", "modules/gpu_fleet", "environments/gcp", "environments/gcp_fleet"]
)
def test_environments_create_no_service_accounts_or_role_bindings(directory: str) -> None:
    # Made once, in the bootstrap root: an environment apply (the nightly) needs no IAM admin.
    created = {t for t, _, _ in resources(TERRAFORM / directory)} & IAM_ADMIN_TYPES
    modules = blocks(TERRAFORM / directory, "module")
    assert not created, f"{directory} creates {created}"
    assert all(m["source"] != "../../modules/host_identity" for m in modules.values())


def test_the_bootstrap_root_makes_the_hosts_service_accounts_once() -> None:
    bootstrap = blocks(TERRAFORM / "bootstrap/gcs_state", "module")["host_identity"]
    assert bootstrap["source"] == "../../modules/host_identity"
    assert bootstrap["for_each"] == "toset(var.host_environments)"
    assert bootstrap["account_id"] == "dml-${each.key}-vm"
    hosts = blocks(TERRAFORM / "environments/gcp", "module")["hosts"]
    assert hosts["service_account_email"] == "var.host_service_account_email"
    # The account an older root created is forgotten by the environment, not deleted.
    removed = [b for path in (TERRAFORM / "environments/gcp").glob("*.tf") for b in parse_file(path).get("removed", [])]
    assert {r["from"] for r in removed} == {
        "module.hosts.google_service_account.vm",
        "module.hosts.google_project_iam_member.vm",
    }
    assert all(r["lifecycle"][0]["destroy"] is False for r in removed)


def test_gpu_defaults_are_one_t4_on_debian_12() -> None:
    variables = blocks(TERRAFORM / "modules/gpu_vm", "variable")
    assert variables["machine_type"]["default"] == "n1-standard-4"
    assert variables["gpu_type"]["default"] == "nvidia-tesla-t4"
    assert variables["gpu_count"]["default"] == 1
    assert variables["image_family"]["default"] == "debian-12"
    assert variables["image_project"]["default"] == "debian-cloud"


def test_created_label_cannot_drift() -> None:
    instance = gpu_instance()
    for labels in (instance["labels"], instance["boot_disk"][0]["initialize_params"][0]["labels"]):
        assert "time_static.created[each.key]" in labels
    assert "local.labels" in instance["labels"]
    assert "timestamp()" not in (TERRAFORM / "modules/gpu_vm/main.tf").read_text()
    identity = blocks(TERRAFORM / "modules/gpu_vm", "locals")["identity_labels"]
    assert identity["environment"] == "var.environment"


def test_boot_disk_labels_never_force_replacement() -> None:
    """google provider 6.x replaces the instance when boot_disk.initialize_params.labels
    changes: only labels fixed for the host's life go there, never the caller's `labels`
    (gpu_vm/README.md, Labels)."""
    locals_ = blocks(TERRAFORM / "modules/gpu_vm", "locals")
    disk_labels = gpu_instance()["boot_disk"][0]["initialize_params"][0]["labels"]
    assert "var.labels" not in disk_labels and "local.labels" not in disk_labels
    assert disk_labels.startswith("merge(local.identity_labels, {created = formatdate(")
    assert set(locals_["identity_labels"]) == {"environment", "managed-by", "app"}
    assert "var." not in str({k: v for k, v in locals_["identity_labels"].items() if k != "environment"})
    # created is re-stamped only by what replaces the host anyway (zone, image).
    created = next(b for t, _, b in resources(TERRAFORM / "modules/gpu_vm") if t == "time_static")
    assert created["triggers"] == {"zone": "each.value.zone", "image": "local.image"}
    # The caller's labels still reach the instance, where a change is an in-place update.
    assert "var.labels" in locals_["labels"] and "local.labels" in gpu_instance()["labels"]
    readme = (TERRAFORM / "modules/gpu_vm/README.md").read_text()
    assert "## Labels: the boot disk carries only the host's identity (decision)" in readme


# ---------------------------------------------------------------------------- firewall


@pytest.mark.parametrize(
    ("ranges", "override"),
    [
        ("ssh_source_ranges", "allow_ssh_from_anywhere_i_understand_the_risk"),
        ("api_source_ranges", "allow_api_from_anywhere_i_understand_the_risk"),
    ],
)
def test_firewall_refuses_the_internet_without_the_override(ranges: str, override: str) -> None:
    variables = blocks(TERRAFORM / "modules/firewall", "variable")
    assert variables[override]["default"] is False
    guards = [
        v
        for v in variables[ranges]["validation"]
        if f"var.{override} ||" in v["condition"] and f"var.{ranges}" in v["condition"]
    ]
    assert len(guards) == 1, f"{ranges}: no validation guarded by {override}"
    # What the rule accepts is evaluated with Terraform: tests/unit/test_gcp_validations.py.
    assert "4294967296" in guards[0]["condition"], "the rule must compare the union's size with all of IPv4"
    assert "0.0.0.0/0" in guards[0]["error_message"] and override in guards[0]["error_message"]


def test_ssh_defaults_to_iap_and_api_always_admits_health_checks() -> None:
    directory = TERRAFORM / "modules/firewall"
    assert blocks(directory, "variable")["ssh_source_ranges"]["default"] == ["35.235.240.0/20"]
    health = blocks(directory, "locals")["google_health_check_ranges"]
    assert health == ["35.191.0.0/16", "130.211.0.0/22"]
    rules = {name: body for t, name, body in resources(directory) if t == "google_compute_firewall"}
    assert rules["api"]["source_ranges"] == "distinct(concat(var.api_source_ranges, local.google_health_check_ranges))"
    assert rules["ssh"]["source_ranges"] == "var.ssh_source_ranges"
    assert all(rule["target_tags"] == "var.target_tags" for rule in rules.values())


def test_environment_passes_the_overrides_through_unchanged() -> None:
    firewall = blocks(TERRAFORM / "environments/gcp", "module")["firewall"]
    for override in ("allow_ssh_from_anywhere_i_understand_the_risk", "allow_api_from_anywhere_i_understand_the_risk"):
        assert firewall[override] == f"var.{override}"
        assert blocks(TERRAFORM / "environments/gcp", "variable")[override]["default"] is False


# ---------------------------------------------------------------------------- backend, providers, labels


def test_gcp_environment_uses_the_gcs_backend() -> None:
    backends = [b for t in terraform_blocks(TERRAFORM / "environments/gcp") for b in t.get("backend", [])]
    assert backends == [{"gcs": {}}], "bucket/prefix must come from -backend-config, not the code"
    assert (TERRAFORM / "environments/gcp/backend.hcl.example").is_file()


def test_state_bucket_is_versioned_private_and_keeps_n_versions() -> None:
    bucket = next(b for t, _, b in resources(TERRAFORM / "bootstrap/gcs_state") if t == "google_storage_bucket")
    assert bucket["versioning"][0]["enabled"] is True
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    condition = bucket["lifecycle_rule"][0]["condition"][0]
    assert condition["num_newer_versions"] == "var.noncurrent_versions_to_keep"
    assert bucket["lifecycle"][0]["prevent_destroy"] is True


def google_dirs() -> list[Path]:
    return [d for d in tf_dirs() if any(t.startswith("google_") for t, _, _ in resources(d)) or "gcp" in d.name]


@pytest.mark.parametrize("directory", google_dirs(), ids=rel)
def test_google_provider_version_is_constrained(directory: Path) -> None:
    providers = required_providers(directory)
    assert "google" in providers, f"{rel(directory)} uses google without required_providers"
    assert providers["google"]["source"] == "hashicorp/google"
    assert providers["google"]["version"] == "~> 6.0"


@pytest.mark.parametrize("directory", tf_dirs(), ids=rel)
def test_google_resources_that_take_labels_set_them(directory: Path) -> None:
    for rtype, name, body in resources(directory):
        if not rtype.startswith("google_"):
            continue
        assert rtype in LABELLED_TYPES | UNLABELLED_TYPES, f"{rtype}: decide whether it takes labels (list it here)"
        if rtype in LABELLED_TYPES:
            labels = body.get("labels")
            assert labels, f"{rel(directory)}: {rtype}.{name} sets no labels"
            assert "environment" in str(labels) or "local.labels" in str(labels), f"{rtype}.{name}: no environment"
