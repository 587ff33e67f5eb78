"""A private apt root on the controller: the archive as apt sees it, with nothing installed.

Resolving the lock, checking what the archive still offers and downloading packages all
happen here, through python3-apt (Debian's /usr/bin/python3) running
probes/apt_resolve.py. The root has its own sources, keys, preferences and an empty dpkg
status, so the answer never depends on what the controller itself has installed, and it
works before any host image exists (a fresh machine on a day Debian moved a locked
package: the case the lock exists for). Its package lists are cached per set of sources.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disposable.console import fmt_seconds, say
from disposable.errors import DisposableError
from disposable.packages.aptlock import LockEntry
from disposable.packages.lockinputs import LockInputs, Source
from disposable.paths import cache_dir

PROBE = Path(__file__).parent / "probes" / "apt_resolve.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def require_python_apt() -> None:
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import apt_pkg"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DisposableError(
            "python3-apt is missing on this controller (Debian's /usr/bin/python3 cannot import apt_pkg).",
            "Run ./bootstrap.sh setup (it installs python3-apt), or: apt-get install python3-apt",
        )


@dataclass(frozen=True)
class Offer:
    """What the archive offers for one locked (name, version, architecture)."""

    sha256: str
    suite: str
    uri: str
    size: int


class AptRoot:
    def __init__(self, inputs: LockInputs, extra_sources: Sequence[Source] = (), preferences: str = "") -> None:
        self.inputs = inputs
        self.sources = (*inputs.sources, *extra_sources)
        self.preferences = preferences
        key = hashlib.sha256("\n".join(line for s in self.sources for line in s.lines()).encode()).hexdigest()[:16]
        self.root = cache_dir() / "apt-resolver" / key
        self._updated = False

    def _prepare(self) -> None:
        for sub in (
            "etc/apt/sources.list.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "var/lib/dpkg",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "var/lib/dpkg/status").write_text("")
        (self.root / "etc/apt/sources.list").write_text(
            "".join(f"{line}\n" for s in self.sources for line in s.lines())
        )
        (self.root / "etc/apt/preferences.d/lock.pref").write_text(self.preferences)

    def _run(self, command: str, request: dict[str, Any]) -> dict[str, Any]:
        require_python_apt()
        self._prepare()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"root": str(self.root), "architecture": self.inputs.architecture, **request}, handle)
        try:
            proc = subprocess.run(
                [SYSTEM_PYTHON, "-I", str(PROBE), command, handle.name], capture_output=True, text=True, check=False
            )
        finally:
            Path(handle.name).unlink(missing_ok=True)
        if proc.returncode != 0:
            raise DisposableError(f"The apt resolver failed ({command}):\n{proc.stderr.strip()[-3000:]}")
        answer: dict[str, Any] = json.loads(proc.stdout)
        if "error" in answer:
            raise DisposableError(f"apt ({command}): {answer['error']}")
        return answer

    def update(self) -> None:
        """Refresh the package lists (once per AptRoot)."""
        if self._updated:
            return
        start = time.monotonic()
        origins = ", ".join(f"{s.uri} {'/'.join(s.suites)}" for s in self.sources)
        say(f"apt: refreshing the package lists of {origins}")
        try:
            self._run("update", {})
        except DisposableError as exc:
            raise DisposableError(
                str(exc), "Check that the archive is reachable from this machine (mirror, proxy, DNS)."
            ) from None
        self._updated = True
        say(f"apt: package lists ready ({fmt_seconds(time.monotonic() - start)})")

    def resolve(
        self, image_roots: Iterable[str], host_roots: Iterable[str], enforce: dict[str, str]
    ) -> list[dict[str, Any]]:
        self.update()
        answer = self._run(
            "resolve",
            {
                "image_roots": sorted(set(image_roots)),
                "host_roots": sorted(set(host_roots)),
                "minbase": True,
                "minbase_first": ["usr-is-merged"],
                "enforce": enforce,
            },
        )
        return list(answer["entries"])

    def lookup(self, entries: Iterable[LockEntry]) -> dict[tuple[str, str, str], Offer]:
        """Which of these exact packages the archive offers now (any sha256: callers compare)."""
        self.update()
        wanted = [[e.name, e.version, e.architecture] for e in entries]
        found = self._run("lookup", {"wanted": wanted})["found"]
        result = {}
        for key, offer in found.items():
            name, version, arch = key.split(" ")
            result[(name, version, arch)] = Offer(offer["sha256"], offer["suite"], offer["uri"], int(offer["size"]))
        return result

    def fetch(self, entries: Sequence[LockEntry], dest: Path) -> list[Path]:
        """Download each package into dest; apt checks every file against the lock's sha256."""
        self.update()
        size = sum(1 for _ in entries)
        start = time.monotonic()
        say(f"apt: downloading {size} package(s) into the package store")
        items = [[e.name, e.version, e.architecture, e.sha256] for e in entries]
        files = [Path(f) for f in self._run("fetch", {"items": items, "dest": str(dest)})["files"]]
        total = sum(f.stat().st_size for f in files)
        say(f"apt: downloaded {len(files)} package(s), {total / 1e6:.0f} MB in {fmt_seconds(time.monotonic() - start)}")
        return files

    def forget(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
