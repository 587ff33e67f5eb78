"""The local environment end to end, and the faults a user will meet. Tests run in order
and share one environment; the last one destroys it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, Invoke, lxc_names

from disposable.hosts.ansible import ansible_env

STATE = REPO / ".state" / "local"


def _recap_changed(output: str) -> int:
    match = re.search(r"dml-local-1\s*\|\s*\d+\s*\|\s*(\d+)\s*\|", output)
    assert match, "no configure recap in the output"
    return int(match.group(1))


def test_rebuild_survives_a_container_deleted_outside_terraform(invoke: Invoke) -> None:
    """The one full rebuild of the suite (the GPU stack makes it take minutes): it starts
    from an environment whose container was deleted behind Terraform's back."""
    code, _ = invoke("provision")
    assert code == 0
    subprocess.run(["lxc", "delete", "--force", "dml-local-1"], check=True)
    code, out = invoke("drift")
    assert code == 2, "a deleted container is drift (exit 2)"
    assert "dml-local-1 (lxd_container) was deleted out of band" in out
    code, out = invoke("rebuild", timeout=2400)
    assert code == 0
    assert "was deleted outside Terraform" in out
    for stage in ("destroy", "provision", "configure", "verify", "fingerprint"):
        assert re.search(rf"^{stage}\s+\| ok\s+\| [\dm.]+s", out, re.MULTILINE), f"no timing row for {stage}"
    assert "dml-local-1" in lxc_names("instance")
    assert "Health: dml-local-1" in out


def test_second_configure_changes_nothing(invoke: Invoke) -> None:
    code, out = invoke("configure")
    assert code == 0
    assert _recap_changed(out) == 0


def test_drift_is_clean_after_a_rebuild(invoke: Invoke) -> None:
    code, out = invoke("drift")
    assert code == 0, "a freshly rebuilt environment must show no drift"
    assert "Drift: none" in out


def _on_host(*command: str) -> None:
    subprocess.run(["lxc", "exec", "dml-local-1", "--", *command], check=True)


SITE = "/opt/demand-predictor/venv/lib/python3.11/site-packages"


def test_drift_names_out_of_band_changes_and_configure_repairs_them(invoke: Invoke) -> None:
    # Changes made behind the tools' back, as a person with a root shell would.
    _on_host("systemctl", "stop", "demand-predictor")
    _on_host("sed", "-i", 's/"max_batch": 64/"max_batch": 8/', "/etc/demand-predictor/config.json")
    _on_host("apt-mark", "unhold", "nvidia-cuda-toolkit", "nvidia-kernel-dkms", "linux-image-amd64")
    # Inside the venv: a file of an installed package edited, a file no package installed.
    _on_host("sh", "-c", f"echo '# patched' >> {SITE}/fastapi/__init__.py")
    _on_host("sh", "-c", f"echo 'import os' > {SITE}/sitecustomize.py")
    code, out = invoke("drift")
    assert code == 2, "out-of-band changes are drift (exit 2)"
    assert "dml-local-1 | inference_service : Write the service configuration" in out
    assert "dml-local-1 | inference_service : Enable and start the service" in out
    assert "dml-local-1 | cuda : Hold the CUDA toolkit" in out
    for package in ("nvidia-kernel-dkms", "linux-image-amd64", "nvidia-cuda-toolkit"):
        assert f"dml-local-1 | {package} is not held (its role holds it)" in out, package
    assert "venv: fastapi/__init__.py was edited" in out
    assert "venv: sitecustomize.py belongs to no installed package" in out
    assert '-    "max_batch": 8' in out or '+    "max_batch": 64' in out, "the --diff shows the edited value"
    code, out = invoke("configure")
    assert code == 0 and _recap_changed(out) > 0
    code, out = invoke("drift")
    assert code == 0 and "Drift: none" in out
    # Repaired means identical: the fingerprint equals the one the rebuild recorded.
    code, out = invoke("fingerprint")
    assert code == 0 and "Fingerprint: identical to" in out


def test_ssh_uses_the_environment_key_and_known_hosts(invoke: Invoke) -> None:
    code, out = invoke("ssh", "--", "hostname")
    assert code == 0 and "dml-local-1" in out
    known_hosts = (STATE / "ssh" / "known_hosts").read_text()
    assert known_hosts.count("\n") >= 1


