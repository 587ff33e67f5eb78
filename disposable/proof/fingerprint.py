"""`invoke fingerprint`: what each host IS, as canonical JSON, so two rebuilds can be compared.

Per host: the apt lock it was built from and every installed package compared with it
(extra, different, missing), every installed package and version, the holds, kernel/driver/CUDA versions, the
service venv's exact package set (a pip freeze), the sha256 of every deployed file (service
code, model, config, systemd unit, apt/ssh/modprobe drop-ins, the nvcc wrapper), the service
user and unit state. The canonical JSON (sorted keys, no whitespace) is hashed per host and
for the environment.

Excluded as volatile (never read, so never compared): SSH host keys, /etc/machine-id,
host names and addresses, instance ids, timestamps and file mtimes, logs, apt caches and
lists, Python bytecode, and a container's running kernel (it is the LXD host's).

Fingerprints are kept in .state/<env>/fingerprints/<UTC time>.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from disposable.console import say, table
from disposable.errors import DisposableError
from disposable.hosts import deployed
from disposable.hosts.ansible import ansible_env, inventory_file
from disposable.hosts.inventory import load_contract
from disposable.hosts.rolevars import environment_value, role_vars
from disposable.packages import lockinputs, supply
from disposable.packages.aptlock import compare_installed
from disposable.paths import REPO_ROOT, state_dir

PROBE = Path(__file__).parent / "probes" / "fingerprint_probe.py"
VOLATILE = (
    "SSH host keys",
    "/etc/machine-id",
    "host names, addresses, instance ids",
    "timestamps and file mtimes",
    "logs, apt caches and lists",
    "Python bytecode (__pycache__, *.pyc)",
    "a container's running kernel (the LXD host's)",
)


@dataclass(frozen=True)
class Fingerprint:
    taken_at: str
    hosts: dict[str, dict[str, Any]]  # host -> facts
    commit: str = "unknown"  # the repository's commit ("+dirty" with local edits): same code?
    instances: dict[str, str] = field(default_factory=dict)  # host -> instance_id (not hashed)
    baseline: bool = False  # taken right after a verified rebuild: what `invoke drift` compares with

    def host_hash(self, host: str) -> str:
        return canonical_hash(self.hosts[host])

    @property
    def hash(self) -> str:
        return canonical_hash({name: self.host_hash(name) for name in self.hosts})

    def summary(self) -> dict[str, Any]:
        """What a history record keeps: the hashes."""
        return {"hash": self.hash, "hosts": {name: self.host_hash(name) for name in sorted(self.hosts)}}


def canonical_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def probe_config() -> dict[str, Any]:
    """What the probe reads on a host: every file the roles deploy and the directories they
    live in (derived from the roles, disposable.hosts.deployed), the security files around
    them, the venv (its packages, and its files against their RECORD hashes)."""
    v = role_vars()
    # The venv is checked by its RECORD hashes; the models directory is state (versions
    # come and go with deploy-model, each checked by its manifest when loaded).
    excluded = [v["python_runtime_venv"], v["python_runtime_wheelhouse_root"], v["inference_service_models_dir"]]
    return {
        "venv_python": v["inference_service_python"],
        "file_roots": deployed.watched_roots(tuple(excluded)),
        "excluded": excluded,
        "driver_packages": v["nvidia_driver_os_packages"],
        "cuda_packages": [v["cuda_toolkit_package"]],
        "users": [v["inference_service_user"]],
        "units": [v["inference_service_name"]],
    }


def collect(env: str, skip: set[str] | frozenset[str] = frozenset()) -> Fingerprint:
    """Run the probe on every host of the environment (testinfra's ansible backend: the
    same connection settings as Ansible itself)."""
    import testinfra

    contract = load_contract(env)
    os.environ.update(ansible_env())
    script = base64.b64encode(PROBE.read_bytes()).decode()
    config = json.dumps(probe_config())
    lock = supply.effective().lock
    inputs = lockinputs.load()
    flavour = str(environment_value(env, "nvidia_driver_kernel_flavour"))
    hosts: dict[str, dict[str, Any]] = {}
    for host in (h for h in contract.hosts if h.name not in skip):
        remote = testinfra.get_host(f"ansible://{host.name}?ansible_inventory={inventory_file(env)}", sudo=True)
        result = remote.run("echo %s | base64 -d | python3 - %s", script, config)
        facts = _probe_answer(host.name, result.rc, result.stdout, result.stderr)
        roots = inputs.roots_for_groups(list(host.groups), flavour)
        facts["apt_lock"] = {"hash": lock.hash, **compare_installed(lock, facts["packages"], roots).as_dict()}
        hosts[host.name] = facts
    instances = {h.name: h.instance_id for h in contract.hosts if h.name in hosts}
    return Fingerprint(datetime.now(UTC).isoformat(timespec="seconds"), hosts, code_version(), instances)


def _probe_answer(host: str, rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The probe's facts; a probe that failed or could not read something is an error."""
    try:
        facts: dict[str, Any] = json.loads(stdout)
    except ValueError:
        facts = {}
    if rc != 0 or not facts or facts.get("errors"):
        problems = facts.get("errors") or [stderr.strip() or stdout.strip() or f"exit {rc}"]
        raise DisposableError(
            f"Could not fingerprint {host}: " + "; ".join(str(p) for p in problems),
            "Check `invoke status` (the host must be reachable over SSH) and the commands named above.",
        )
    facts.pop("errors", None)
    return facts


