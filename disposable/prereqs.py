"""Checks that the controller can do what was asked, with a message that says what to do."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from disposable.errors import DisposableError

SUPPORTED = {("debian", "12")}


def os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return values


def check_os(path: Path = Path("/etc/os-release")) -> None:
    info = os_release(path)
    found = (info.get("ID", "?"), info.get("VERSION_ID", "?"))
    if found not in SUPPORTED and not os.environ.get("DML_ALLOW_UNSUPPORTED_OS"):
        raise DisposableError(
            f"Unsupported operating system: {info.get('PRETTY_NAME', '/'.join(found))}.",
            "The local cloud is built and tested on Debian 12 (bookworm). Use a Debian 12 machine or VM, "
            "or set DML_ALLOW_UNSUPPORTED_OS=1 to try anyway.",
        )


def check_root() -> None:
    if os.geteuid() != 0:
        raise DisposableError(
            "This step needs root (apt, debootstrap, the LXD daemon).",
            "Run it as root, e.g. `sudo ./bootstrap.sh setup`.",
        )


def check_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise DisposableError(
            f"Missing required tool(s): {', '.join(missing)}.",
            "Run ./bootstrap.sh setup, which installs everything the project needs.",
        )
