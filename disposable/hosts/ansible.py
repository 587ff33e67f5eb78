"""Run ansible-playbook against an environment's dynamic inventory and read its recap."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from disposable.console import run
from disposable.errors import DisposableError
from disposable.paths import ANSIBLE_DIR, INVENTORY_DIR, REPO_ROOT, venv_tool

RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class HostRecap:
    host: str
    ok: int
    changed: int
    unreachable: int
    failed: int


def inventory_file(env: str) -> Path:
    path = INVENTORY_DIR / f"{env}.disposable.yml"
    if not path.exists():
        raise DisposableError(f"No inventory configuration for environment {env!r} ({path}).")
    return path


# Ansible runs its tasks through Mitogen's strategy: one Python interpreter per host for the
# whole playbook, modules run in it, instead of a new interpreter that unpacks and compiles
# the module and its module_utils for every task (about 250 ms of a core per task, measured).
# The same tasks and checks run; a no-change configure of the local cloud went from 50 s to
# 22 s. `DML_ANSIBLE_STRATEGY=linear` runs Ansible's own strategy (slower, same result).
STRATEGY_SETTING = "DML_ANSIBLE_STRATEGY"
DEFAULT_STRATEGY = "mitogen_linear"
# Inside `with_strategy(...)` that strategy, whatever the setting says (a rolling rebuild
# configures the host it replaces with Ansible's own: disposable/fleet/rolling.py says why).
_STRATEGY_OVERRIDE: ContextVar[str] = ContextVar("strategy_override", default="")


@contextlib.contextmanager
def with_strategy(strategy: str) -> Iterator[None]:
    token = _STRATEGY_OVERRIDE.set(strategy)
    try:
        yield
    finally:
        _STRATEGY_OVERRIDE.reset(token)


def strategy_env() -> dict[str, str]:
    strategy = _STRATEGY_OVERRIDE.get() or os.environ.get(STRATEGY_SETTING, DEFAULT_STRATEGY)
    if not strategy.startswith("mitogen_"):
        return {"ANSIBLE_STRATEGY": strategy}
    try:
        import ansible_mitogen
    except ImportError as missing:
        raise DisposableError(
            f"Mitogen (Python package 'mitogen', module ansible_mitogen) is missing from the controller's venv "
            f"({sys.prefix}); Ansible's strategy {strategy!r} comes from it.",
            f"Run `./bootstrap.sh setup` (requirements.txt pins it), or set {STRATEGY_SETTING}=linear "
            "for Ansible's own strategy.",
        ) from missing
    plugins = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    if not (plugins / f"{strategy}.py").is_file():
        raise DisposableError(
            f"{STRATEGY_SETTING}={strategy}: Mitogen has no such strategy in {plugins}.",
            f"Use one of: {', '.join(sorted(p.stem for p in plugins.glob('mitogen*.py')))}, or linear.",
        )
    return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": strategy}


def ansible_env() -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        # An inventory that fails to parse is an error with its reason, not an empty inventory.
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONPATH": str(REPO_ROOT),
        **strategy_env(),
    }


def parse_recap(output: str) -> list[HostRecap]:
    recap = output.split("PLAY RECAP", 1)[-1] if "PLAY RECAP" in output else ""
    return [
        HostRecap(m["host"], int(m["ok"]), int(m["changed"]), int(m["unreachable"]), int(m["failed"]))
        for m in RECAP_LINE.finditer(recap)
    ]


def playbook_argv(
    env: str,
    playbook: str,
    *,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    tags: str | None = None,
    extra_args: list[str] | None = None,
) -> list[str]:
    argv = [venv_tool("ansible-playbook"), "-i", str(inventory_file(env)), str(ANSIBLE_DIR / playbook)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if limit:
        argv += ["--limit", limit]
    if tags:
        argv += ["--tags", tags]
    return argv + (extra_args or [])


def run_playbook_unchecked(argv: list[str], extra_env: dict[str, str] | None = None) -> tuple[int, list[HostRecap]]:
    """Run an ansible-playbook command line; the caller judges the exit status."""
    result = run(argv, label="ansible", env={**ansible_env(), **(extra_env or {})}, cwd=REPO_ROOT)
    return result.returncode, parse_recap(result.output)


def run_playbook(
    env: str,
    playbook: str = "site.yml",
    *,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    tags: str | None = None,
    extra_args: list[str] | None = None,
) -> list[HostRecap]:
    argv = playbook_argv(env, playbook, check=check, diff=diff, limit=limit, tags=tags, extra_args=extra_args)
    returncode, recap = run_playbook_unchecked(argv)
    if returncode != 0 or not recap:
        bad = [r.host for r in recap if r.failed or r.unreachable]
        raise DisposableError(
            f"ansible-playbook {playbook} failed (exit {returncode})"
            + (f" on {', '.join(bad)}" if bad else "")
            + "; see the output above.",
            "Fix the cause and rerun `invoke configure`: the roles are idempotent and converge from any state.",
        )
    return recap
