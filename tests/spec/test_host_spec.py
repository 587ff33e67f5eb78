"""What every host must be, whatever its role (testinfra_hosts: every host of the environment).
Each assertion names the spec value it checks."""

from __future__ import annotations

from glob import glob
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


def test_ssh_refuses_root_and_passwords(host: Any, spec: dict[str, Any], hostvars: dict[str, Any]) -> None:
    """The effective configuration (`sshd -T`), not only the file: key-only, no root, only
    the deploy user, no forwarding; and the project's drop-in is the only one (it wins)."""
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert effective["permitrootlogin"] == spec["base_ssh_permit_root_login"]
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["allowusers"] == hostvars["ansible_user"]
    assert effective["maxauthtries"] == str(spec["base_ssh_max_auth_tries"])
    for forwarding in ("allowtcpforwarding", "allowagentforwarding", "x11forwarding"):
        assert effective[forwarding] == "no", forwarding
    assert host.check_output("ls /etc/ssh/sshd_config.d").split() == [spec["base_ssh_dropin"]]


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


def test_extra_ca_certificates_are_exactly_the_environments(
    host: Any, spec: dict[str, Any], hostvars: dict[str, Any]
) -> None:
    """The certificates the environment chose (base_ca_source_dir: the local cloud pushes the
    controller's local store, GCP none by default), trusted, and no others."""
    source = hostvars.get("base_ca_source_dir", spec["base_ca_source_dir"])
    found = sorted(glob(f"{source}/**/*.crt", recursive=True)) if source else []
    expected = sorted(Path(p).name for p in found)
    directory = spec["base_ca_certificates_dir"]
    deployed = host.run(f"ls {directory}").stdout.split()
    assert deployed == expected, f"expected {expected} in {directory}"
    bundle = "".join(host.file("/etc/ssl/certs/ca-certificates.crt").content_string.split())
    for path in found:
        assert "".join(Path(path).read_text().split())[60:200] in bundle, f"{path} is not in the host's CA bundle"
