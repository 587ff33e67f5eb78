"""One run at a time changes an environment.

Terraform locks its state only while one of its commands runs; the controller also
reconciles state and reality between them (drops what was deleted out of band, removes
objects Terraform does not know). Done by a second run while the first is creating a
host, that reconciliation would delete the host being created. So provision, plan and
destroy hold this lock (an flock on .state/<env>/run.lock: released by the kernel when
the holder dies, never stale) from before they reconcile until Terraform is done, and
wait for it as long as Terraform would wait for its own lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import time
from collections.abc import Iterator

from disposable.errors import DisposableError
from disposable.paths import state_dir


def seconds(lock_timeout: str) -> float:
    """Terraform's duration syntax as used for -lock-timeout: 0s, 60s, 5m, 1h30m."""
    parts = re.fullmatch(r"((\d+)h)?((\d+)m)?((\d+)s)?", lock_timeout.strip())
    if not lock_timeout.strip() or not parts:
        raise DisposableError(
            f"--lock-timeout {lock_timeout!r} is not a duration.", "Use Terraform's form: 0s, 60s, 5m, 1h."
        )
    hours, minutes, secs = (int(parts.group(i) or 0) for i in (2, 4, 6))
    return hours * 3600 + minutes * 60 + secs


@contextlib.contextmanager
def holding(env: str, what: str, lock_timeout: str = "60s", poll: float = 0.5) -> Iterator[None]:
    path = state_dir(env) / "run.lock"
    deadline = time.monotonic() + seconds(lock_timeout)
    with open(path, "a+", encoding="utf-8") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise DisposableError(
                        f"{what}: the {env} state is locked by another run ({holder}); gave up after waiting "
                        f"{lock_timeout}. Nothing was changed.",
                        "Wait for the other run to finish and retry (a run that died released its lock).",
                    ) from None
                time.sleep(poll)
        since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what}, pid {os.getpid()}, since {since}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
