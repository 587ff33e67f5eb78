"""The dynamic inventory: the pure mapping, and the real plugin run by ansible-inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from disposable.hosts.ansible import ansible_env
from disposable.hosts.contract import parse_outputs
from disposable.hosts.inventory import build

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def test_groups_and_hostvars(outputs: dict[str, Any], state_dir: Path) -> None:
    inv = build(parse_outputs(outputs))
    assert inv["inference"]["hosts"] == ["dml-local-1", "gpu-1"]
    assert inv["canary"]["hosts"] == ["gpu-1"]
    assert inv["gpu"]["hosts"] == ["gpu-1"] and inv["cpu_only"]["hosts"] == ["dml-local-1"]
    assert inv["env_local"]["hosts"] == ["dml-local-1", "gpu-1"]
    local = inv["_meta"]["hostvars"]["dml-local-1"]
    assert local["ansible_host"] == "10.150.77.10" and local["ansible_user"] == "deploy"
    assert "StrictHostKeyChecking=yes" in local["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=" + str(state_dir / "local" / "ssh" / "known_hosts") in local["ansible_ssh_common_args"]
    assert "ProxyCommand" not in local["ansible_ssh_common_args"]


def test_iap_hosts_go_through_a_tunnel(outputs: dict[str, Any], state_dir: Path) -> None:
    args = build(parse_outputs(outputs))["_meta"]["hostvars"]["gpu-1"]["ansible_ssh_common_args"]
    assert "gcloud compute start-iap-tunnel gpu-1 %p --listen-on-stdin --zone=us-central1-a" in args
    assert "StrictHostKeyChecking=no" not in args


def _ansible_inventory(state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ansible_env(), "DML_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(REPO / "inventories" / "local.disposable.yml"), "--list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_plugin_reads_the_cached_outputs(outputs: dict[str, Any], state_dir: Path) -> None:
    (state_dir / "local").mkdir(parents=True)
    (state_dir / "local" / "outputs.json").write_text(json.dumps(outputs))
    proc = _ansible_inventory(state_dir)
    assert proc.returncode == 0, proc.stderr
    inv = json.loads(proc.stdout)
    assert inv["_meta"]["hostvars"]["gpu-1"]["dml_gpu_type"] == "nvidia-tesla-t4"
    assert sorted(inv["inference"]["hosts"]) == ["dml-local-1", "gpu-1"]


def test_plugin_gives_every_host_the_environments_variables(outputs: dict[str, Any], state_dir: Path) -> None:
    """The state directory and the feature store's url reach Ansible (group `all`), as the
    roles need them; a url that stayed in Python would leave the service without its store."""
    outputs["feature_store"] = {"value": {"address": "10.150.77.3", "port": 6379, "url": "redis://10.150.77.3:6379/0"}}
    (state_dir / "local").mkdir(parents=True)
    (state_dir / "local" / "outputs.json").write_text(json.dumps(outputs))
    proc = _ansible_inventory(state_dir)
    assert proc.returncode == 0, proc.stderr
    for host_vars in json.loads(proc.stdout)["_meta"]["hostvars"].values():  # --list folds group vars in
        assert host_vars["dml_feature_store_url"] == "redis://10.150.77.3:6379/0"
        assert host_vars["dml_state_dir"] == str(state_dir / "local")


def test_plugin_names_the_missing_field(outputs: dict[str, Any], state_dir: Path) -> None:
    del outputs["hosts"]["value"][0]["ssh_user"]
    (state_dir / "local").mkdir(parents=True)
    (state_dir / "local" / "outputs.json").write_text(json.dumps(outputs))
    proc = _ansible_inventory(state_dir)
    assert proc.returncode != 0
    assert "missing field 'ssh_user'" in proc.stderr


def test_the_front_door_reaches_every_host_only_where_there_is_one(outputs: dict[str, Any], state_dir: Path) -> None:
    """Hosts behind a load balancer keep serving while it notices their drain (drain_serve_s);
    the role reads `dml_front_door_url` to know whether anything is watching."""
    (state_dir / "local").mkdir(parents=True)
    (state_dir / "local" / "outputs.json").write_text(json.dumps(outputs))
    proc = _ansible_inventory(state_dir)
    assert proc.returncode == 0, proc.stderr
    assert all("dml_front_door_url" not in v for v in json.loads(proc.stdout)["_meta"]["hostvars"].values())
    outputs["front_door"] = {"value": {"address": "10.150.77.2", "port": 80, "url": "http://10.150.77.2"}}
    (state_dir / "local" / "outputs.json").write_text(json.dumps(outputs))
    proc = _ansible_inventory(state_dir)
    assert proc.returncode == 0, proc.stderr
    for host_vars in json.loads(proc.stdout)["_meta"]["hostvars"].values():
        assert host_vars["dml_front_door_url"] == "http://10.150.77.2"


def test_plugin_rejects_corrupt_json(state_dir: Path) -> None:
    (state_dir / "local").mkdir(parents=True)
    (state_dir / "local" / "outputs.json").write_text("{not json")
    proc = _ansible_inventory(state_dir)
    assert proc.returncode != 0
    assert "is not valid JSON" in proc.stderr
