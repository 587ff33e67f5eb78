"""Ansible inventory plugin: hosts from the disposable-ml Terraform output contract.

Configuration file (name must end in .disposable.yml):

    plugin: disposable
    environment: local        # which environment's outputs to read
    source: auto              # cache | live | auto (cache when provision wrote it, else live)
"""

from __future__ import annotations

import sys
from pathlib import Path

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from disposable.errors import DisposableError  # noqa: E402
from disposable.hosts import inventory as contract_inventory  # noqa: E402
from disposable.paths import outputs_file  # noqa: E402

DOCUMENTATION = r"""
name: disposable
short_description: Hosts from the disposable-ml Terraform output contract
description:
  - Reads the hosts an environment's Terraform stack created (the output contract, docs/output-contract.md)
    and turns them into hosts, groups and host variables.
options:
  plugin:
    description: Must be C(disposable).
    required: true
    choices: [disposable]
  environment:
    description: Environment name (local, gcp, ...).
    type: str
    required: true
  source:
    description: Where to read the outputs from.
    type: str
    default: auto
    choices: [auto, cache, live]
  allow_empty:
    description:
      - Yield an empty inventory instead of failing when the environment has no outputs yet
        (for Molecule, whose create step runs before any host exists).
    type: bool
    default: false
"""


class InventoryModule(BaseInventoryPlugin):
    NAME = "disposable"
    # The values come from this project's own Terraform state (names, addresses it
    # created), not from users of the hosts, so they are trusted: no template marking.
    trusted_by_default = True

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith((".disposable.yml", ".disposable.yaml"))

    def parse(self, inventory, loader, path, cache=True):  # type: ignore[no-untyped-def]
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        env = self.get_option("environment")
        if self.get_option("allow_empty") and not outputs_file(env).exists():
            return
        try:
            contract = contract_inventory.load_contract(env, self.get_option("source"))
        except DisposableError as exc:
            raise AnsibleParserError(f"disposable inventory ({env}): {exc}") from exc
        data = contract_inventory.build(contract)
        for key, value in data["all"].get("vars", {}).items():  # the environment's: state dir, feature store
            self.inventory.set_variable("all", key, value)
        for name, hostvars in data["_meta"]["hostvars"].items():
            self.inventory.add_host(name)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
        for group, entry in data.items():
            if group in ("_meta", "all"):
                continue
            self.inventory.add_group(group)
            for host in entry["hosts"]:
                self.inventory.add_child(group, host)
