"""Ansible runs through Mitogen's strategy (disposable/hosts/ansible.py): it is really loaded
by ansible-playbook, can be switched off, and a missing Mitogen is an error that names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from disposable.errors import DisposableError
from disposable.hosts import ansible

# Two module tasks each print the PID of the Python process that ran the module: Mitogen runs
# every module of a host in one interpreter, Ansible's own strategy starts one per task.
PLAYBOOK = """- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: First module task
      ansible.builtin.command: sh -c 'echo $PPID'
      changed_when: false
      register: first
    - name: Second module task
      ansible.builtin.command: sh -c 'echo $PPID'
      changed_when: false
      register: second
    - name: Report
      ansible.builtin.debug:
        msg: "module interpreters: {{ first.stdout }} {{ second.stdout }}"
"""


def _module_interpreters(env: dict[str, str], tmp_path: Path) -> list[str]:
    playbook = tmp_path / "two.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.split("module interpreters: ", 1)[1].split('"', 1)[0].split()


def test_invoke_runs_ansible_with_mitogens_linear_strategy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ansible.STRATEGY_SETTING, raising=False)
    env = ansible.ansible_env()
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (Path(env["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()
    first, second = _module_interpreters(env, tmp_path)
    assert first == second, "both modules ran in Mitogen's one interpreter for the host"
    monkeypatch.setenv(ansible.STRATEGY_SETTING, "linear")
    first, second = _module_interpreters(ansible.ansible_env(), tmp_path)
    assert first != second, "Ansible's own strategy starts an interpreter per task"


def test_linear_runs_ansibles_own_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ansible.STRATEGY_SETTING, "linear")
    env = ansible.ansible_env()
    assert env["ANSIBLE_STRATEGY"] == "linear"
    assert "ANSIBLE_STRATEGY_PLUGINS" not in env


def test_a_missing_mitogen_is_an_error_that_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ansible.STRATEGY_SETTING, raising=False)
    monkeypatch.setitem(sys.modules, "ansible_mitogen", None)  # import raises ImportError
    with pytest.raises(DisposableError, match="Mitogen .*mitogen.* is missing") as error:
        ansible.ansible_env()
    assert "bootstrap.sh setup" in str(error.value) and "linear" in str(error.value)


def test_an_unknown_mitogen_strategy_lists_the_real_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ansible.STRATEGY_SETTING, "mitogen_fast")
    with pytest.raises(DisposableError, match="no such strategy") as error:
        ansible.ansible_env()
    assert "mitogen_linear" in str(error.value)


def test_a_strategy_chosen_for_a_block_wins_over_the_setting_and_ends_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ansible.STRATEGY_SETTING, "mitogen_linear")
    with ansible.with_strategy("linear"):
        assert ansible.strategy_env() == {"ANSIBLE_STRATEGY": "linear"}
    assert ansible.strategy_env()["ANSIBLE_STRATEGY"] == "mitogen_linear"