def code_version() -> str:
    """HEAD's commit, with '+dirty' when tracked files have local edits; 'unknown' outside git."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO_ROOT, check=False).returncode != 0
    return head.stdout.strip() + ("+dirty" if dirty else "")


def fingerprint_dir(env: str) -> Path:
    path = state_dir(env) / "fingerprints"
    path.mkdir(exist_ok=True)
    return path


def save(env: str, fingerprint: Fingerprint) -> Path:
    stamp = fingerprint.taken_at.replace(":", "").replace("+0000", "Z")
    path = fingerprint_dir(env) / f"{stamp}.json"
    data = {
        "taken_at": fingerprint.taken_at,
        "commit": fingerprint.commit,
        "hosts": fingerprint.hosts,
        "instances": fingerprint.instances,
        "baseline": fingerprint.baseline,
    }
    path.write_text(json.dumps(data, sort_keys=True))
    return path


def load(path: Path) -> Fingerprint:
    try:
        data = json.loads(path.read_text())
        return Fingerprint(
            data["taken_at"],
            data["hosts"],
            data.get("commit", "unknown"),
            data.get("instances", {}),
            bool(data.get("baseline", False)),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise DisposableError(f"{path} is not a fingerprint file: {exc}") from None


def previous(env: str, before: Path | None = None) -> Path | None:
    """The newest saved fingerprint (older than `before` when given)."""
    files = sorted(fingerprint_dir(env).glob("*.json"))
    if before is not None:
        files = [f for f in files if f.name < before.name]
    return files[-1] if files else None


def latest_baseline(env: str) -> Fingerprint | None:
    """The newest fingerprint taken right after a verified rebuild (None: there is none)."""
    for path in sorted(fingerprint_dir(env).glob("*.json"), reverse=True):
        candidate = load(path)
        if candidate.baseline:
            return candidate
    return None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def differences(old: Fingerprint, new: Fingerprint) -> list[str]:
    """Human-readable differences, e.g. 'dml-local-0: packages.curl:amd64: 7.88 -> 7.89'."""
    lines: list[str] = []
    for host in sorted(set(old.hosts) | set(new.hosts)):
        if host not in old.hosts or host not in new.hosts:
            lines.append(f"{host}: {'added' if host in new.hosts else 'removed'}")
            continue
        before, after = _flatten(old.hosts[host]), _flatten(new.hosts[host])
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                lines.append(f"{host}: {key}: {before.get(key, '(absent)')} -> {after.get(key, '(absent)')}")
    return lines


@dataclass(frozen=True)
class Recorded:
    fingerprint: Fingerprint
    previous: Fingerprint | None
    changes: list[str] | None  # None: nothing to compare with

    @property
    def same_code(self) -> bool:
        """Was the previous fingerprint taken from the same, clean commit?"""
        commit = self.fingerprint.commit
        return self.previous is not None and self.previous.commit == commit and commit.isalnum()


def lock_summary(facts: dict[str, Any]) -> str:
    """'exact' or e.g. '2 extra, 1 different' for a host's packages against its apt lock."""
    versus = facts.get("apt_lock") or {}
    counts = [f"{len(versus.get(k) or [])} {k}" for k in ("extra", "different", "missing") if versus.get(k)]
    return ", ".join(counts) or "exact"


def record(env: str, baseline: bool = False) -> Recorded:
    """Take, save and show a fingerprint; compare it with the previous one. baseline: taken
    right after a verified rebuild, so `invoke drift` compares later hosts with it."""
    fingerprint = replace(collect(env), baseline=baseline)
    path = save(env, fingerprint)
    rows = [
        [
            name,
            fingerprint.host_hash(name)[:16],
            str(len(facts["packages"])),
            lock_summary(facts),
            str(len(facts["files"])),
        ]
        for name, facts in sorted(fingerprint.hosts.items())
    ]
    say("Fingerprint:\n" + table(["host", "sha256", "packages", "vs apt lock", "files"], rows))
    say(f"Fingerprint: {fingerprint.hash[:16]} saved to {path}")
    before_path = previous(env, path)
    if before_path is None:
        say("Fingerprint: no previous fingerprint to compare with")
        return Recorded(fingerprint, None, None)
    before = load(before_path)
    changes = differences(before, fingerprint)
    if changes:
        say(f"Fingerprint: DIFFERS from {before_path.name} ({len(changes)} difference(s)):")
        for line in changes[:50]:
            say(f"  {line}")
    else:
        say(f"Fingerprint: identical to {before_path.name} (taken {before.taken_at})")
    return Recorded(fingerprint, before, changes)
