"""What the roles deploy on a host, read from the roles themselves (not a hand list): the
destination of every template, copy, unarchive and link task. The fingerprint reads these
files (content, mode, owner) and the directories they live in (so a file someone adds
next to them, such as an sshd drop-in that sorts before the project's, shows up too).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import yaml

from disposable.hosts.rolevars import ROLES_DIR, role_vars

DEPLOYING_MODULES = {
    "ansible.builtin.template": "dest",
    "ansible.builtin.copy": "dest",
    "ansible.builtin.unarchive": "dest",
}
# Security-relevant files no role writes but a reviewer cares about (image defaults the
# roles rely on): watched all the same.
SECURITY_FILES = ("/etc/sudoers", "/etc/sudoers.d", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d")


def _tasks(items: Any) -> Iterator[dict[str, Any]]:
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _render(template: str, variables: dict[str, Any]) -> str:
    """The path with every variable the controller knows filled in; cut before the first
    part only a host run can know ({{ item }}, a lookup): that directory is watched whole."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered: list[str] = []
    for segment in template.split("/"):
        try:
            rendered.append(env.from_string(segment).render(**variables))
        except jinja2.exceptions.TemplateError:
            break
    return "/".join(rendered)


def destinations(roles_dir: Path = ROLES_DIR) -> list[str]:
    """Every path a role task writes (rendered), sorted. A destination that depends on a
    value only a host run can know and that lives under a state directory (the served
    model's version directory: state, pinned in .state/<env>/model.json and checked by its
    manifest's hashes when it is loaded) is left out: a deploy-model is not drift."""
    variables = role_vars()
    found: set[str] = set()
    for tasks_file in sorted(roles_dir.glob("*/tasks/*.yml")):
        for task in _tasks(yaml.safe_load(tasks_file.read_text())):
            for module, key in DEPLOYING_MODULES.items():
                if isinstance(task.get(module), dict) and key in task[module]:
                    found.add(_render(str(task[module][key]), variables))
            link = task.get("ansible.builtin.file")
            if isinstance(link, dict) and link.get("state") == "link":
                found.add(_render(str(link["dest"] if "dest" in link else link["path"]), variables))
    models = str(variables["inference_service_models_dir"]).rstrip("/") + "/"
    return sorted(p for p in found if p.startswith("/") and not ("{{" in p and p.startswith(models)))


def _walkable_parent(path: str) -> str | None:
    """The directory a deployed file lives in, watched whole so that a file added next to
    it shows up; never a top-level directory (/etc for /etc/nftables.conf): walking it
    would read per-instance identity (host keys, machine-id) that differs on every
    rebuild by design."""
    parent = Path(path).parent
    return str(parent) if len(parent.parts) > 2 else None


def watched_roots(excluded: tuple[str, ...] = ()) -> list[str]:
    """The deployed paths, the directories holding them, and the security files; a
    directory in `excluded` (or below one) is not walked (the venv: checked by its RECORD)."""
    deployed = destinations()
    paths = set(deployed) | set(SECURITY_FILES)
    paths |= {parent for p in deployed if (parent := _walkable_parent(p))}
    return sorted(p for p in paths if not any(p == e or p.startswith(e.rstrip("/") + "/") for e in excluded))
