"""State outside the disposable hosts, GCP side: the feature_store module (Memorystore for
Redis over private service access, AUTH + TLS, RDB, the AUTH string in Secret Manager), the
model_store module (a private, versioned bucket) and their wiring into the gcp and gcp_fleet
roots. Structure with python-hcl2 (nothing here can be planned without the google provider
and a project); the input validations EVALUATED by Terraform, offline, as in
test_gcp_validations.py (each variables.tf alone in a provider-free root, one plan per case).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_gcp_validations import VariablesRoot
from test_terraform_structure import TERRAFORM, blocks, resources

from disposable.engine.binary import Engine, find_engine
from disposable.hosts.contract import parse_outputs

STORE = TERRAFORM / "modules/feature_store"
MODELS = TERRAFORM / "modules/model_store"
ROOTS = ["environments/gcp", "environments/gcp_fleet"]
DOCS = TERRAFORM.parent / "docs"
SA = "dml-gcp-vm@my-dml-project.iam.gserviceaccount.com"
NETWORK = "projects/my-dml-project/global/networks/dml-gcp"


def resource(directory: Path, rtype: str) -> dict[str, Any]:
    found = [b for t, _, b in resources(directory) if t == rtype]
    assert len(found) == 1, f"{rtype}: {len(found)} in {directory}"
    return found[0]


# ---------------------------------------------------------------------------- feature_store


def test_redis_is_private_with_auth_and_tls_that_no_variable_turns_off() -> None:
    redis = resource(STORE, "google_redis_instance")
    assert redis["auth_enabled"] is True
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert redis["connect_mode"] == "PRIVATE_SERVICE_ACCESS"
    assert redis["authorized_network"] == "var.network"
    assert redis["reserved_ip_range"] == "google_compute_global_address.psa.name"
    assert redis["depends_on"] == ["google_service_networking_connection.psa"]
    variables = blocks(STORE, "variable")
    assert not {"auth_enabled", "transit_encryption_mode", "connect_mode"} & set(variables)
    assert "public" not in str(redis).lower()


def test_private_service_access_is_a_peering_range_of_the_vpc() -> None:
    address = resource(STORE, "google_compute_global_address")
    assert address["purpose"] == "VPC_PEERING"
    assert address["address_type"] == "INTERNAL"
    assert address["network"] == "var.network"
    assert address["prefix_length"] == "local.psa_prefix_length"
    connection = resource(STORE, "google_service_networking_connection")
    assert connection["service"] == "servicenetworking.googleapis.com"
    assert connection["reserved_peering_ranges"] == ["google_compute_global_address.psa.name"]
    # No firewall rule: traffic to a PSA producer needs none (README says why).
    assert not [t for t, _, _ in resources(STORE) if t == "google_compute_firewall"]


def test_redis_sizing_version_persistence_and_maintenance_are_pinned() -> None:
    redis = resource(STORE, "google_redis_instance")
    variables = blocks(STORE, "variable")
    assert redis["tier"] == "var.tier" and variables["tier"]["default"] == "BASIC"
    assert redis["memory_size_gb"] == "var.memory_size_gb" and variables["memory_size_gb"]["default"] == 1
    assert redis["redis_version"] == "var.redis_version" and variables["redis_version"]["default"] == "REDIS_7_0"
    persistence = redis["persistence_config"][0]
    assert persistence["persistence_mode"] == "var.persistence_mode"
    assert variables["persistence_mode"]["default"] == "RDB"
    assert variables["rdb_snapshot_period"]["default"] == "ONE_HOUR"
    window = redis["maintenance_policy"][0]["weekly_maintenance_window"][0]
    assert window["day"] == "var.maintenance_window.day"
    assert window["start_time"][0]["hours"] == "var.maintenance_window.hour"
    assert "local.labels" in redis["labels"]
    readme = (STORE / "README.md").read_text()
    assert "no AOF" in readme and "up to one period of" in readme


def test_the_contract_object_is_rediss_with_tls_and_no_credentials() -> None:
    outputs = blocks(STORE, "output")
    contract = outputs["contract"]["value"]
    assert set(contract) == {"address", "port", "url", "tls"}
    assert contract["tls"] is True
    assert contract["url"] == "rediss://${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
    assert contract["port"] == "google_redis_instance.this.port"  # 6378 with TLS, never a literal 6379
    assert "auth" not in str(contract)
    assert outputs["auth_string"]["sensitive"] is True
    assert all(o.get("sensitive") is not True for name, o in outputs.items() if name != "auth_string")
    assert outputs["server_ca_certs"]["value"] == "[for c in google_redis_instance.this.server_ca_certs : c.cert]"


def test_the_auth_string_goes_to_one_secret_readable_by_the_accessors_only() -> None:
    secret = resource(STORE, "google_secret_manager_secret")
    assert secret["replication"][0]["user_managed"][0]["replicas"][0]["location"] == "var.region"
    assert "local.labels" in secret["labels"]
    version = resource(STORE, "google_secret_manager_secret_version")
    assert version["secret"] == "google_secret_manager_secret.auth.id"
    assert version["secret_data"] == "google_redis_instance.this.auth_string"
    member = resource(STORE, "google_secret_manager_secret_iam_member")
    assert member["role"] == "roles/secretmanager.secretAccessor"
    assert member["for_each"] == "toset(var.auth_secret_accessors)"
    assert member["secret_id"] == "google_secret_manager_secret.auth.secret_id"
    kinds = {t for t, _, _ in resources(STORE)}
    assert not {t for t in kinds if t.endswith(("_iam_policy", "_iam_binding")) or "project_iam" in t}


# ---------------------------------------------------------------------------- model_store


def test_the_model_bucket_is_private_versioned_and_keeps_n_versions() -> None:
    bucket = resource(MODELS, "google_storage_bucket")
    variables = blocks(MODELS, "variable")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"][0]["enabled"] is True
    condition = bucket["lifecycle_rule"][0]["condition"][0]
    assert condition["num_newer_versions"] == "var.noncurrent_versions_to_keep"
    assert condition["with_state"] == "ARCHIVED"
    assert bucket["lifecycle_rule"][0]["action"][0]["type"] == "Delete"
    assert bucket["force_destroy"] == "var.force_destroy" and variables["force_destroy"]["default"] is False
    assert "local.labels" in bucket["labels"]


def test_hosts_read_and_publishers_write_nothing_more() -> None:
    members = {name: body for t, name, body in resources(MODELS) if t == "google_storage_bucket_iam_member"}
    assert members["reader"]["role"] == "roles/storage.objectViewer"
    assert members["reader"]["for_each"] == "toset(var.reader_members)"
    assert members["writer"]["role"] == "var.writer_role"
    assert blocks(MODELS, "variable")["writer_role"]["default"] == "roles/storage.objectUser"
    assert set(members) == {"reader", "writer"}
    assert blocks(MODELS, "output")["model_store_url"]["value"] == "gs://${google_storage_bucket.this.name}"


# ---------------------------------------------------------------------------- the roots


@pytest.mark.parametrize("root", ROOTS)
def test_roots_wire_both_stores_behind_a_switch(root: str) -> None:
    directory = TERRAFORM / root
    modules = blocks(directory, "module")
    variables = blocks(directory, "variable")
    store, models = modules["feature_store"], modules["model_store"]
    assert store["source"] == "../../modules/feature_store"
    assert store["count"] == "var.feature_store_enabled ? 1 : 0"
    assert variables["feature_store_enabled"]["default"] is False  # opt-in until the hosts read it
    assert store["network"] == "module.network.network_id"
    assert store["auth_secret_accessors"] == "concat([local.host_member], var.feature_store_auth_readers)"
    assert models["source"] == "../../modules/model_store"
    assert models["count"] == "var.model_store_enabled ? 1 : 0"
    assert variables["model_store_enabled"]["default"] is False  # opt-in until the hosts pull from it
    assert models["reader_members"] == ["local.host_member"]
    assert models["force_destroy"] == "var.model_store_force_destroy"
    assert variables["model_store_force_destroy"]["default"] is False
    assert blocks(directory, "locals")["host_member"] == "serviceAccount:${var.host_service_account_email}"


@pytest.mark.parametrize("root", ROOTS)
def test_root_outputs_say_where_the_state_is_without_the_auth_string(root: str) -> None:
    outputs = blocks(TERRAFORM / root, "output")
    assert outputs["feature_store"]["value"] == "var.feature_store_enabled ? module.feature_store[0].contract : null"
    assert outputs["feature_store_auth_secret"]["value"].endswith("module.feature_store[0].auth_secret_id : null")
    assert outputs["model_store"]["value"] == (
        "var.model_store_enabled ? {url = module.model_store[0].model_store_url} : null"
    )
    text = "".join(path.read_text() for path in (TERRAFORM / root).glob("*.tf"))
    assert "auth_string" not in text, "the AUTH string must reach the hosts through Secret Manager only"


@pytest.mark.parametrize(("root", "module"), [("environments/gcp", "hosts"), ("environments/gcp_fleet", "region")])
def test_hosts_get_read_only_storage_and_never_cloud_platform(root: str, module: str) -> None:
    assert blocks(TERRAFORM / root, "module")[module]["service_account_scopes"] == "local.host_scopes"
    scopes = blocks(TERRAFORM / root, "locals")["host_scopes"]
    assert "devstorage.read_only" in scopes and "var.model_store_enabled" in scopes
    assert "cloud-platform" not in scopes and "devstorage.full_control" not in scopes


def test_the_fleet_keeps_its_state_in_one_of_its_regions() -> None:
    locals_ = blocks(TERRAFORM / "environments/gcp_fleet", "locals")
    assert locals_["state_region"] == (
        'var.feature_store_region != "" ? var.feature_store_region : sort(keys(var.regions))[0]'
    )
    modules = blocks(TERRAFORM / "environments/gcp_fleet", "module")
    assert modules["feature_store"]["region"] == "local.state_region"


def test_a_gcp_outputs_file_parses_with_the_feature_store() -> None:
    """What the gcp roots output is what the controller's contract parser accepts."""
    host = {
        "name": "dml-gcp-us-central1-a-1",
        "address": "10.60.0.2",
        "ssh_user": "alice",
        "ssh_port": 22,
        "groups": ["inference"],
        "gpu_type": "nvidia-tesla-t4",
        "gpu_count": 1,
        "zone": "us-central1-a",
        "instance_id": "123",
        "connection": "iap",
    }
    store = {"address": "10.61.0.3", "port": 6378, "url": "rediss://10.61.0.3:6378/0", "tls": True}
    outputs = {
        "contract_version": {"value": 1},
        "environment": {"value": "gcp"},
        "hosts": {"value": [host]},
        "feature_store": {"value": store},
        "feature_store_auth_secret": {"value": "projects/p/secrets/dml-gcp-features-auth"},
        "model_store": {"value": {"url": "gs://my-dml-project-dml-gcp-models"}},
    }
    contract = parse_outputs(outputs)
    assert contract.feature_store is not None
    assert (contract.feature_store.url, contract.feature_store.port, contract.feature_store.tls) == (
        "rediss://10.61.0.3:6378/0",
        6378,
        True,
    )
    assert parse_outputs({**outputs, "feature_store": {"value": None}}).feature_store is None


