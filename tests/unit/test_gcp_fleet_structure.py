"""The GCP fleet root (terraform/environments/gcp_fleet) and its modules, checked here
structurally (python-hcl2): nothing of it can be planned without the google provider and a
project. The decisions pinned: T4 template with TERMINATE and the image pinned by name,
regional groups over zones with BALANCED shape, proactive surge-only rolling updates,
autoscaling on the front door's measured per-host rate with rush-hour schedules, readiness
and liveness checks, a global external Application Load Balancer, health-check firewall.
The validations themselves are evaluated in test_gcp_validations.py."""

from __future__ import annotations

from typing import Any

from test_terraform_structure import TERRAFORM, blocks, resources

FLEET = TERRAFORM / "modules/gpu_fleet"
DOOR = TERRAFORM / "modules/front_door"
ROOT = TERRAFORM / "environments/gcp_fleet"


def resource(directory: Any, rtype: str, name: str | None = None) -> dict[str, Any]:
    return next(b for t, n, b in resources(directory) if t == rtype and (name is None or n == name))


def test_template_is_a_private_t4_host_that_stops_for_maintenance() -> None:
    template = resource(FLEET, "google_compute_instance_template")
    variables = blocks(FLEET, "variable")
    assert template["guest_accelerator"][0] == {"type": "var.gpu_type", "count": "var.gpu_count"}
    assert variables["gpu_type"]["default"] == "nvidia-tesla-t4"
    assert variables["machine_type"]["default"] == "n1-standard-4"
    assert template["scheduling"][0]["on_host_maintenance"] == "local.on_host_maintenance"
    assert blocks(FLEET, "locals")["on_host_maintenance"] == "TERMINATE"
    assert "on_host_maintenance" not in variables, "must not be overridable"
    assert template["scheduling"][0]["automatic_restart"] is True
    assert "access_config" not in str(template["network_interface"]), "no public IP"
    shielded = template["shielded_instance_config"][0]
    assert shielded == {
        "enable_secure_boot": "var.enable_secure_boot",
        "enable_vtpm": True,
        "enable_integrity_monitoring": True,
    }
    assert variables["enable_secure_boot"]["default"] is False
    assert template["service_account"][0]["email"] == "var.service_account_email"
    assert template["lifecycle"][0]["create_before_destroy"] is True


def test_per_environment_values_reach_the_hosts_as_metadata() -> None:
    metadata = resource(FLEET, "google_compute_instance_template")["metadata"]
    assert metadata["dml-environment"] == "var.environment"
    assert metadata["dml-config"] == "jsonencode(var.service_config)"
    # Literals: no caller's value can turn them off.
    assert metadata["enable-oslogin"] == "TRUE"
    assert metadata["block-project-ssh-keys"] == "TRUE"
    assert metadata["serial-port-enable"] == "FALSE"
    assert blocks(ROOT, "module")["region"]["service_config"] == "var.service_config"


def test_the_image_is_pinned_by_name_resolved_from_the_family() -> None:
    assert resource(FLEET, "google_compute_instance_template")["disk"][0]["source_image"] == "var.source_image"
    image = next(b for path in ROOT.glob("*.tf") for d in _data(path) for t, named in d.items()
                 if t == "google_compute_image" for b in named.values())  # fmt: skip
    assert image["family"] == 'var.image_name == "" ? var.image_family : null'
    assert blocks(ROOT, "variable")["image_family"]["default"] == "dml-gpu"
    source = blocks(ROOT, "module")["region"]["source_image"]
    assert source == "projects/${local.image_project}/global/images/${data.google_compute_image.serving.name}"
    assert "family" not in source


def _data(path: Any) -> list[dict[str, Any]]:
    from test_terraform_structure import parse_file

    return parse_file(path).get("data", [])


def test_a_regional_group_spreads_balanced_over_the_zones() -> None:
    mig = resource(FLEET, "google_compute_region_instance_group_manager")
    assert mig["distribution_policy_zones"] == "var.zones"
    assert mig["distribution_policy_target_shape"] == "BALANCED"
    assert mig["version"][0]["instance_template"] == "google_compute_instance_template.this.self_link"
    assert "target_size" not in mig, "the autoscaler owns the size"
    assert mig["named_port"][0] == {"name": "var.service_port_name", "port": "var.service_port"}


def test_rolling_updates_surge_and_never_take_capacity_away() -> None:
    policy = resource(FLEET, "google_compute_region_instance_group_manager")["update_policy"][0]
    assert policy["type"] == "PROACTIVE"
    assert policy["minimal_action"] == "REPLACE"
    assert policy["max_surge_fixed"] == "var.max_surge_fixed"
    assert policy["max_unavailable_fixed"] == 0
    assert policy["min_ready_sec"] == "var.min_ready_sec"
    surge = blocks(FLEET, "variable")["max_surge_fixed"]["validation"][0]["condition"]
    assert "var.max_surge_fixed >= length(var.zones)" in surge


