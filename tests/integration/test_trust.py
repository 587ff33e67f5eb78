"""Errors that never destroy state, teardown that always works, hosts that are what drift
says they are: each case made to happen on real LXD hosts, as it happens to users (a
killed provision, a host stopped behind Terraform's back, a lost outputs.json, a root
shell changing files). The hosts are base-only (`canary` group) so each step is quick;
the environment is destroyed at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, Invoke, lxc_names

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
from apt_archive import FakeArchive, FakePackage  # noqa: E402

STATE = REPO / ".state" / "local"
CANARY = ("--var", 'groups=["canary"]')


def _on(host: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["lxc", "exec", host, "--", *command], capture_output=True, text=True, check=check)


def test_a_provision_killed_while_creating_a_host_does_not_wedge_the_environment(invoke: Invoke) -> None:
    code, _ = invoke("destroy")
    assert code == 0
    provision = invoke.popen("provision", *CANARY)
    deadline = time.monotonic() + 120
    while "dml-local-1" not in lxc_names("instance") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "dml-local-1" in lxc_names("instance"), "the container never appeared"
    os.killpg(provision.pid, signal.SIGKILL)  # a cancelled CI job, an OOM kill, a closed terminal
    provision.wait()
    code, out = invoke("provision", *CANARY)
    assert code == 0, "the next provision must not fail on the half-created host"
    assert "removed objects Terraform does not know in the local environment: container dml-local-1" in out
    code, out = invoke("destroy")
    assert code == 0 and "dml-local-1" not in lxc_names("instance")
    code, out = invoke("rebuild", *CANARY, timeout=1200)
    assert code == 0


def test_host_keys_come_from_lxd_not_from_first_contact(invoke: Invoke) -> None:
    """A lost or corrupt outputs.json and a stale known_hosts must not make anything trust
    a key: keys are read through LXD every provision."""
    (STATE / "outputs.json").write_text("{not json")
    (STATE / "ssh" / "known_hosts").write_text(
        "10.150.77.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBogusBogusBogus0\n"
    )
    code, out = invoke("provision", *CANARY)
    assert code == 0
    assert "dml-local-1 host key(s) read through LXD" in out
    key = _on("dml-local-1", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    assert key in (STATE / "ssh" / "known_hosts").read_text()
    assert "Bogus" not in (STATE / "ssh" / "known_hosts").read_text()


def test_a_host_stopped_outside_terraform_is_named_and_started(invoke: Invoke) -> None:
    subprocess.run(["lxc", "stop", "--force", "dml-local-1"], check=True)
    code, out = invoke("configure")
    assert code != 0 and "Host(s) not running: dml-local-1 (Stopped)" in out
    code, out = invoke("provision", *CANARY)
    assert code == 0 and "started host(s) stopped outside Terraform: dml-local-1" in out
    code, out = invoke("verify")
    assert code == 0


def test_drift_names_unmanaged_changes_and_configure_repairs_what_the_roles_own(invoke: Invoke, tmp_path: Path) -> None:
    code, out = invoke("rebuild", *CANARY, timeout=1200)  # a verified rebuild: the drift baseline
    assert code == 0
    # A package from outside the lock, a drop-in that sorts before the project's, edits.
    archive = FakeArchive(tmp_path / "archive")
    deb = archive.build(FakePackage("dml-intruder", "0.1-1"))
    subprocess.run(["lxc", "file", "push", str(deb), "dml-local-1/tmp/intruder.deb"], check=True)
    _on("dml-local-1", "dpkg", "-i", "/tmp/intruder.deb")
    _on("dml-local-1", "sh", "-c", "echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/00-aaa.conf")
    _on("dml-local-1", "sh", "-c", "echo 'NTP=evil.example' >> /etc/systemd/timesyncd.conf.d/disposable.conf")
    # A grant for someone else: an edit that leaves the deploy user's own sudo working,
    # so drift can still look (a broken sudo is a probe error, exit 1, not drift).
    _on("dml-local-1", "sh", "-c", "echo 'intruder ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers.d/90-deploy")
    code, out = invoke("drift")
    assert code == 2
    assert "dml-intruder:all 0.1-1 is installed but not in the apt lock" in out
    assert "sshd: drop-in 00-aaa.conf sorts before the project's 00-disposable-hardening.conf" in out
    assert "files./etc/systemd/timesyncd.conf.d/disposable.conf" in out
    assert "files./etc/sudoers.d/90-deploy" in out
    code, out = invoke("configure")
    assert code == 0
    code, out = invoke("drift")
    assert code == 2, "what no role owns stays named until a rebuild"
    findings = out[out.index("Drift: host facts compared") :]  # not Ansible's --check task names
    assert "00-aaa.conf" not in findings and "timesyncd" not in findings, "configure repaired what base owns"
    assert "dml-intruder" in findings and "sudoers.d/90-deploy" in findings


def test_the_firewall_admits_ssh_only_from_the_controller(invoke: Invoke) -> None:
    """From a second host of the environment, SSH to the first is dropped; from the
    controller (the bridge gateway) it works."""
    code, out = invoke("provision", *CANARY, "--var", "host_count=2")
    assert code == 0
    code, out = invoke("configure")
    assert code == 0
    probe = (
        "import socket,sys; s=socket.socket(); s.settimeout(3)\n"
        "try:\n s.connect(('10.150.77.10', 22)); print('open')\n"
        "except socket.timeout: print('dropped')\n"
        "except OSError as e: print('refused', e)"
    )
    assert _on("dml-local-2", "python3", "-c", probe).stdout.strip() == "dropped"
    with socket.create_connection(("10.150.77.10", 22), timeout=5) as conn:
        assert conn.recv(64).startswith(b"SSH-2.0")
    code, _ = invoke("destroy")
    assert code == 0 and not {"dml-local-1", "dml-local-2"} & lxc_names("instance")
