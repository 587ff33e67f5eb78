"""What every inference host must be. Each assertion names the spec value it checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_os_is_debian_12(host: Any) -> None:
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.startswith("12")


def test_systemd_is_running_cleanly(host: Any) -> None:
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_login_user_is_not_root_and_has_sudo(host: Any, hostvars: dict[str, Any]) -> None:
    user = host.user(hostvars["ansible_user"])
    assert user.exists and user.uid != 0
    assert host.file(f"/etc/sudoers.d/90-{user.name}").exists


def test_apt_sources_include_non_free(host: Any, spec: dict[str, Any]) -> None:
    sources = host.file("/etc/apt/sources.list.d/debian.sources").content_string
    for component in spec["base_apt_components"]:
        assert component in sources.split(), f"APT component {component} missing"


def test_ssh_refuses_root_and_passwords(host: Any, spec: dict[str, Any]) -> None:
    effective = host.check_output(
        "sshd -T 2>/dev/null | grep -Ei '^(permitrootlogin|passwordauthentication|maxauthtries) '"
    )
    settings = dict(line.split(" ", 1) for line in effective.splitlines())
    assert settings["permitrootlogin"] == spec["base_ssh_permit_root_login"]
    assert settings["passwordauthentication"] == "no"
    assert settings["maxauthtries"] == str(spec["base_ssh_max_auth_tries"])


def test_unattended_upgrades_never_touch_the_gpu_stack(host: Any, spec: dict[str, Any]) -> None:
    config = host.file("/etc/apt/apt.conf.d/52disposable-unattended-upgrades").content_string
    for pattern in spec["base_unattended_upgrades_blacklist"]:
        assert f'"{pattern}";' in config
    assert host.package("unattended-upgrades").is_installed


def test_time_sync_is_enabled(host: Any) -> None:
    assert host.service("systemd-timesyncd").is_enabled


def test_extra_ca_certificates_are_trusted(host: Any, spec: dict[str, Any]) -> None:
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    for controller_path in spec_ca_files():
        name = Path(controller_path).name
        deployed = host.file(f"{spec['base_ca_certificates_dir']}/{name}")
        assert deployed.exists, f"{name} not deployed"
        body = "".join(Path(controller_path).read_text().split())
        assert body[60:200] in "".join(bundle.split()), f"{name} is not in the host's CA bundle"


def spec_ca_files() -> list[str]:
    from glob import glob

    return sorted(glob("/usr/local/share/ca-certificates/*.crt") + glob("/usr/local/share/ca-certificates/*/*.crt"))


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
