"""The pure parts of drift, fingerprint and bake. The real thing - drift named on a real
container, identical fingerprints across real rebuilds, a baked LXD image - is in
tests/integration/test_local_pipeline.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from disposable import provisioning
from disposable.errors import DisposableError
from disposable.local import bake
from disposable.proof import fingerprint
from disposable.proof.drift import DriftReport
from disposable.proof.fingerprint import Fingerprint, Recorded, differences

FACTS = {
    "packages": {"curl:amd64": "7.88.1-10+deb12u14", "nvidia-smi:amd64": "535.309.01-0+deb12u1"},
    "holds": ["nvidia-smi"],
    "files": {"/etc/demand-predictor/config.json": "ab" * 32},
    "venv": ["torch==2.13.0"],
}


def test_fingerprint_hash_is_canonical_and_sensitive() -> None:
    reordered = json.loads(json.dumps(FACTS, sort_keys=False))
    reordered["packages"] = dict(reversed(list(FACTS["packages"].items())))
    one = Fingerprint("2026-11-27T00:00:00+00:00", {"h1": FACTS})
    two = Fingerprint("2026-11-28T00:00:00+00:00", {"h1": reordered})
    assert one.hash == two.hash, "key order and the time taken are not part of the fingerprint"
    changed = json.loads(json.dumps(FACTS))
    changed["holds"] = []
    assert Fingerprint("t", {"h1": changed}).hash != one.hash


def test_differences_name_host_key_and_values() -> None:
    changed = json.loads(json.dumps(FACTS))
    changed["packages"]["curl:amd64"] = "7.88.1-10+deb12u15"
    del changed["files"]["/etc/demand-predictor/config.json"]
    old, new = Fingerprint("t", {"h1": FACTS}), Fingerprint("t", {"h1": changed, "h2": FACTS})
    assert differences(old, new) == [
        "h1: files./etc/demand-predictor/config.json: " + "ab" * 32 + " -> (absent)",
        "h1: packages.curl:amd64: 7.88.1-10+deb12u14 -> 7.88.1-10+deb12u15",
        "h2: added",
    ]
    assert differences(old, old) == []


def test_same_code_needs_the_same_clean_commit() -> None:
    now = Fingerprint("t", {}, "a" * 40)
    assert Recorded(now, Fingerprint("t", {}, "a" * 40), []).same_code
    assert not Recorded(now, Fingerprint("t", {}, "b" * 40), []).same_code
    dirty = Fingerprint("t", {}, "a" * 40 + "+dirty")
    assert not Recorded(dirty, dirty, []).same_code
    assert not Recorded(now, None, None).same_code


def test_saved_fingerprints_are_found_in_order(state_dir: Path) -> None:
    first = fingerprint.save("local", Fingerprint("2026-11-27T01:00:00+00:00", {"h1": FACTS}, "c1"))
    second = fingerprint.save("local", Fingerprint("2026-11-27T02:00:00+00:00", {"h1": FACTS}, "c1"))
    assert fingerprint.previous("local") == second
    assert fingerprint.previous("local", before=second) == first
    assert fingerprint.load(first).hosts == {"h1": FACTS}
    first.write_text("{not json")
    with pytest.raises(Exception, match="is not a fingerprint file"):
        fingerprint.load(first)


def test_probe_runs_with_plain_python_and_skips_bytecode(tmp_path: Path) -> None:
    """The probe itself, run here for real on a small tree (it needs only the stdlib)."""
    (tmp_path / "app" / "__pycache__").mkdir(parents=True)
    (tmp_path / "app" / "main.py").write_text("print('hi')\n")
    (tmp_path / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "current").symlink_to(tmp_path / "app")
    config = {
        "venv_python": str(tmp_path / "missing" / "python"),
        "file_roots": [str(tmp_path / "app"), str(tmp_path / "current"), str(tmp_path / "absent")],
        "driver_packages": [],
        "cuda_packages": [],
        "users": ["root"],
        "units": [],
    }
    out = subprocess.run(
        [sys.executable, str(fingerprint.PROBE), json.dumps(config)], capture_output=True, text=True, check=True
    ).stdout
    facts = json.loads(out)
    (tmp_path / "app" / "main.py").chmod(0o644)
    assert facts["files"] == {
        str(tmp_path / "app" / "main.py"): hashlib.sha256(b"print('hi')\n").hexdigest() + " 0644 root:root",
        str(tmp_path / "current"): f"-> {tmp_path / 'app'}",
        str(tmp_path / "absent"): "absent",
    }
    assert facts["errors"] == []
    assert facts["venv"] == [] and facts["users"]["root"].startswith("root:")


def test_drift_runs_plan_check_and_probe_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the hosts deleted out of band are known (the other checks skip them), the plan,
    the check-mode playbook and the host probe run at the same time: each of the stand-ins
    below waits until all three have started, which a sequential run never reaches."""
    import threading

    from disposable.environments import get_environment
    from disposable.proof import drift

    started = threading.Barrier(3, timeout=10)
    seen: dict[str, Any] = {}

    def plan() -> list[str]:
        started.wait()
        return ["terraform would module.hosts: update"]

    def configuration(env: Any, gone: set[str]) -> dict[str, list[str]]:
        seen["configuration"] = gone
        started.wait()
        return {"h1": []}

    def probe(env: str, gone: set[str]) -> tuple[dict[str, list[str]], str]:
        seen["probe"] = gone
        started.wait()
        return {"h1": ["venv: evil.py belongs to no installed package"]}, "compared with the baseline"

    monkeypatch.setattr(drift, "deleted_infrastructure", lambda env: (["h2 (lxd_container) was deleted"], {"h2"}, plan))
    monkeypatch.setattr(drift, "configuration_drift", configuration)
    monkeypatch.setattr(drift, "host_drift", probe)
    report = drift.detect(get_environment("local"))
    assert report.infrastructure == ["h2 (lxd_container) was deleted", "terraform would module.hosts: update"]
    assert report.hosts == {"h1": ["venv: evil.py belongs to no installed package"]}
    assert seen == {"configuration": {"h2"}, "probe": {"h2"}}


