"""What every inference host runs: the Python runtime and the demand-prediction service
(testinfra_hosts: the environment's `inference` group)."""

from __future__ import annotations

import json
from typing import Any

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


def test_model_matches_the_trained_artifact(host: Any, spec: dict[str, Any], manifest: dict[str, Any]) -> None:
    weights = host.file(f"{spec['inference_service_model_dir']}/{manifest['weights']['file']}")
    assert weights.exists
    assert weights.sha256sum == manifest["weights"]["sha256"]


def test_service_code_matches_the_repository(host: Any, spec: dict[str, Any]) -> None:
    import hashlib

    from disposable.packages.artifacts import service_files

    files = service_files()
    assert files, "no service code found in the repository"
    for arcname, path in sorted(files.items()):
        deployed = host.file(f"{spec['inference_service_app_dir']}/{arcname}")
        assert deployed.sha256sum == hashlib.sha256(path.read_bytes()).hexdigest(), arcname


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