def test_the_docs_describe_the_state_and_its_destruction() -> None:
    gcp = (DOCS / "gcp.md").read_text()
    section = gcp.split("## State outside the hosts", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "gcloud secrets versions access",
        "gcloud storage cp -r",
        "terraform destroy",
        "model_store_force_destroy",
        "feature_store_enabled",
        "rdb_snapshot_period",
    ):
        assert needed in section, needed
    contract = (DOCS / "output-contract.md").read_text()
    assert re.search(r"\| `feature_store`[^|]*\|[^|]*\|.*rediss://", contract)


# ---------------------------------------------------------------------------- validations, evaluated


@pytest.fixture(scope="module")
def engine() -> Engine:
    return find_engine()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("tf-state-validations")


STORE_BASE = {
    "project_id": "my-dml-project",
    "environment": "gcp",
    "name": "dml-gcp-features",
    "region": "us-central1",
    "network": NETWORK,
}


@pytest.fixture(scope="module")
def feature_store(workdir: Path, engine: Engine) -> VariablesRoot:
    return VariablesRoot("modules/feature_store", workdir, engine, STORE_BASE)


def test_feature_store_base_and_ha_values_pass(feature_store: VariablesRoot) -> None:
    assert feature_store.errors() == []
    ha = {
        "tier": "STANDARD_HA",
        "zone": "us-central1-a",
        "alternative_zone": "us-central1-f",
        "memory_size_gb": 5,
        "redis_version": "REDIS_7_2",
        "persistence_mode": "DISABLED",
        "maintenance_window": {"day": "TUESDAY", "hour": 0},
        "psa_cidr": "10.61.0.0/16",
        "auth_secret_accessors": [f"serviceAccount:{SA}", "user:alice@example.com"],
    }
    assert feature_store.errors(**ha) == []