def test_failed_configure_leaves_state_consistent_and_rerun_converges(invoke: Invoke) -> None:
    # Break the host the way an interrupted deploy would: the venv and the unit are gone.
    subprocess.run(
        [
            "lxc",
            "exec",
            "dml-local-1",
            "--",
            "rm",
            "-rf",
            "/opt/demand-predictor/venv",
            "/etc/systemd/system/demand-predictor.service",
        ],
        check=True,
    )
    # A configure that fails half-way (a wheelhouse bundle that does not exist).
    env_file = STATE / "broken-vars.json"
    env_file.write_text(json.dumps({"python_runtime_wheelhouse_descriptor": "/nonexistent/wheelhouse-cpu.json"}))
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(REPO / "inventories" / "local.disposable.yml"),
            str(REPO / "ansible" / "site.yml"),
            "-e",
            f"@{env_file}",
        ],
        cwd=REPO,
        env={**os.environ, **ansible_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "failed=1" in proc.stdout
    # Terraform's view is untouched: no drift.
    code, out = invoke("plan")
    assert code == 0 and "No changes" in out
    code, out = invoke("configure")
    assert code == 0 and _recap_changed(out) > 0
    code, out = invoke("verify")
    assert code == 0


def test_invalid_variables_create_nothing(invoke: Invoke) -> None:
    before = lxc_names("instance"), lxc_names("network")
    code, out = invoke("provision", "--var", "network_cidr=10.150.77.5/24")
    assert code != 0 and "network_cidr must be an IPv4 network address" in out
    code, out = invoke("provision", "--var", "host_count=0")
    assert code != 0 and "host_count=0: must be a whole number >= 1" in out
    code, out = invoke("provision", "--env", "staging")
    assert code != 0 and "Unknown environment 'staging'" in out
    assert (lxc_names("instance"), lxc_names("network")) == before


def test_concurrent_provision_waits_or_fails_on_the_lock(invoke: Invoke) -> None:
    """Second run with no patience fails clearly while the first holds the lock; state stays valid."""
    first = invoke.popen("provision", "--var", "host_count=2")
    lock_info = STATE / ".terraform.tfstate.lock.info"
    deadline = time.monotonic() + 60
    while not lock_info.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lock_info.exists(), "the first provision never took the state lock"
    code, out = invoke("provision", "--var", "host_count=2", "--lock-timeout", "0s")
    first_out, _ = first.communicate(timeout=300)
    print(first_out[-3000:])
    assert first.returncode == 0
    assert code != 0 and "state is locked by another run" in out and "Nothing was changed" in out
    assert {"dml-local-1", "dml-local-2"} <= lxc_names("instance")
    outputs = json.loads((STATE / "outputs.json").read_text())
    inference = [h["name"] for h in outputs["hosts"]["value"] if "inference" in h["groups"]]
    assert inference == ["dml-local-1", "dml-local-2"]
    # Back to one host; a patient second run would simply have waited its turn.
    code, out = invoke("provision", "--var", "host_count=1")
    assert code == 0 and "dml-local-2" not in lxc_names("instance")


def test_bake_then_rebuild_from_image_is_fast_and_identical(invoke: Invoke) -> None:
    """The golden image: bake the converged host's slow layers, rebuild from it; the spec
    passes (verify stage) and the fingerprint equals the one of the full rebuild."""
    # A golden image left by an earlier run (same roles, same hash) would make bake a no-op:
    # remove it so this test really bakes.
    images = subprocess.run(["lxc", "image", "list", "--format=csv", "-c", "l"], capture_output=True, text=True)
    for alias in (line for line in images.stdout.split() if line.startswith("dml-gpu-")):
        subprocess.run(["lxc", "image", "delete", alias], check=True)
    code, out = invoke("bake", timeout=1800)
    assert code == 0
    alias = re.search(r"Bake: (dml-gpu-[0-9a-f]{12}) published", out)
    assert alias, "bake names the image it published"
    assert "dml-bake-" not in "".join(lxc_names("instance")), "the bake copy is removed"
    code, out = invoke("rebuild", "--from-image", timeout=1800)
    assert code == 0
    assert "Fingerprint: identical to" in out, "a host from the golden image must equal a host built from scratch"
    record = json.loads((STATE / "last-rebuild.json").read_text())
    assert record["from_image"] == alias.group(1)
    assert record["fingerprint_changes"] == []
    configure = next(s for s in record["stages"] if s["name"] == "configure")
    print(f"rebuild --from-image: {record['total_seconds']}s in all, configure {configure['seconds']}s")
    code, out = invoke("report")
    assert code == 0
    assert (STATE / "reports" / "stage-durations.png").stat().st_size > 1000


def test_half_destroyed_environment_is_cleaned_up(invoke: Invoke) -> None:
    # The state is lost while the container, profile and network still exist.
    (STATE / "terraform.tfstate").unlink()
    code, out = invoke("destroy")
    assert code == 0 and "half-destroyed" in out
    assert "dml-local-1" not in lxc_names("instance")
    assert "dml-local" not in lxc_names("network") and "dml-local" not in lxc_names("profile")


def test_destroy_is_idempotent_and_complete(invoke: Invoke) -> None:
    code, out = invoke("destroy")
    assert code == 0
    assert not (STATE / "outputs.json").exists()
    code, out = invoke("status")
    assert code != 0 and "invoke provision" in out
