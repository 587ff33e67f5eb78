"""The inputs of the apt lock (locks/apt/<release>.in.yml): where packages come from, the
pinned series, and which packages each kind of host installs (read from the roles)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from disposable.errors import DisposableError
from disposable.hosts.rolevars import role_vars
from disposable.paths import REPO_ROOT

LOCK_NAME = "debian-12"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRRORS = {"debian": "http://deb.debian.org/debian", "debian-security": "http://deb.debian.org/debian-security"}
# What debootstrap --variant=minbase installs besides the image's includes: every
# Priority: required package, apt, and on bookworm usr-is-merged (debootstrap merges /usr
# itself and says so with that empty package instead of pulling usrmerge and perl).
MINBASE_ROOTS = ("apt", "usr-is-merged")


def lock_dir() -> Path:
    """locks/apt in the repository; DML_APT_LOCK_DIR points elsewhere (tests use a copy)."""
    return Path(os.environ.get("DML_APT_LOCK_DIR") or REPO_ROOT / "locks" / "apt")


def lock_path() -> Path:
    return lock_dir() / f"{LOCK_NAME}.lock"


def inputs_path() -> Path:
    return lock_dir() / f"{LOCK_NAME}.in.yml"


@dataclass(frozen=True)
class Source:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str

    def lines(self) -> list[str]:
        return [
            f"deb [signed-by={self.signed_by}] {self.uri} {suite} {' '.join(self.components)}" for suite in self.suites
        ]


@dataclass(frozen=True)
class Series:
    name: str
    pin: tuple[str, ...]
    enforce: tuple[str, ...]
    version: str

    def preferences(self) -> str:
        return f"Package: {' '.join(self.pin)}\nPin: version {self.version}\nPin-Priority: 1001\n"


@dataclass(frozen=True)
class Profile:
    name: str
    groups: tuple[str, ...]
    packages: tuple[str, ...]


@dataclass(frozen=True)
class LockInputs:
    release: str
    architecture: str
    sources: tuple[Source, ...]
    series: tuple[Series, ...]
    profiles: tuple[Profile, ...]
    site_packages: tuple[str, ...]
    image_includes: tuple[str, ...]
    text: str  # the file as read, for the lock's header

    def host_roots(self) -> list[str]:
        """Every package some host's roles install (the union of the profiles)."""
        names = [p for profile in self.profiles for p in profile.packages] + list(self.site_packages)
        return sorted(set(names))

    def roots_for_groups(self, groups: list[str], kernel_flavour: str | None = None) -> list[str]:
        """The packages a host in `groups` gets from its roles (kernel of one flavour)."""
        names = set(self.site_packages)
        for profile in self.profiles:
            if "all" in profile.groups or set(profile.groups) & set(groups):
                names.update(profile.packages)
        if kernel_flavour:
            own = {f"linux-image-{kernel_flavour}", f"linux-headers-{kernel_flavour}"}
            names = {n for n in names if not _is_kernel_meta(n) or n in own}
        return sorted(names)

    def preferences(self) -> str:
        return "\n".join(s.preferences() for s in self.series)


def _is_kernel_meta(name: str) -> bool:
    return name.startswith(("linux-image-", "linux-headers-"))


def machine_mirrors() -> dict[str, str]:
    """This machine's Debian mirrors: the URIs of its debian.sources (main archive first,
    then the security archive), overridden by DML_APT_MIRROR / DML_APT_SECURITY_MIRROR."""
    mirrors = dict(DEFAULT_MIRRORS)
    try:
        uris = [
            line.split(":", 1)[1].strip() for line in HOST_SOURCES.read_text().splitlines() if line.startswith("URIs:")
        ]
    except OSError:
        uris = []
    for uri in (u.split()[0] for u in uris if u):
        mirrors["debian-security" if "security" in uri else "debian"] = uri
    mirrors["debian"] = os.environ.get("DML_APT_MIRROR") or mirrors["debian"]
    mirrors["debian-security"] = os.environ.get("DML_APT_SECURITY_MIRROR") or mirrors["debian-security"]
    return mirrors


def _expand(values: list[str], variables: dict[str, Any], flavours: list[str], where: str) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        if value.startswith("$"):
            found = variables.get(value[1:])
            if found is None:
                raise DisposableError(f"{where}: no role variable {value[1:]!r}.")
            names += found if isinstance(found, list) else [found]
        else:
            names.append(value)
    expanded = [n.format(flavour=f) for n in names for f in (flavours if "{flavour}" in n else [""])]
    bad = [n for n in expanded if not isinstance(n, str) or "{{" in n or " " in n]
    if bad:
        raise DisposableError(f"{where}: not package names: {bad}.")
    return tuple(dict.fromkeys(expanded))


def read_package_list(path: Path) -> tuple[str, ...]:
    text = path.read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def load(path: Path | None = None) -> LockInputs:
    path = path or inputs_path()
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise DisposableError(f"Cannot read the apt lock inputs {path}: {exc}") from None
    where = str(path)
    try:
        variables = role_vars()
        flavours = list(data.get("kernel_flavours", []))
        mirrors = machine_mirrors()
        sources = []
        for raw in data["sources"]:
            uri = mirrors[raw["archive"]] if "archive" in raw else raw["uri"]
            sources.append(
                Source(uri, tuple(raw["suites"]), tuple(raw["components"]), raw.get("signed_by", DEBIAN_KEYRING))
            )
        series = tuple(
            Series(s["name"], tuple(s["pin"]), _expand(s.get("enforce", []), variables, flavours, where), s["version"])
            for s in data.get("series", [])
        )
        profiles = []
        for name, raw in data["profiles"].items():
            packages = [p for var in raw.get("role_vars", []) for p in _expand([f"${var}"], variables, flavours, where)]
            packages += _expand(list(raw.get("packages", [])), variables, flavours, where)
            profiles.append(Profile(name, tuple(raw["groups"]), tuple(dict.fromkeys(packages))))
        return LockInputs(
            release=data["release"],
            architecture=data["architecture"],
            sources=tuple(sources),
            series=series,
            profiles=tuple(profiles),
            site_packages=tuple(data.get("site_packages") or ()),
            image_includes=tuple(data["image_includes"])
            if "image_includes" in data
            else read_package_list(REPO_ROOT / data["image_includes_from"]),
            text=text,
        )
    except (KeyError, TypeError) as exc:
        raise DisposableError(
            f"{where}: missing or malformed entry {exc}.", "Compare it with the comments in the file."
        ) from None