STORE_CASES = {
    "tier-premium": ({"tier": "PREMIUM"}, "tier must be BASIC or STANDARD_HA."),
    "memory-0": ({"memory_size_gb": 0}, "memory_size_gb must be a whole number of GiB from 1 to 300."),
    "memory-half": ({"memory_size_gb": 1.5}, "memory_size_gb must be a whole number of GiB from 1 to 300."),
    "memory-301": ({"memory_size_gb": 301}, "memory_size_gb must be a whole number of GiB from 1 to 300."),
    "version-5": ({"redis_version": "REDIS_5_0"}, "redis_version must be REDIS_6_X, REDIS_7_0 or REDIS_7_2"),
    "version-plain": ({"redis_version": "7.0"}, "redis_version must be REDIS_6_X, REDIS_7_0 or REDIS_7_2"),
    "persistence-aof": ({"persistence_mode": "AOF"}, "persistence_mode must be RDB or DISABLED"),
    "snapshot-10-min": ({"rdb_snapshot_period": "TEN_MINUTES"}, "rdb_snapshot_period must be ONE_HOUR"),
    "window-hour-24": ({"maintenance_window": {"day": "SUNDAY", "hour": 24}}, "maintenance_window.hour must be"),
    "window-day": ({"maintenance_window": {"day": "SUN", "hour": 3}}, "maintenance_window.day must be"),
    "zone-other-region": ({"zone": "europe-west4-a"}, "zone must be empty or a zone of region"),
    "replica-zone-basic": ({"alternative_zone": "us-central1-f"}, "alternative_zone needs tier = STANDARD_HA"),
    "replica-same-zone": (
        {"tier": "STANDARD_HA", "zone": "us-central1-a", "alternative_zone": "us-central1-a"},
        "alternative_zone needs tier = STANDARD_HA and zone set, and must be another zone",
    ),
    "replica-without-zone": (
        {"tier": "STANDARD_HA", "alternative_zone": "us-central1-f"},
        "alternative_zone needs tier = STANDARD_HA and zone set",
    ),
    "psa-too-small": ({"psa_cidr": "10.61.0.0/28"}, "psa_cidr must be an IPv4 network address"),
    "psa-host-bits": ({"psa_cidr": "10.61.0.1/24"}, "psa_cidr must be an IPv4 network address"),
    "accessor-public": ({"auth_secret_accessors": ["allUsers"]}, "Every auth_secret_accessors entry must be"),
    "accessor-bare-email": ({"auth_secret_accessors": [SA]}, "Every auth_secret_accessors entry must be"),
    "name-uppercase": ({"name": "DML-features"}, "name must be 2-40 lowercase letters"),
    "name-41": ({"name": "d" * 41}, "name must be 2-40 lowercase letters"),
    "network-name-only": ({"network": "dml-gcp"}, "network must be a VPC's ID or self link"),
}


