"""The apt lock: every Debian package a host can have, at one exact version, with the sha256
of its .deb and the suite it came from.

Format (plain text, one package per line, sorted, diffable):

    # comment lines (header: what made it, from which inputs)
    <package> <version> <architecture> <sha256> <suite> <set>

`set` is `image` for the packages of the host image (debootstrap's minbase and the
image's includes, with their dependencies) and `hosts` for what the roles add on top. The
lock's hash covers the package lines only, so comments never change it; the package store
publishes one repository per lock hash (`lock-<first 12 hex digits>`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disposable.errors import DisposableError

SETS = ("image", "hosts")
SECURITY_SUITE_SUFFIX = "-security"
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^[0-9A-Za-z.+~:-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, order=True)
class LockEntry:
    name: str
    version: str
    architecture: str
    sha256: str
    suite: str
    set: str = "hosts"

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a package on a host: name and architecture."""
        return (self.name, self.architecture)

    @property
    def security_update(self) -> bool:
        return self.suite.endswith(SECURITY_SUITE_SUFFIX)

    def line(self) -> str:
        return f"{self.name} {self.version} {self.architecture} {self.sha256} {self.suite} {self.set}"


@dataclass(frozen=True)
class AptLock:
    entries: tuple[LockEntry, ...]
    header: tuple[str, ...] = field(default=(), compare=False)

    @property
    def hash(self) -> str:
        """sha256 over the sorted package lines (comments excluded)."""
        return hashlib.sha256("".join(e.line() + "\n" for e in sorted(self.entries)).encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    @property
    def prefix(self) -> str:
        """Name of this lock's published repository in the package store."""
        return f"lock-{self.short_hash}"

    def by_key(self) -> dict[tuple[str, str], LockEntry]:
        return {e.key: e for e in self.entries}

    def versions(self) -> dict[str, str]:
        """package name -> locked version (what the roles install and the spec checks)."""
        return {e.name: e.version for e in self.entries}

    def subset(self, which: str) -> tuple[LockEntry, ...]:
        return tuple(e for e in self.entries if e.set == which)

    def image_hash(self) -> str:
        """sha256 of the image set alone: the host image changes only when it does."""
        lines = "".join(e.line() + "\n" for e in sorted(self.subset("image")))
        return hashlib.sha256(lines.encode()).hexdigest()

    def size_summary(self) -> str:
        return f"{len(self.entries)} packages ({len(self.subset('image'))} in the host image)"

    def render(self) -> str:
        header = "".join(f"# {line}\n" if line else "#\n" for line in self.header)
        return header + "".join(e.line() + "\n" for e in sorted(self.entries))

    def with_header(self, header: Iterable[str]) -> AptLock:
        return AptLock(self.entries, tuple(header))


def parse(text: str, source: str = "apt lock") -> AptLock:
    """Parse a lock; every malformed line is named with its number."""
    entries: list[LockEntry] = []
    header: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if not entries:
                header.append(line[1:].strip())
            continue
        fields = line.split()
        where = f"{source}:{number}"
        if len(fields) != 6:
            raise DisposableError(
                f"{where}: expected 6 fields (package version architecture sha256 suite set), got {len(fields)}.",
                "Regenerate the lock with `invoke lock --apt` instead of editing it by hand.",
            )
        name, version, arch, sha256, suite, which = fields
        problems = [
            what
            for what, ok in (
                (f"package name {name!r}", _NAME.match(name)),
                (f"version {version!r}", _VERSION.match(version)),
                (f"sha256 {sha256!r}", _SHA256.match(sha256)),
                (f"set {which!r} (image or hosts)", which in SETS),
            )
            if not ok
        ]
        if problems:
            raise DisposableError(f"{where}: invalid {', '.join(problems)}.", "Regenerate it with `invoke lock --apt`.")
        entry = LockEntry(name, version, arch, sha256, suite, which)
        if entry.key in seen:
            raise DisposableError(
                f"{where}: {name}:{arch} is locked twice (first on line {seen[entry.key]}); "
                "a lock has one version per package."
            )
        seen[entry.key] = number
        entries.append(entry)
    if not entries:
        raise DisposableError(f"{source} lists no packages.", "Generate it with `invoke lock --apt`.")
    return AptLock(tuple(sorted(entries)), tuple(header))


def load(path: Path) -> AptLock:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DisposableError(
            f"The apt lock {path} does not exist.", "Generate it with `invoke lock --apt` and commit it."
        ) from None
    return parse(text, str(path))


def write(path: Path, lock: AptLock) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(lock.render())
    tmp.replace(path)


@dataclass(frozen=True)
class Move:
    """One package's change between two locks."""

    name: str
    architecture: str
    old: LockEntry | None
    new: LockEntry | None

    def describe(self) -> str:
        label = self.name if self.architecture in ("amd64", "all") else f"{self.name}:{self.architecture}"
        if self.old and self.new:
            note = "security update" if self.new.security_update else "not a security update"
            return f"{label}: {self.old.version} -> {self.new.version} ({note}, {self.new.suite})"
        if self.new:
            note = "security update" if self.new.security_update else "not a security update"
            return f"{label}: added {self.new.version} ({note}, {self.new.suite})"
        assert self.old is not None
        return f"{label}: {self.old.version} -> removed"


def diff(old: AptLock, new: AptLock) -> list[Move]:
    """Packages that were added, removed, or changed version, suite or sha256."""
    before, after = old.by_key(), new.by_key()
    moves = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is None or b is None or (a.version, a.sha256, a.suite, a.set) != (b.version, b.sha256, b.suite, b.set):
            moves.append(Move(key[0], key[1], a, b))
    return moves


@dataclass(frozen=True)
class HostPackages:
    """What a host has installed, compared with the lock."""

    extra: dict[str, str]  # name:arch -> installed version (not in the lock)
    different: dict[str, tuple[str, str]]  # name:arch -> (installed, locked)
    missing: list[str]  # packages the host's roles install that are absent

    @property
    def clean(self) -> bool:
        return not (self.extra or self.different or self.missing)

    def items(self) -> list[str]:
        lines = [f"{name} {version} is installed but not in the apt lock" for name, version in self.extra.items()]
        lines += [f"{name} is {have}, the apt lock says {want}" for name, (have, want) in self.different.items()]
        lines += [f"{name} is not installed (its role installs it)" for name in self.missing]
        return lines

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostPackages:
        different = {k: (str(v[0]), str(v[1])) for k, v in dict(data.get("different") or {}).items()}
        return cls(dict(data.get("extra") or {}), different, list(data.get("missing") or []))

    def as_dict(self) -> dict[str, object]:
        return {
            "extra": self.extra,
            "different": {k: list(v) for k, v in self.different.items()},
            "missing": self.missing,
        }


def compare_installed(lock: AptLock, installed: Mapping[str, str], expected_roots: Iterable[str] = ()) -> HostPackages:
    """installed: 'name:arch' -> version (dpkg's view). expected_roots: package names the
    host's roles install explicitly."""
    locked = {f"{e.name}:{e.architecture}": e.version for e in lock.entries}
    extra, different = {}, {}
    for key, version in sorted(installed.items()):
        want = locked.get(key)
        if want is None:
            extra[key] = version
        elif want != version:
            different[key] = (version, want)
    names = {key.split(":")[0] for key in installed}
    missing = sorted(set(expected_roots) - names)
    return HostPackages(extra, different, missing)
