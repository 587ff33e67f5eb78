"""The one retry of `terraform apply`: terraform-provider-lxd 1.5.0's client race (see
LXD_CLIENT_RACE in disposable/engine/terraform.py). The race itself needs two goroutines
to interleave inside the provider and cannot be triggered on demand; the engine here is a
real subprocess that prints the error line the failed integration run reported (in
Terraform's error format; the surrounding lines are illustrative) and counts its calls."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from disposable.engine.binary import Engine
from disposable.engine.terraform import LXD_CLIENT_RACE, Terraform
from disposable.environments import get_environment
from disposable.errors import DisposableError

RACE_OUTPUT = f"""lxd_container.host["dml-local-2"]: Creating...
module.hosts.lxd_container.host["dml-local-1"]: Creation complete after 4s [id=dml-local-1]

Error: {LXD_CLIENT_RACE}

  with module.hosts.lxd_container.host["dml-local-2"],
  on ../../modules/lxd_hosts/main.tf line 33, in resource "lxd_container" "host":
"""


def _engine(tmp_path: Path, outcomes: list[tuple[int, str]]) -> tuple[Engine, Path]:
    """An engine that answers the n-th call with outcomes[n] and records its arguments."""
    calls = tmp_path / "calls"
    script = tmp_path / "fake_terraform.py"
    script.write_text(
        "import json, pathlib, sys\n"
        f"calls = pathlib.Path({str(calls)!r})\n"
        f"outcomes = {outcomes!r}\n"
        "n = len(calls.read_text().splitlines()) if calls.exists() else 0\n"
        "with calls.open('a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "code, text = outcomes[min(n, len(outcomes) - 1)]\n"
        "print(text)\n"
        "sys.exit(code)\n"
    )
    return Engine("terraform", (sys.executable, str(script)), "1.11.4"), calls


def _calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_the_race_is_applied_once_more_and_said(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, calls = _engine(tmp_path, [(1, RACE_OUTPUT), (0, "Apply complete! Resources: 1 added.")])
    result = Terraform(get_environment("local"), engine=engine).apply("-replace=x")
    assert result.returncode == 0
    assert _calls(calls) == 2
    assert all('"-replace=x"' in line for line in calls.read_text().splitlines()), "the retry keeps the arguments"
    assert "raced building its LXD client" in capsys.readouterr().out


def test_a_second_race_in_a_row_fails(tmp_path: Path, state_dir: Path) -> None:
    engine, calls = _engine(tmp_path, [(1, RACE_OUTPUT)])
    with pytest.raises(DisposableError, match="terraform apply failed"):
        Terraform(get_environment("local"), engine=engine).apply()
    assert _calls(calls) == 2


def test_other_apply_errors_are_not_retried(tmp_path: Path, state_dir: Path) -> None:
    engine, calls = _engine(tmp_path, [(1, "Error: Failed creating instance: no space left on device")])
    with pytest.raises(DisposableError, match="terraform apply failed"):
        Terraform(get_environment("local"), engine=engine).apply()
    assert _calls(calls) == 1


def test_cloud_environments_are_not_retried(tmp_path: Path, state_dir: Path) -> None:
    """The race is the LXD provider's; the same words from another stack are its own error."""
    engine, calls = _engine(tmp_path, [(1, RACE_OUTPUT)])
    with pytest.raises(DisposableError):
        Terraform(get_environment("gcp"), {"project_id": "p"}, engine=engine).apply()
    assert _calls(calls) == 1
