"""What every inference host runs: the Python runtime and the demand-prediction service
(testinfra_hosts: the environment's `inference` group)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.spec.conftest import hosts_in

testinfra_hosts = hosts_in("inference")


def test_venv_has_exactly_the_locked_packages(
    host: Any, spec: dict[str, Any], locked_requirements: dict[str, str]
) -> None:
    out = host.check_output(f"{spec['python_runtime_venv']}/bin/python -m pip list --format=json")
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}
    installed.pop("pip", None)
    installed.pop("setuptools", None)
    locked = {k: v for k, v in locked_requirements.items() if k not in ("pip", "setuptools")}
    assert installed == locked


def test_service_user_is_unprivileged(host: Any, spec: dict[str, Any]) -> None:
    user = host.user(spec["inference_service_user"])
    assert user.exists and user.uid != 0
    assert user.shell == "/usr/sbin/nologin"


def test_the_served_model_is_the_environments_version_from_the_store(
    host: Any, spec: dict[str, Any], hostvars: dict[str, Any]
) -> None:
    """The version the environment serves (deploy record, else the newest published), in
    the store's layout, byte for byte the store's, and the one the service has loaded."""
    from disposable.state import models

    served = models.serving(hostvars["dml_environment"])["version"]
    entry = models.entry(served)
    version_dir = f"{spec['inference_service_root']}/models/{models.MODEL_NAME}/{served}"
    manifest = json.loads(host.file(f"{version_dir}/manifest.json").content_string)
    weights = host.file(f"{version_dir}/{manifest['weights']['file']}")
    assert weights.sha256sum == entry["sha256"] == manifest["weights"]["sha256"]
    config = json.loads(host.file(f"{spec['inference_service_config_dir']}/config.json").content_string)
    assert config["model_version"] == served and config["model_dir"] == f"{spec['inference_service_root']}/models"
    answer = host.check_output(
        f'python3 -c "import urllib.request as u; print(u.urlopen('
        f"'http://127.0.0.1:{spec['inference_service_port']}/v1/models/{models.MODEL_NAME}').read().decode())\""
    )
    assert json.loads(answer)["version"] == served


def test_service_code_matches_the_repository(host: Any, spec: dict[str, Any]) -> None:
    import hashlib
    import shlex

    from disposable.packages.artifacts import service_files

    files = service_files()
    assert files, "no service code found in the repository"
    app = spec["inference_service_app_dir"]
    # One sha256sum over every file (one round trip, not one per file); a missing file is
    # named by sha256sum and fails the command.
    names = sorted(files)
    listing = host.run("sha256sum -- " + " ".join(shlex.quote(f"{app}/{name}") for name in names))
    assert listing.rc == 0, listing.stderr
    deployed = {line[66:]: line[:64] for line in listing.stdout.splitlines()}
    for arcname in names:
        expected = hashlib.sha256(files[arcname].read_bytes()).hexdigest()
        assert deployed.get(f"{app}/{arcname}") == expected, arcname


def test_service_is_enabled_active_and_not_root(host: Any, spec: dict[str, Any]) -> None:
    service = host.service(spec["inference_service_name"])
    assert service.is_enabled
    assert service.is_running
    pid = host.check_output(f"systemctl show -p MainPID --value {spec['inference_service_name']}")
    owner = host.check_output(f"ps -o user= -p {pid}")
    assert owner == spec["inference_service_user"]


def test_service_listens_on_its_port(host: Any, spec: dict[str, Any]) -> None:
    address = spec["inference_service_bind_address"]
    assert host.socket(f"tcp://{address}:{spec['inference_service_port']}").is_listening


def test_service_is_ready_from_the_host(host: Any, spec: dict[str, Any]) -> None:
    body = host.check_output(
        f'python3 -c "import urllib.request as u; '
        f"print(u.urlopen('http://127.0.0.1:{spec['inference_service_port']}/readyz').read().decode())\""
    )
    assert json.loads(body)["status"] == "ready"


EXPOSURE_MAX = 2.0  # systemd-analyze security's scale: 0 (locked down) .. 10 (unsandboxed)


def test_service_unit_is_valid_and_sandboxed(host: Any, spec: dict[str, Any]) -> None:
    """The unit passes `systemd-analyze verify`, and its exposure is at most 2.0."""
    unit = f"/etc/systemd/system/{spec['inference_service_name']}.service"
    verify = host.run(f"systemd-analyze verify {unit}")
    assert verify.rc == 0, verify.stderr
    report = host.check_output(f"systemd-analyze security --no-pager {spec['inference_service_name']}.service")
    exposure = float(report.rsplit("Overall exposure level for", 1)[1].split(":")[1].split()[0])
    assert exposure <= EXPOSURE_MAX, report


def test_service_device_follows_the_hosts_gpu(host: Any, spec: dict[str, Any], hostvars: dict[str, Any]) -> None:
    """Hosts with a GPU compute on CUDA (or are not ready), hosts without one on the CPU;
    the configured device is what /readyz reports."""
    expected = "cuda" if int(hostvars.get("dml_gpu_count", 0)) > 0 else "cpu"
    config = json.loads(host.file(f"{spec['inference_service_config_dir']}/config.json").content_string)
    assert config["device"] == expected
    unit = host.file(f"/etc/systemd/system/{spec['inference_service_name']}.service").content_string
    if expected == "cuda":
        assert "DevicePolicy=closed" in unit and "DeviceAllow=/dev/nvidiactl rw" in unit
        assert f"Requires={spec['inference_service_nvidia_nodes_unit']}.service" in unit
    else:
        assert "PrivateDevices=true" in unit and "DeviceAllow" not in unit


@pytest.mark.gpu
def test_service_computes_on_the_gpu(host: Any, spec: dict[str, Any], has_gpu: bool) -> None:
    if not has_gpu:
        pytest.skip("host has no GPU in the output contract (gpu_count=0): nothing to compute on")
    body = host.check_output(
        f'python3 -c "import urllib.request as u; '
        f"print(u.urlopen('http://127.0.0.1:{spec['inference_service_port']}/readyz').read().decode())\""
    )
    ready = json.loads(body)
    assert ready["status"] == "ready" and ready["device"]["device"] == "cuda", ready