def test_a_failed_plan_fails_drift_after_the_other_checks_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from disposable.environments import get_environment
    from disposable.proof import drift

    ended: list[str] = []

    def plan() -> list[str]:
        raise DisposableError("terraform plan failed", "see above")

    monkeypatch.setattr(drift, "deleted_infrastructure", lambda env: ([], set(), plan))
    monkeypatch.setattr(drift, "configuration_drift", lambda env, gone: ended.append("check") or {})
    monkeypatch.setattr(drift, "host_drift", lambda env, gone: (ended.append("probe") or {}, ""))
    with pytest.raises(DisposableError, match="terraform plan failed"):
        drift.detect(get_environment("local"))
    assert sorted(ended) == ["check", "probe"]


def test_drift_report_items_and_clean() -> None:
    assert DriftReport().clean
    assert DriftReport(configuration={"h1": []}).clean
    report = DriftReport(
        ["dml-local-1 (lxd_container) was deleted out of band"], {"h1": ["cuda : Hold the CUDA toolkit"]}
    )
    assert not report.clean
    assert report.items() == [
        "infrastructure: dml-local-1 (lxd_container) was deleted out of band",
        "h1: cuda : Hold the CUDA toolkit",
    ]


def test_generalise_removes_identity_and_the_service(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    keep = rootfs / "usr" / "lib" / "nvidia" / "keep.so"
    for path in [
        rootfs / "etc" / "ssh" / "ssh_host_ed25519_key",
        rootfs / "etc" / "demand-predictor" / "config.json",
        rootfs / "opt" / "demand-predictor" / "releases" / "abc" / "app.py",
        rootfs / "home" / "deploy" / ".ssh" / "authorized_keys",
        rootfs / "etc" / "machine-id",
        keep,
    ]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (rootfs / "opt" / "demand-predictor" / "venv").mkdir()
    (rootfs / "opt" / "demand-predictor" / "app").symlink_to("releases/abc")
    bake._generalise(rootfs)
    assert not list((rootfs / "etc" / "ssh").iterdir())
    assert not (rootfs / "etc" / "demand-predictor").exists()
    assert not (rootfs / "opt" / "demand-predictor" / "releases").exists()
    assert not (rootfs / "opt" / "demand-predictor" / "app").is_symlink()
    assert (rootfs / "opt" / "demand-predictor" / "venv").is_dir(), "the Python runtime is a baked layer"
    assert not (rootfs / "home" / "deploy" / ".ssh" / "authorized_keys").exists()
    assert (rootfs / "etc" / "machine-id").read_text() == ""
    assert keep.exists()


def test_baked_alias_follows_the_roles_inputs() -> None:
    alias = bake.baked_alias()
    assert alias.startswith("dml-gpu-") and len(alias) == len("dml-gpu-") + 12
    assert alias == bake.baked_alias()
    names = {p.name for p in bake.bake_inputs()}
    assert "requirements.txt" in names and "build.sh" in names


def test_gcp_bake_commands_use_an_image_family() -> None:
    commands = bake.gcp_commands("my-project", "us-central1-a", "dml-gcp-1")
    assert commands[0].startswith("gcloud compute instances stop dml-gcp-1")
    assert "--source-disk dml-gcp-1" in commands[1] and "--family dml-gpu" in commands[1]
    assert commands[2].startswith("gcloud compute instances start")


def test_last_variables_are_remembered_until_destroy(state_dir: Path) -> None:
    assert provisioning.last_variables("local") == {}
    provisioning.last_variables_file("local").write_text(json.dumps({"host_count": "2"}))
    assert provisioning.last_variables("local") == {"host_count": "2"}


def _probe_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fingerprint_probe", fingerprint.PROBE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_venv_files_are_checked_against_their_record(tmp_path: Path) -> None:
    """An edited file inside an installed package, a deleted one and a file no wheel
    installed are each named (the venv is otherwise only a list of versions); files of 1 MiB
    and more (hashed by a thread pool) are checked like the small ones."""
    import base64

    site = tmp_path / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg-1.0.dist-info").mkdir()
    big = b"w" * (1 << 20)
    body = {
        "pkg/__init__.py": b"x = 1\n",
        "pkg/core.py": b"y = 2\n",
        "pkg/gone.py": b"z = 3\n",
        "pkg/lib.so": big,
        "pkg/ok.so": big + b"!",
    }
    record = []
    for name, data in body.items():
        (site / name).write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("pkg-1.0.dist-info/RECORD,,")
    (site / "pkg-1.0.dist-info" / "RECORD").write_text("\n".join(record) + "\n")
    probe = _probe_module()
    assert probe.record_check(str(site)) == {"modified": [], "missing": [], "unrecorded": []}
    (site / "pkg" / "core.py").write_bytes(b"y = 'patched'\n")
    (site / "pkg" / "lib.so").write_bytes(big[:-1] + b"v")
    (site / "pkg" / "gone.py").unlink()
    (site / "pkg" / "backdoor.py").write_text("import os\n")
    assert probe.record_check(str(site)) == {
        "modified": ["pkg/core.py", "pkg/lib.so"],
        "missing": ["pkg/gone.py"],
        "unrecorded": ["pkg/backdoor.py"],
    }


def test_a_probe_that_could_not_read_something_is_an_error() -> None:
    with pytest.raises(DisposableError) as error:
        fingerprint._probe_answer("dml-local-1", 3, json.dumps({"errors": ["apt-mark showhold: exit 100: E"]}), "")
    assert "Could not fingerprint dml-local-1: apt-mark showhold: exit 100" in str(error.value)
    with pytest.raises(DisposableError):
        fingerprint._probe_answer("dml-local-1", 0, "", "")
    assert fingerprint._probe_answer("h", 0, json.dumps({"packages": {"a": "1"}, "errors": []}), "") == {
        "packages": {"a": "1"}
    }


def test_the_fingerprint_watches_every_file_the_roles_deploy() -> None:
    """Derived from the roles' tasks, not a hand list; the venv is left to its RECORD check."""
    roots = fingerprint.probe_config()["file_roots"]
    for path in (
        "/etc/systemd/timesyncd.conf.d/disposable.conf",
        "/opt/demand-predictor/requirements.txt",
        "/etc/ssh/sshd_config.d",
        "/etc/ssh/sshd_config",
        "/etc/sudoers.d",
        "/etc/apt/keyrings/dml-store.asc",
        "/usr/local/share/ca-certificates/disposable-ml",
        "/etc/demand-predictor/config.json",
    ):
        assert path in roots, path
    assert "/opt/demand-predictor/venv" not in roots


def test_the_fingerprint_never_walks_a_top_level_directory_or_state() -> None:
    """/etc/nftables.conf is deployed, but walking /etc whole would read host keys and the
    machine-id, new on every rebuild (seen: 'identical' failed after every rebuild); the
    models directory is state that deploy-model changes, not drift."""
    config = fingerprint.probe_config()
    roots = config["file_roots"]
    assert "/etc/nftables.conf" in roots
    assert not [r for r in roots if r.count("/") < 2], roots
    assert not [r for r in roots if "{{" in r], "every watched path is rendered"
    assert "/opt/demand-predictor/models" in config["excluded"]


def test_the_probe_never_reads_per_instance_identity(tmp_path: Path) -> None:
    (tmp_path / "ssh").mkdir()
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config", "machine-id"):
        (tmp_path / "ssh" / name).write_text(name)
    found = _probe_module().files([str(tmp_path / "ssh")])
    assert sorted(Path(p).name for p in found) == ["sshd_config"]