@pytest.mark.parametrize(("values", "message"), list(STORE_CASES.values()), ids=list(STORE_CASES))
def test_feature_store_rules_are_evaluated(feature_store: VariablesRoot, values: dict[str, Any], message: str) -> None:
    errors = feature_store.errors(**values)
    assert len(errors) == 1, errors
    assert message in errors[0]


MODELS_BASE = {
    "project_id": "my-dml-project",
    "environment": "gcp",
    "name": "my-dml-project-dml-gcp-models",
    "location": "us-central1",
    "reader_members": [f"serviceAccount:{SA}"],
}


@pytest.fixture(scope="module")
def model_store(workdir: Path, engine: Engine) -> VariablesRoot:
    return VariablesRoot("modules/model_store", workdir, engine, MODELS_BASE)


def test_model_store_base_values_pass(model_store: VariablesRoot) -> None:
    assert model_store.errors() == []
    publisher = ["serviceAccount:dml-publisher@my-dml-project.iam.gserviceaccount.com"]
    assert model_store.errors(location="EU", writer_members=publisher, writer_role="roles/storage.objectCreator") == []


MODELS_CASES = {
    "name-uppercase": ({"name": "My-Models"}, "name must be 3-63 lowercase letters"),
    "name-goog": ({"name": "goog-models"}, "neither start with goog nor contain google"),
    "name-google": ({"name": "my-google-models"}, "neither start with goog nor contain google"),
    "name-64": ({"name": "m" * 64}, "name must be 3-63 lowercase letters"),
    "location": ({"location": "moon"}, "location must be a region"),
    "keep-0": ({"noncurrent_versions_to_keep": 0}, "noncurrent_versions_to_keep must be a whole number"),
    "reader-public": ({"reader_members": ["allUsers"]}, "Every reader_members entry must be"),
    "writer-public": ({"writer_members": ["allAuthenticatedUsers"]}, "Every writer_members entry must be"),
    "writer-admin": ({"writer_role": "roles/storage.admin"}, "writer_role must be roles/storage.objectUser"),
    "reader-and-writer": ({"writer_members": [f"serviceAccount:{SA}"]}, "A member is either a reader or a writer"),
    "storage-class": ({"storage_class": "REGIONAL"}, "storage_class must be STANDARD"),
}


