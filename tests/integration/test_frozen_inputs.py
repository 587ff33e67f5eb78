"""Frozen inputs, for real: a package the roles install comes from an archive the test makes
move (tests/fixtures/apt_archive.py stands in for Debian for that one package, since the
real archive cannot be made to drop a version on demand); every other package is the
committed apt lock's, from the real package store. Real LXD hosts, Terraform, Ansible.

The hosts here are in a group of their own (`canary`): they get the base role (which
installs the lock's site packages) and the base spec, not the GPU stack, so each rebuild
takes about a minute. The environment is destroyed at the end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, Invoke

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
from apt_archive import FakeArchive, FakePackage  # noqa: E402

STATE = REPO / ".state" / "local"
CANARY_OLD = FakePackage("dml-canary", "1.0-1")
CANARY_NEW = FakePackage("dml-canary", "1.1-1")
CANARY_HOSTS = ("--var", 'groups=["canary"]')


def _record() -> dict[str, object]:
    record: dict[str, object] = json.loads((STATE / "last-rebuild.json").read_text())
    return record


def _instance_ids() -> dict[str, str]:
    out = subprocess.run(["lxc", "list", "--format=json"], capture_output=True, text=True, check=True).stdout
    return {
        i["name"]: i["config"].get("volatile.uuid", "") for i in json.loads(out) if i["name"].startswith("dml-local-")
    }


@pytest.fixture(scope="module")
def moving_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeArchive, dict[str, str]]:
    """The fixture archive offering dml-canary 1.0-1, and a copy of locks/apt whose inputs add
    that archive and the package (as a site package: every host installs it)."""
    root = tmp_path_factory.mktemp("frozen-inputs")
    archive = FakeArchive(root / "archive")
    archive.publish([CANARY_OLD])
    locks = root / "locks"
    shutil.copytree(REPO / "locks" / "apt", locks)
    inputs = (locks / "debian-12.in.yml").read_text()
    inputs = inputs.replace("\nsources:\n", "\nsources:\n" + archive.apt_source_yaml(), 1)
    inputs = inputs.replace("site_packages: []", "site_packages: [dml-canary]")
    (locks / "debian-12.in.yml").write_text(inputs)
    env = {"DML_APT_LOCK_DIR": str(locks), "DML_EMPTY_STORE": str(root / "empty-store")}
    yield archive, env
    shutil.rmtree(root, ignore_errors=True)


def test_lock_adds_the_package_and_touches_nothing_else(invoke: Invoke, moving_archive: tuple) -> None:
    archive, env = moving_archive
    committed = {p.name: p.read_bytes() for p in (REPO / "locks" / "apt").iterdir()}
    code, out = invoke("lock", "--apt", env=env)
    assert code == 0
    assert "dml-canary: added 1.0-1 (not a security update, fixture)" in out
    after = {p.name: p.read_bytes() for p in (REPO / "locks" / "apt").iterdir()}
    assert after == committed, "invoke lock --apt with DML_APT_LOCK_DIR changed the committed lock"


def test_frozen_rebuild_is_identical_after_upstream_drops_the_version(invoke: Invoke, moving_archive: tuple) -> None:
    archive, env = moving_archive
    code, out = invoke("rebuild", "--frozen", *CANARY_HOSTS, env=env, timeout=1200)
    assert code == 0
    first = _record()
    assert first["apt_lock"]["stale"] is False  # type: ignore[index]
    # Upstream publishes 1.1-1 and drops 1.0-1, as Debian's archive does.
    archive.publish([CANARY_NEW])
    code, out = invoke("rebuild", "--frozen", *CANARY_HOSTS, env=env, timeout=1200)
    assert code == 0
    assert "Fingerprint: identical to" in out, "a frozen rebuild from the store must give the same hosts"
    second = _record()
    assert second["fingerprint"]["hash"] == first["fingerprint"]["hash"]  # type: ignore[index]
    versions = subprocess.run(
        ["lxc", "exec", "dml-local-1", "--", "dpkg-query", "-W", "-f=${Version}", "dml-canary"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert versions == "1.0-1"


def test_frozen_with_an_empty_store_fails_before_anything_is_created(invoke: Invoke, moving_archive: tuple) -> None:
    archive, env = moving_archive
    before = _instance_ids()
    empty = {**env, "DML_APT_STORE_DIR": env["DML_EMPTY_STORE"]}
    code, out = invoke("rebuild", "--frozen", *CANARY_HOSTS, env=empty, timeout=600)
    assert code != 0
    assert "dml-canary 1.0-1 (all, from fixture)" in out and "invoke lock --apt" in out
    stages = {s["name"]: s["status"] for s in _record()["stages"]}  # type: ignore[union-attr]
    assert stages["inputs"] == "failed" and stages["destroy"] == stages["provision"] == "skipped"
    assert _instance_ids() == before, "nothing was destroyed or created"


def test_default_mode_with_an_empty_store_succeeds_and_says_lock_stale(invoke: Invoke, moving_archive: tuple) -> None:
    archive, env = moving_archive
    empty = {**env, "DML_APT_STORE_DIR": env["DML_EMPTY_STORE"]}
    code, out = invoke("rebuild", *CANARY_HOSTS, env=empty, timeout=1500)
    assert code == 0
    assert "LOCK STALE" in out and "dml-canary" in out and "invoke lock --apt" in out
    record = _record()
    assert record["apt_lock"]["stale"] is True  # type: ignore[index]
    assert record["apt_lock"]["moved"] == ["dml-canary: 1.0-1 -> 1.1-1 (not a security update, fixture)"]  # type: ignore[index]
    code, out = invoke("report", env=empty)
    report = (STATE / "reports" / "report.md").read_text()
    assert "LOCK STALE" in report and "dml-canary: 1.0-1 -> 1.1-1" in report


def test_adopting_the_move_with_lock_then_frozen_passes(invoke: Invoke, moving_archive: tuple) -> None:
    archive, env = moving_archive
    code, out = invoke("lock", "--apt", env=env)
    assert code == 0 and "dml-canary: 1.0-1 -> 1.1-1 (not a security update, fixture)" in out
    code, out = invoke("rebuild", "--frozen", *CANARY_HOSTS, env=env, timeout=1200)
    assert code == 0
    assert _record()["apt_lock"]["stale"] is False  # type: ignore[index]
    code, out = invoke("destroy")
    assert code == 0