def test_auto_healing_checks_liveness_after_the_boot() -> None:
    mig = resource(FLEET, "google_compute_region_instance_group_manager")
    healing = mig["auto_healing_policies"][0]
    assert healing == {
        "health_check": "google_compute_health_check.liveness.id",
        "initial_delay_sec": "var.autohealing_initial_delay_sec",
    }
    liveness = resource(FLEET, "google_compute_health_check", "liveness")
    assert liveness["http_health_check"][0]["request_path"] == "var.liveness_path"
    variables = blocks(FLEET, "variable")
    assert variables["liveness_path"]["default"] == "/livez"
    delay = variables["autohealing_initial_delay_sec"]["validation"][0]["condition"]
    assert "var.autohealing_initial_delay_sec >= 1.5 * var.boot_to_ready_seconds" in delay
    assert "default" not in variables["boot_to_ready_seconds"], "a measurement, not a guess"


def test_the_autoscaler_follows_the_front_doors_rate_and_the_rush_hours() -> None:
    policy = resource(FLEET, "google_compute_region_autoscaler")["autoscaling_policy"][0]
    assert policy["min_replicas"] == "var.min_replicas"
    assert policy["max_replicas"] == "var.max_replicas"
    assert policy["cooldown_period"] == "var.cooldown_period_sec"
    assert policy["load_balancing_utilization"][0]["target"] == "var.lb_utilization_target"
    schedules = policy["dynamic"][0]["scaling_schedules"]
    assert schedules["for_each"] == "{for s in var.scaling_schedules : s.name => s}"
    variables = blocks(FLEET, "variable")
    assert "var.min_replicas >= 2" in variables["min_replicas"]["validation"][0]["condition"]
    assert "boot-to-ready" in variables["cooldown_period_sec"]["description"]
    rush = blocks(ROOT, "variable")["scaling_schedules"]["default"]
    assert [s["name"] for s in rush] == ["morning-rush", "evening-rush"]
    assert all(s["schedule"].endswith("MON-FRI") for s in rush)


def test_the_front_door_balances_by_a_measured_rate_and_checks_readiness_fast() -> None:
    backend = resource(DOOR, "google_compute_backend_service")
    assert backend["load_balancing_scheme"] == "EXTERNAL_MANAGED"
    assert backend["health_checks"] == ["google_compute_health_check.ready.id"]
    content = backend["dynamic"][0]["backend"]["content"][0]
    assert content["balancing_mode"] == "RATE"
    assert content["max_rate_per_instance"] == "var.max_rate_per_instance"
    variables = blocks(DOOR, "variable")
    assert "from a MEASURED per-host rate" in variables["max_rate_per_instance"]["description"]
    assert "default" not in variables["max_rate_per_instance"]
    ready = resource(DOOR, "google_compute_health_check", "ready")
    assert ready["http_health_check"][0]["request_path"] == "var.ready_path"
    assert variables["ready_path"]["default"] == "/readyz"
    assert variables["ready_check_interval_sec"]["default"] == 2
    assert variables["ready_unhealthy_threshold"]["default"] == 2
    rules = [b for t, _, b in resources(DOOR) if t == "google_compute_global_forwarding_rule"]
    assert rules and all(r["load_balancing_scheme"] == "EXTERNAL_MANAGED" for r in rules)
    assert "Global, not regional (decision)" in (DOOR / "README.md").read_text()


def test_the_root_runs_1_to_10_regions_behind_one_front_door() -> None:
    modules = blocks(ROOT, "module")
    assert modules["region"]["source"] == "../../modules/gpu_fleet"
    assert modules["region"]["for_each"] == "var.regions"
    assert modules["region"]["zones"] == "each.value"
    assert modules["front_door"]["backends"] == "{for region, fleet in module.region : region => fleet.instance_group}"
    assert modules["network"]["source"] == "../../modules/network"
    regions = blocks(ROOT, "variable")["regions"]
    assert "length(var.regions) >= 1 && length(var.regions) <= 10" in regions["validation"][0]["condition"]


def test_only_google_health_checks_and_the_load_balancer_reach_the_service_port() -> None:
    firewall = blocks(ROOT, "module")["firewall"]
    assert firewall["source"] == "../../modules/firewall"
    assert firewall["api_port"] == "var.service_port"
    assert firewall["api_source_ranges"] == []
    assert blocks(TERRAFORM / "modules/firewall", "locals")["google_health_check_ranges"] == [
        "35.191.0.0/16",
        "130.211.0.0/22",
    ]


def test_the_contract_hosts_come_from_the_groups_and_the_front_door_is_listed() -> None:
    contract = blocks(ROOT, "module")["contract"]
    assert contract["source"] == "../../modules/host_contract"
    assert contract["hosts"] == "flatten([for region in sort(keys(var.regions)) : module.region[region].hosts])"
    outputs = blocks(ROOT, "output")
    assert outputs["front_door"]["value"]["url"] == "module.front_door.url"
    hosts = blocks(FLEET, "output")["hosts"]["value"]
    for field in ("name", "address", "ssh_user", "ssh_port", "groups", "gpu_type", "gpu_count", "zone", "instance_id"):
        assert f"{field} = " in hosts
    assert 'connection = "iap"' in hosts
    assert "data.google_compute_instance.member" in hosts


def test_the_fleet_example_uses_the_same_modules() -> None:
    modules = blocks(TERRAFORM / "examples/gcp_fleet", "module")
    assert {m["source"] for m in modules.values()} == {
        "../../modules/host_identity",
        "../../modules/network",
        "../../modules/firewall",
        "../../modules/gpu_fleet",
        "../../modules/front_door",
    }