@pytest.mark.parametrize(("values", "message"), list(MODELS_CASES.values()), ids=list(MODELS_CASES))
def test_model_store_rules_are_evaluated(model_store: VariablesRoot, values: dict[str, Any], message: str) -> None:
    errors = model_store.errors(**values)
    assert len(errors) == 1, errors
    assert message in errors[0]


@pytest.fixture(scope="module")
def gcp_root(workdir: Path, engine: Engine) -> VariablesRoot:
    base = {
        "project_id": "my-dml-project",
        "host_service_account_email": SA,
        "ssh_user": "alice",
        "ssh_public_key": "k",
    }
    return VariablesRoot("environments/gcp", workdir, engine, base)


@pytest.fixture(scope="module")
def fleet_root(workdir: Path, engine: Engine) -> VariablesRoot:
    base = {
        "project_id": "my-dml-project",
        "host_service_account_email": "dml-fleet-vm@my-dml-project.iam.gserviceaccount.com",
        "ssh_user": "alice",
        "boot_to_ready_seconds": 300,
        "autohealing_initial_delay_sec": 450,
        "cooldown_period_sec": 300,
        "max_rate_per_instance": 40,
    }
    return VariablesRoot("environments/gcp_fleet", workdir, engine, base)


@pytest.mark.parametrize(
    "psa",
    ["10.60.4.0/24", "10.0.0.0/8", "10.60.0.0/20"],
    ids=["inside-the-subnet", "around-the-subnet", "the-subnet-itself"],
)
def test_gcp_root_refuses_a_psa_range_that_overlaps_a_subnet(gcp_root: VariablesRoot, psa: str) -> None:
    assert gcp_root.errors() == []
    errors = gcp_root.errors(feature_store_psa_cidr=psa, feature_store_enabled=True)
    assert len(errors) == 1 and errors[0].startswith("feature_store_psa_cidr overlaps a subnet in `subnets`")
    # Without a feature store the range is not used, so not checked.
    assert gcp_root.errors(feature_store_psa_cidr=psa, feature_store_enabled=False) == []


def test_fleet_root_checks_the_state_region_and_the_psa_range(fleet_root: VariablesRoot) -> None:
    assert fleet_root.errors() == []
    assert fleet_root.errors(feature_store_region="us-central1") == []
    assert fleet_root.errors(feature_store_region="europe-west4", feature_store_enabled=True) == [
        "feature_store_region must be empty or one of the regions in `regions`."
    ]
    errors = fleet_root.errors(feature_store_psa_cidr="10.70.8.0/24", feature_store_enabled=True)
    assert len(errors) == 1 and errors[0].startswith("feature_store_psa_cidr overlaps a subnet")


# ---------------------------------------------------------------------------- calls match the modules
# `terraform validate` needs the google provider, which cannot be installed offline; this is
# the part of it that needs none: every module call passes declared inputs only, all the
# required ones, and every module output it reads exists.

META_ARGUMENTS = {"source", "count", "for_each", "depends_on", "providers"}


@pytest.mark.parametrize("directory", [*ROOTS, "examples/gcp_state"])
def test_module_calls_match_the_modules_inputs_and_outputs(directory: str) -> None:
    root = TERRAFORM / directory
    lines = "".join(path.read_text() for path in root.glob("*.tf")).splitlines()
    text = "\n".join(line for line in lines if not line.strip().startswith("from ="))  # removed{}: resources
    for call, body in blocks(root, "module").items():
        module_dir = (root / body["source"]).resolve()
        variables = blocks(module_dir, "variable")
        arguments = set(body) - META_ARGUMENTS
        assert arguments <= set(variables), f"{directory}: module {call} passes {arguments - set(variables)}"
        required = {name for name, v in variables.items() if "default" not in v}
        assert required <= arguments, f"{directory}: module {call} lacks {required - arguments}"
        outputs = set(blocks(module_dir, "output"))
        used = set(re.findall(rf"module\.{call}(?:\[[^\]]+\])?\.([a-z_]+)", text))
        assert used <= outputs, f"{directory}: module.{call} has no output {used - outputs}"
