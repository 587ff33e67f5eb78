"""Ansible callback: which tasks changed (or would change, in --check) on which host.

`invoke drift` sets DML_CHANGES_FILE and reads the JSON written here at the end of the run:
{"changed": {host: [task, ...]}, "failed": {host: [task: message, ...]}, "unreachable": {host: message}}.
Without DML_CHANGES_FILE the callback does nothing. ansible.builtin only (no collections here).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: dml_changes
type: aggregate
short_description: Record changed tasks per host to the JSON file named by DML_CHANGES_FILE
description:
  - Used by `invoke drift` to name what changed out of band.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dml_changes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._changed: dict[str, list[str]] = defaultdict(list)
        self._failed: dict[str, list[str]] = defaultdict(list)
        self._unreachable: dict[str, str] = {}

    @staticmethod
    def _name(result) -> str:  # type: ignore[no-untyped-def]
        return str(result._task.get_name())  # "role : task" for a role's task

    def v2_runner_on_ok(self, result):  # type: ignore[no-untyped-def]
        if result._result.get("changed") and "results" not in result._result:  # a loop's items are named one by one
            self._changed[result._host.get_name()].append(self._name(result))

    def v2_runner_item_on_ok(self, result):  # type: ignore[no-untyped-def]
        if result._result.get("changed"):
            item = self._get_item_label(result._result)
            self._changed[result._host.get_name()].append(f"{self._name(result)} ({item})")

    def v2_runner_on_failed(self, result, ignore_errors=False):  # type: ignore[no-untyped-def]
        if not ignore_errors:
            message = str(result._result.get("msg", "")).splitlines()[0:1]
            self._failed[result._host.get_name()].append(f"{self._name(result)}: {''.join(message)}")

    def v2_runner_on_unreachable(self, result):  # type: ignore[no-untyped-def]
        self._unreachable[result._host.get_name()] = str(result._result.get("msg", "unreachable")).strip()

    def v2_playbook_on_stats(self, stats):  # type: ignore[no-untyped-def]
        path = os.environ.get("DML_CHANGES_FILE")
        if not path:
            return
        with open(path, "w") as handle:
            json.dump(
                {"changed": dict(self._changed), "failed": dict(self._failed), "unreachable": self._unreachable},
                handle,
                sort_keys=True,
            )
