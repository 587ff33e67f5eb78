"""Which apt lock a run installs, and making its packages available to the hosts.

Modes, as users know them from `npm ci`, `cargo --locked` and `terraform init -lockfile=readonly`:

- frozen (`--frozen`, DML_FROZEN=1; the nightly, production, CI's reproducibility test):
  exactly the committed lock, from the package store or upstream. When a locked version
  is in neither, fail before anything is created, naming each package and version and the
  one command that moves the lock.
- default (a person's `invoke rebuild`, the README's first command): the committed lock;
  when locked versions vanished upstream and are not in the store, re-resolve only those
  within their pinned series (every other package keeps its locked version), write a
  local override under .state/locks/apt/, say loudly what moved and how to adopt it, and
  mark the run LOCK STALE. A newcomer's first command works on any day.

Either way the hosts install from the store's repository for that lock, `lock-<hash>`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from disposable.console import fmt_seconds, say, table, warn
from disposable.errors import DisposableError
from disposable.packages import aptlock, lockinputs
from disposable.packages.aptlock import AptLock, LockEntry, Move
from disposable.packages.aptroot import AptRoot
from disposable.packages.lockinputs import MINBASE_ROOTS, LockInputs, Source
from disposable.packages.store import PackageStore
from disposable.paths import REPO_ROOT, state_root

ADOPT_HINT = "Move the lock: `invoke lock --apt`, review the diff it prints, commit locks/apt/."
DESCRIPTOR = REPO_ROOT / ".build" / "apt-lock.json"


@dataclass(frozen=True)
class Supply:
    """The lock a run installs and where its packages are."""

    lock: AptLock
    committed: AptLock
    store: PackageStore
    release: str
    site_packages: tuple[str, ...] = ()
    moves: tuple[Move, ...] = field(default=())

    @property
    def stale(self) -> bool:
        return self.lock.hash != self.committed.hash

    def record(self) -> dict[str, Any]:
        """What the history keeps."""
        return {
            "hash": self.lock.short_hash,
            "committed": self.committed.short_hash,
            "packages": len(self.lock.entries),
            "stale": self.stale,
            "moved": [m.describe() for m in self.moves],
        }

    def descriptor(self) -> dict[str, Any]:
        """What the roles read (.build/apt-lock.json): the repository and every version."""
        return {
            "hash": self.lock.hash,
            "prefix": self.lock.prefix,
            "release": self.release,
            "key": str(self.store.public_key),
            "stale": self.stale,
            "site_packages": list(self.site_packages),
            "versions": self.lock.versions(),
        }


# -- the committed lock and its local override ----------------------------------------
def committed_lock() -> AptLock:
    return aptlock.load(lockinputs.lock_path())


def override_path(committed: AptLock) -> Path:
    return state_root() / "locks" / "apt" / f"{lockinputs.LOCK_NAME}.override-of-{committed.short_hash}.lock"


def load_override(committed: AptLock) -> AptLock | None:
    path = override_path(committed)
    return aptlock.load(path) if path.exists() else None


def effective() -> Supply:
    """The lock the last prepare() made available, without touching the network: the
    committed lock, or its local override when only that one is in the store."""
    inputs = lockinputs.load()
    committed = committed_lock()
    store = PackageStore()
    override = load_override(committed)
    if not store.published(committed) and override is not None and store.published(override):
        return Supply(
            override, committed, store, inputs.release, inputs.site_packages, tuple(aptlock.diff(committed, override))
        )
    return Supply(committed, committed, store, inputs.release, inputs.site_packages)


def read_descriptor() -> dict[str, Any]:
    """The lock the last `configure` gave the roles (what verify/drift/fingerprint compare with)."""
    if not DESCRIPTOR.exists():
        raise DisposableError(f"{DESCRIPTOR} is missing.", "Run `invoke configure` first (it selects the apt lock).")
    data: dict[str, Any] = json.loads(DESCRIPTOR.read_text())
    return data


def write_descriptor(supply: Supply) -> Path:
    DESCRIPTOR.parent.mkdir(exist_ok=True)
    tmp = DESCRIPTOR.with_suffix(".tmp")
    tmp.write_text(json.dumps(supply.descriptor(), indent=2, sort_keys=True) + "\n")
    tmp.replace(DESCRIPTOR)
    return DESCRIPTOR


# -- resolution -----------------------------------------------------------------------
def enforce_map(inputs: LockInputs) -> dict[str, str]:
    return {name: series.version for series in inputs.series for name in series.enforce}


def image_roots(inputs: LockInputs) -> list[str]:
    return [*MINBASE_ROOTS, *inputs.image_includes]


def resolve(inputs: LockInputs, root: AptRoot) -> list[LockEntry]:
    raw = root.resolve(image_roots(inputs), inputs.host_roots(), enforce_map(inputs))
    return [LockEntry(e["name"], e["version"], e["architecture"], e["sha256"], e["suite"], e["set"]) for e in raw]


def lock_header(inputs: LockInputs, lock: AptLock, size_bytes: int | None = None, note: str = "") -> list[str]:
    import hashlib

    size = f", {size_bytes / 1e9:.2f} GB" if size_bytes else ""
    return [
        f"disposable-ml apt lock: Debian ({inputs.release}), {inputs.architecture}: {lock.size_summary()}{size}.",
        f"Made by `invoke lock --apt` from {lockinputs.LOCK_NAME}.in.yml "
        f"(sha256 {hashlib.sha256(inputs.text.encode()).hexdigest()[:12]}) on {datetime.now(UTC):%Y-%m-%d}; "
        "do not edit.",
        *([note] if note else []),
        "columns: package version architecture sha256 suite set (image: in the host image; hosts: added by the roles)",
    ]


def regenerate() -> tuple[AptLock | None, AptLock, list[Move]]:
    """`invoke lock --apt`: resolve the inputs afresh (newest inside every series) and write
    the lock when it changed. Nothing else is touched."""
    inputs = lockinputs.load()
    path = lockinputs.lock_path()
    old = aptlock.load(path) if path.exists() else None
    root = AptRoot(inputs, preferences=inputs.preferences())
    start = time.monotonic()
    entries = resolve(inputs, root)
    new = AptLock(tuple(sorted(entries)))
    moves = aptlock.diff(old, new) if old else []
    if old is not None and old.hash == new.hash:
        say(f"apt lock: unchanged ({new.size_summary()}, {path}) in {fmt_seconds(time.monotonic() - start)}")
        return old, old, []
    new = new.with_header(lock_header(inputs, new))
    aptlock.write(path, new)
    show_moves(moves, f"apt lock: {path} written: {new.size_summary()}, hash {new.short_hash}")
    return old, new, moves


def show_moves(moves: list[Move], title: str) -> None:
    say(title)
    if moves:
        security = sum(1 for m in moves if m.new and m.new.security_update)
        say(f"apt lock: {len(moves)} package(s) changed, {security} of them security updates:")
        for move in moves:
            say(f"  {move.describe()}")


# -- making a lock's packages available -----------------------------------------------
def _key(entry: LockEntry) -> tuple[str, str, str]:
    return (entry.name, entry.version, entry.architecture)


def roots_not_in(lock: AptLock, inputs: LockInputs) -> list[str]:
    names = {e.name for e in lock.entries}
    return sorted(set(inputs.host_roots()) - names)


def prepare(frozen: bool = False) -> Supply:
    """Make the lock this run installs available as a signed repository in the store."""
    inputs = lockinputs.load()
    committed = committed_lock()
    store = PackageStore()
    with store.locked():
        store.ensure_initialised()
        unlocked_roots = roots_not_in(committed, inputs)
        if store.published(committed) and not unlocked_roots:
            say(f"apt lock {committed.short_hash}: {committed.size_summary()}, in the package store")
            return Supply(committed, committed, store, inputs.release, inputs.site_packages)
        override = None if frozen else load_override(committed)
        if override is not None and store.published(override) and not roots_not_in(override, inputs):
            supply = Supply(
                override,
                committed,
                store,
                inputs.release,
                inputs.site_packages,
                tuple(aptlock.diff(committed, override)),
            )
            announce_stale(supply)
            return supply
        return _sync(inputs, committed, store, frozen, unlocked_roots)


def _sync(
    inputs: LockInputs, committed: AptLock, store: PackageStore, frozen: bool, unlocked_roots: list[str]
) -> Supply:
    start = time.monotonic()
    root = AptRoot(inputs)
    in_store = store.contents()
    need = [e for e in committed.entries if _key(e) not in in_store]
    offers = root.lookup(need) if need else {}
    tampered = [e for e in need if _key(e) in offers and offers[_key(e)].sha256 != e.sha256]
    if tampered:
        raise DisposableError(
            "The archive offers locked versions with another sha256 than the lock: "
            + ", ".join(f"{e.name} {e.version}" for e in tampered),
            "Do not install them. Check the mirror (DML_APT_MIRROR) and the lock's history.",
        )
    missing = [e for e in need if _key(e) not in offers]
    lock = committed
    if missing or unlocked_roots:
        if frozen:
            raise frozen_error(missing, unlocked_roots)
        lock = _re_resolve(inputs, committed, store, missing, in_store)
        in_store = store.contents()
        need = [e for e in lock.entries if _key(e) not in in_store]
    if need:
        with tempfile.TemporaryDirectory(dir=store.root, prefix="incoming-") as incoming:
            store.add(root.fetch(need, Path(incoming)))
    store.publish(lock, inputs.release)
    supply = Supply(lock, committed, store, inputs.release, inputs.site_packages, tuple(aptlock.diff(committed, lock)))
    say(
        f"apt lock {lock.short_hash}: {lock.size_summary()} published in the package store as {lock.prefix} "
        f"({len(need)} downloaded, {fmt_seconds(time.monotonic() - start)})"
    )
    if supply.stale:
        announce_stale(supply)
    return supply


def frozen_error(missing: list[LockEntry], unlocked_roots: list[str]) -> DisposableError:
    lines = [f"{e.name} {e.version} ({e.architecture}, from {e.suite})" for e in missing]
    lines += [f"{name}: installed by a role but not in the lock" for name in unlocked_roots]
    return DisposableError(
        f"--frozen: {len(lines)} locked package(s) are neither in the package store nor upstream; nothing was "
        "created or changed:\n  " + "\n  ".join(lines),
        ADOPT_HINT,
    )


def _re_resolve(
    inputs: LockInputs,
    committed: AptLock,
    store: PackageStore,
    missing: list[LockEntry],
    in_store: set[tuple[str, str, str]],
) -> AptLock:
    """Keep every locked version still available (store or upstream); let only the vanished
    ones move, inside their series."""
    say(f"apt lock: {len(missing)} locked version(s) vanished upstream and are not in the store; re-resolving them")
    vanished = {e.key for e in missing}
    # 1002 beats the series pins (1001), so a kept kernel or driver stays where it was.
    kept = "".join(
        f"Package: {e.name}\nPin: version {e.version}\nPin-Priority: 1002\n\n"
        for e in committed.entries
        if e.key not in vanished
    )
    sources: list[Source] = []
    if in_store:
        sources.append(store_source(store, inputs.release))
    root = AptRoot(inputs, extra_sources=sources, preferences=kept + inputs.preferences())
    entries = resolve(inputs, root)
    suites = {_key(e): e.suite for e in committed.entries}
    entries = [
        LockEntry(e.name, e.version, e.architecture, e.sha256, suites.get(_key(e), e.suite), e.set) for e in entries
    ]
    override = AptLock(tuple(sorted(entries)))
    moves = aptlock.diff(committed, override)
    note = f"LOCK STALE: local override of the committed lock {committed.short_hash}; moved: " + "; ".join(
        m.describe() for m in moves
    )
    override = override.with_header(lock_header(inputs, override, note=note))
    aptlock.write(override_path(committed), override)
    return override


def store_source(store: PackageStore, release: str) -> Source:
    """Every package the store holds, as an apt source (re-resolution must see versions that
    only the store still has)."""
    store.publish_everything(release)
    return Source(f"file://{store.public_dir / 'everything'}", (release,), ("main",), str(store.keyring))


def announce_stale(supply: Supply) -> None:
    rows = [[m.name, m.old.version if m.old else "-", m.new.version if m.new else "removed"] for m in supply.moves]
    warn(
        "LOCK STALE: the committed apt lock "
        f"{supply.committed.short_hash} names versions that are gone upstream and not in the package store.\n"
        f"This run installs the local override {supply.lock.short_hash} ({override_path(supply.committed)}):\n"
        + table(["package", "locked", "installs"], rows)
        + "\nTo adopt it: `invoke lock --apt`, review the diff it prints, commit locks/apt/."
    )
