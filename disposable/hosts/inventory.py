"""Turn the output contract into an Ansible inventory (hosts, groups, host vars).

Used by the inventory plugin in inventories/plugins/ and by `invoke inventory`.
Groups: every contract group, plus `env_<environment>`, plus `gpu` or `cpu_only`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from disposable.errors import DisposableError
from disposable.hosts import ssh
from disposable.hosts.contract import Contract, Host, parse_outputs
from disposable.paths import outputs_file, state_dir


def connection_vars(env: str, host: Host) -> dict[str, Any]:
    common = ssh.options(env)
    if host.connection == "iap":
        # Through Identity-Aware Proxy: no public address or open SSH port needed.
        common += ["-o", f"ProxyCommand={ssh.iap_proxy_command(env, host)}"]
    return {
        "ansible_host": host.address,
        "ansible_port": host.ssh_port,
        "ansible_user": host.ssh_user,
        "ansible_become": True,
        "ansible_ssh_private_key_file": str(ssh.private_key(env)),
        "ansible_ssh_common_args": shlex.join(common),
    }


def host_vars(env: str, host: Host) -> dict[str, Any]:
    return {
        **connection_vars(env, host),
        "dml_environment": env,
        "dml_gpu_type": host.gpu_type,
        "dml_gpu_count": host.gpu_count,
        "dml_zone": host.zone,
        "dml_instance_id": host.instance_id,
    }


def host_groups(contract: Contract, host: Host) -> list[str]:
    extra = [f"env_{contract.environment.replace('-', '_')}", "gpu" if host.gpu_count > 0 else "cpu_only"]
    return list(dict.fromkeys([*host.groups, *extra]))


def build(contract: Contract) -> dict[str, Any]:
    """The inventory in `ansible-inventory --list` JSON form."""
    inventory: dict[str, Any] = {"_meta": {"hostvars": {}}, "all": {"children": ["ungrouped"], "vars": {}}}
    # The environment's controller-side state (secrets, the model it serves): the same
    # directory the Python side uses, wherever DML_STATE_DIR puts it.
    inventory["all"]["vars"]["dml_state_dir"] = str(state_dir(contract.environment))
    if contract.feature_store is not None:
        inventory["all"]["vars"]["dml_feature_store_url"] = contract.feature_store.url
    if contract.front_door is not None:  # a load balancer fronts the hosts (their drain waits for it)
        inventory["all"]["vars"]["dml_front_door_url"] = contract.front_door.url
    for host in contract.hosts:
        inventory["_meta"]["hostvars"][host.name] = host_vars(contract.environment, host)
        for group in host_groups(contract, host):
            entry = inventory.setdefault(group, {"hosts": []})
            entry["hosts"].append(host.name)
            if group not in inventory["all"]["children"]:
                inventory["all"]["children"].append(group)
    return inventory


def load_contract(env: str, source: str = "auto") -> Contract:
    """Read the contract: from the file `provision` wrote ("cache"), live from Terraform ("live"),
    or the file when present and live otherwise ("auto")."""
    cached = outputs_file(env)
    if source == "cache" or (source == "auto" and cached.exists()):
        return read_outputs_file(cached)
    if source not in ("auto", "live"):
        raise DisposableError(f"Unknown inventory source {source!r}; use cache, live or auto.")
    from disposable.environments import get_environment
    from disposable.provisioning import terraform_for

    tf = terraform_for(get_environment(env), need_image=False)
    tf.init()
    return parse_outputs(tf.outputs())


def read_outputs_file(path: Path) -> Contract:
    if not path.exists():
        raise DisposableError(f"No Terraform outputs at {path}.", "Run `invoke provision --env ENV` first.")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise DisposableError(f"{path} is not valid JSON ({exc}).", "Run `invoke provision` to rewrite it.") from None
    return parse_outputs(data)
