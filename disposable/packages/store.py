"""The package store of record: an aptly root on the controller holding every .deb any lock
ever needed, and one signed repository per lock (`lock-<hash>`), published from a snapshot
that contains exactly the locked packages.

Layout (machine-wide, shared by every clone; DML_APT_STORE_DIR moves it):

    <store>/aptly.conf, db/, pool/   aptly's database and package pool
    <store>/gnupg/                   the store's signing key, made here at setup (never in git)
    <store>/dml-store.gpg            its public key, binary (debootstrap --keyring)
    <store>/public/dml-store.asc     its public key, armored (hosts: apt signed-by)
    <store>/public/lock-<hash>/      one published repository per lock (suite = the release)

Every package stays in the pool as long as a snapshot refers to it, and no snapshot is ever
dropped by the project, so a version Debian removed stays installable from here.
Local hosts read <store>/public through a read-only disk device; docs/package-store.md
says how GCP hosts reach a published copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from disposable.console import say
from disposable.errors import DisposableError
from disposable.packages.aptlock import AptLock
from disposable.paths import cache_dir

REPO = "dml-store"
KEY_NAME = "disposable-ml package store"
VERIFIED_MARKER = ".verified"


def store_dir() -> Path:
    return Path(os.environ.get("DML_APT_STORE_DIR") or cache_dir() / "apt-store")


class PackageStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or store_dir()

    # -- layout -----------------------------------------------------------------------
    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def public_key(self) -> Path:
        return self.public_dir / "dml-store.asc"

    @property
    def keyring(self) -> Path:
        return self.root / "dml-store.gpg"

    @property
    def gnupg_home(self) -> Path:
        return self.root / "gnupg"

    def repository(self, lock: AptLock) -> Path:
        return self.public_dir / lock.prefix

    def release_file(self, lock: AptLock, release: str) -> Path:
        return self.repository(lock) / "dists" / release / "Release"

    # -- commands ---------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self.gnupg_home)}

    def aptly(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["aptly", f"-config={self.root / 'aptly.conf'}", *args],
            capture_output=True,
            text=True,
            env=self._env(),
            check=False,
        )
        if check and proc.returncode != 0:
            raise DisposableError(f"aptly {' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc

    def _gpg(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["gpg", "--batch", "--no-tty", *args], input=input_text, capture_output=True, text=True, env=self._env()
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (two clones may share the store)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- set up -----------------------------------------------------------------------
    def ensure_initialised(self) -> None:
        """aptly config, the signing key (generated once, on this controller) and the repo."""
        for tool in ("aptly", "gpg"):
            if subprocess.run(["which", tool], capture_output=True).returncode != 0:
                raise DisposableError(
                    f"`{tool}` is not installed.", "Run ./bootstrap.sh setup (it installs aptly and gnupg)."
                )
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "rootDir": str(self.root),
            "architectures": ["amd64"],
            "gpgProvider": "gpg",
            "skipContentsPublishing": True,
            "downloadConcurrency": 4,
        }
        config_file = self.root / "aptly.conf"
        if not config_file.exists() or json.loads(config_file.read_text()) != config:
            config_file.write_text(json.dumps(config, indent=2))
        self._ensure_key()
        if self.aptly("repo", "show", REPO, check=False).returncode != 0:
            self.aptly("repo", "create", "-comment=every package any apt lock needed (disposable-ml)", REPO)

    def _ensure_key(self) -> None:
        self.gnupg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.key_fingerprint():
            params = (
                "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
                f"Name-Real: {KEY_NAME} ({os.uname().nodename})\nExpire-Date: 0\n%commit\n"
            )
            proc = self._gpg("--gen-key", input_text=params)
            if proc.returncode != 0 or not self.key_fingerprint():
                raise DisposableError(f"Could not generate the package store's signing key: {proc.stderr.strip()}")
            say(f"Package store: generated its signing key {self.key_fingerprint()} (kept in {self.gnupg_home})")
        fingerprint = self.key_fingerprint()
        if not self.keyring.exists() or not self.public_key.exists():
            self.public_dir.mkdir(parents=True, exist_ok=True)
            self.keyring.write_bytes(subprocess.run(
                ["gpg", "--batch", "--export", fingerprint], capture_output=True, env=self._env(), check=True
            ).stdout)  # fmt: skip
            self.public_key.write_text(self._gpg("--armor", "--export", fingerprint).stdout)

    def key_fingerprint(self) -> str:
        out = self._gpg("--with-colons", "--list-secret-keys").stdout
        return next((line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")), "")

    # -- contents ---------------------------------------------------------------------
    def contents(self) -> set[tuple[str, str, str]]:
        """(name, version, architecture) of every package in the store."""
        out = self.aptly("repo", "show", "-with-packages", REPO).stdout
        listed = out.split("Packages:", 1)[1] if "Packages:" in out else ""
        result = set()
        for line in listed.split():
            name, version, arch = line.rsplit("_", 2)
            result.add((name, version, arch))
        return result

    def add(self, files: Sequence[Path]) -> None:
        if files:
            self.aptly("repo", "add", REPO, *(str(f) for f in files))

    def published(self, lock: AptLock) -> bool:
        return (self.repository(lock) / VERIFIED_MARKER).exists()

    def publish(self, lock: AptLock, release: str) -> None:
        """Snapshot exactly the locked packages, publish them signed as lock-<hash>, then
        check the published index against the lock (name, version, architecture, sha256)."""
        snapshot, everything = lock.prefix, f"{lock.prefix}-all"
        if self.aptly("snapshot", "show", snapshot, check=False).returncode != 0:
            self.aptly("snapshot", "create", everything, "from", "repo", REPO)
            query = " | ".join(f"{e.name} (= {e.version}) {{{e.architecture}}}" for e in lock.entries)
            try:
                self.aptly("snapshot", "filter", everything, snapshot, query)
            finally:
                self.aptly("snapshot", "drop", "-force", everything, check=False)  # the filtered one names it as source
        if not self.release_file(lock, release).exists():
            self.aptly(
                "publish", "snapshot", "-batch", "-skip-contents", "-skip-bz2", f"-gpg-key={self.key_fingerprint()}",
                f"-distribution={release}", "-component=main", "-architectures=amd64",
                f"-origin=disposable-ml {lock.prefix}", snapshot, lock.prefix,
            )  # fmt: skip
        self.verify_published(lock, release)
        (self.repository(lock) / VERIFIED_MARKER).write_text(lock.hash + "\n")

    def verify_published(self, lock: AptLock, release: str) -> None:
        packages = self.repository(lock) / "dists" / release / "main" / "binary-amd64" / "Packages"
        published = set()
        for stanza in packages.read_text().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
            if "Package" in fields:
                published.add((fields["Package"], fields["Version"], fields["Architecture"], fields["SHA256"]))
        wanted = {(e.name, e.version, e.architecture, e.sha256) for e in lock.entries}
        unreadable = [
            str(path.relative_to(self.repository(lock)))
            for path in (self.repository(lock) / "pool").rglob("*.deb")
            if path.is_symlink() or not path.is_file() or not path.stat().st_mode & 0o004
        ]
        if unreadable:
            raise DisposableError(
                f"The published repository {lock.prefix} has package files hosts cannot read (links or private "
                f"files): {unreadable[:5]}.",
                "The store must hold the bytes themselves; remove those packages from the store and sync again.",
            )
        if published != wanted:
            missing, extra = sorted(wanted - published), sorted(published - wanted)
            other_bytes = sorted({m[:3] for m in missing} & {x[:3] for x in extra})
            if other_bytes:
                raise DisposableError(
                    "The package store holds other bytes than the lock for: "
                    + ", ".join(" ".join(k) for k in other_bytes)
                    + " (same name, version and architecture, another sha256).",
                    "Do not install them. Find out which is genuine (the lock's sha256 came from the archive's signed "
                    f"index when it was made); remove the other from the store (aptly -config={self.root}/aptly.conf "
                    "repo remove dml-store ...) and sync again.",
                )
            raise DisposableError(
                f"The published repository {lock.prefix} does not match the lock: "
                f"missing {[' '.join(m[:3]) for m in missing][:10]}, "
                f"unexpected {[' '.join(x[:3]) for x in extra][:10]}.",
                "Sync again (`./bootstrap.sh setup`); if it persists, regenerate the lock with `invoke lock --apt`.",
            )

    def publish_everything(self, release: str) -> None:
        """The whole store as one repository (prefix `everything`, every version of every
        package), so a re-resolution can see versions only the store still has."""
        prefix = "everything"
        signing = ["-batch", "-skip-contents", "-skip-bz2", f"-gpg-key={self.key_fingerprint()}"]
        if (self.public_dir / prefix / "dists" / release / "Release").exists():
            self.aptly("publish", "update", *signing, release, prefix)
        else:
            where = [f"-distribution={release}", "-component=main", "-architectures=amd64"]
            self.aptly("publish", "repo", *signing, *where, REPO, prefix)

    def published_locks(self) -> list[str]:
        return sorted(p.name for p in self.public_dir.glob("lock-*") if (p / VERIFIED_MARKER).exists())
