"""Ansible callback: per-role and slowest-task timings at the end of a play run.

ansible.posix.profile_tasks would do this, but no collection can be installed here; this
is ~50 lines of ansible.builtin-only code. Enabled in ansible/ansible.cfg.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: dml_timings
type: aggregate
short_description: Per-role and slowest-task durations
description:
  - Prints how long each role took and the slowest tasks when the playbook ends.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dml_timings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._current: tuple[str, str, float] | None = None
        self._tasks: list[tuple[str, str, float]] = []

    def _close_current(self) -> None:
        if self._current is not None:
            role, name, start = self._current
            self._tasks.append((role, name, time.monotonic() - start))
            self._current = None

    def _start(self, task) -> None:  # type: ignore[no-untyped-def]
        self._close_current()
        role = task._role.get_name() if task._role else "(play)"
        self._current = (role, task.get_name(), time.monotonic())

    def v2_playbook_on_task_start(self, task, is_conditional):  # type: ignore[no-untyped-def]
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):  # type: ignore[no-untyped-def]
        self._start(task)

    def v2_playbook_on_stats(self, stats):  # type: ignore[no-untyped-def]
        self._close_current()
        per_role: dict[str, float] = defaultdict(float)
        for role, _, seconds in self._tasks:
            per_role[role] += seconds
        self._display.display("\nTIMINGS per role:")
        for role, seconds in sorted(per_role.items(), key=lambda item: -item[1]):
            self._display.display(f"  {role:<24} {seconds:7.1f}s")
        self._display.display("TIMINGS slowest tasks:")
        top = int(os.environ.get("DML_TIMINGS_TOP", "8"))  # how many slow tasks to list
        for _role, name, seconds in sorted(self._tasks, key=lambda item: -item[2])[:top]:
            self._display.display(f"  {seconds:7.1f}s  {name}")
