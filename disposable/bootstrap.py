"""The Python half of ./bootstrap.sh: LXD daemon, storage pool, the package store (the apt
lock's packages), host image, Terraform engine and provider mirror. Idempotent; prints what
it did and how long it took. DML_FROZEN=1: the store must satisfy the committed apt lock
exactly (see disposable.packages.supply)."""

from __future__ import annotations

import sys
import time

from disposable import configuring, prereqs
from disposable.console import fmt_seconds, say
from disposable.engine import providers as mirror
from disposable.engine.binary import find_engine
from disposable.errors import DisposableError
from disposable.local import image, lxd
from disposable.packages import supply


def setup() -> None:
    prereqs.check_root()
    prereqs.check_tools("lxd", "lxc", "debootstrap", "ssh", "ssh-keygen", "aptly", "gpg")
    steps = [
        ("LXD daemon", lxd.start_daemon),
        ("LXD storage pool", lxd.ensure_storage_pool),
        ("package store (apt lock)", lambda: supply.prepare(configuring.frozen_requested())),
        ("host image", image.ensure_image),
        ("Terraform provider mirror", mirror.ensure_mirror),
        ("Terraform engine", lambda: say(f"Terraform engine: {find_engine().describe()}")),
    ]
    for name, step in steps:
        start = time.monotonic()
        step()
        say(f"[bootstrap] {name}: ok ({fmt_seconds(time.monotonic() - start)})")


def main() -> int:
    try:
        setup()
    except DisposableError as exc:
        print(f"[bootstrap] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
