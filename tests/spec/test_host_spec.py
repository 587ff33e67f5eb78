"""What every host must be, whatever its role (testinfra_hosts: every host of the environment).
Each assertion names the spec value it checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.spec.conftest import hosts_in

testinfra_hosts = hosts_in("all")


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


def test_apt_installs_only_from_the_package_store(host: Any, hostvars: dict[str, Any], apt_lock: Any) -> None:
    """The only APT source is the store's repository of exactly this apt lock, signed by the store's key."""
    assert host.check_output("ls /etc/apt/sources.list.d").split() == ["dml-store.sources"]
    legacy = host.file("/etc/apt/sources.list")
    assert not legacy.exists or not legacy.content_string.strip()
    source = host.file("/etc/apt/sources.list.d/dml-store.sources").content_string
    repository = f"{hostvars['base_apt_store_uri']}/{apt_lock.prefix}"
    assert f"URIs: {repository}" in source
    assert "Signed-By: /etc/apt/keyrings/dml-store.asc" in source
    # What apt really uses: every package index it knows, besides dpkg's own status.
    indexes = {
        fields[1]
        for fields in (line.split() for line in host.check_output("apt-cache policy").splitlines())
        if len(fields) > 2 and fields[0].isdigit() and fields[1] != "/var/lib/dpkg/status"
    }
    assert indexes == {repository}


def test_installed_packages_are_exactly_the_apt_lock(host: Any, hostvars: dict[str, Any], apt_lock: Any) -> None:
    """Every Debian package on the host is in the apt lock, at the locked version."""
    from disposable.packages.aptlock import compare_installed

    out = host.check_output("dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}:${Architecture}\\t${Version}\\n'")
    installed = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status[1:2] == "i":
            installed[name] = version
    result = compare_installed(apt_lock, installed)
    assert not result.extra, f"installed but not in the apt lock: {result.extra}"
    assert not result.different, f"installed at another version than the lock: {result.different}"


def test_ssh_refuses_root_and_passwords(host: Any, spec: dict[str, Any]) -> None:
    effective = host.check_output(
        "sshd -T 2>/dev/null | grep -Ei '^(permitrootlogin|passwordauthentication|maxauthtries) '"
    )
    settings = dict(line.split(" ", 1) for line in effective.splitlines())
    assert settings["permitrootlogin"] == spec["base_ssh_permit_root_login"]
    assert settings["passwordauthentication"] == "no"
    assert settings["maxauthtries"] == str(spec["base_ssh_max_auth_tries"])


def test_unattended_upgrades_never_touch_the_gpu_stack(
    host: Any, spec: dict[str, Any], hostvars: dict[str, Any]
) -> None:
    config = host.file("/etc/apt/apt.conf.d/52disposable-unattended-upgrades").content_string
    for pattern in spec["base_unattended_upgrades_blacklist"]:
        assert f'"{pattern}";' in config
    assert host.package("unattended-upgrades").is_installed
    # With the package store a host is patched by a new apt lock and a rebuild, never in place.
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    from_store = hostvars.get("base_apt_source", spec["base_apt_source"]) == "store"
    assert ('APT::Periodic::Unattended-Upgrade "0";' in periodic) == from_store


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
