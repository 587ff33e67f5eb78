"""Terminal output: stage banners, progress of long commands, timing tables."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

HEARTBEAT_SECONDS = 15.0

# Commands started by `run` inside `at_lowest_cpu_priority()` run under `nice -n 19`, and
# so do the processes they start (ansible-playbook's workers, Mitogen's, ssh).
LOWEST_CPU_PRIORITY = 19
_NICENESS: ContextVar[int] = ContextVar("niceness", default=0)


@contextlib.contextmanager
def at_lowest_cpu_priority() -> Iterator[None]:
    """Background work on this machine: it gets a CPU only when nothing else wants one.
    Soft, like LXD's cpu allowance: on idle CPUs it runs at full speed."""
    token = _NICENESS.set(LOWEST_CPU_PRIORITY)
    try:
        yield
    finally:
        _NICENESS.reset(token)


def niceness() -> int:
    """The nice increment `run` gives the commands it starts now (0: none)."""
    return _NICENESS.get()


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def fmt_seconds(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f}s"


@dataclass
class CommandResult:
    returncode: int
    output: str
    seconds: float


def run(
    argv: Sequence[str],
    *,
    label: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    echo: bool = True,
    line_filter: Callable[[str], bool] | None = None,
) -> CommandResult:
    """Run a command, stream its output (prefixed) and print a heartbeat while it is quiet.

    The full output is also returned, so callers can recognise known failures.
    """
    start = time.monotonic()
    merged_env = dict(os.environ)
    if env:
        merged_env.update(env)
    prefix = ["nice", "-n", str(increment)] if (increment := niceness()) else []
    proc = subprocess.Popen(
        [*prefix, *argv],
        cwd=cwd,
        env=merged_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    lines: list[str] = []
    last_output = [time.monotonic()]
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(1.0):
            if time.monotonic() - last_output[0] >= HEARTBEAT_SECONDS:
                say(f"  [{label}] still running ({fmt_seconds(time.monotonic() - start)})")
                last_output[0] = time.monotonic()

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if echo and (line_filter is None or line_filter(line)):
            sys.stdout.write(f"  [{label}] {line}" if line.strip() else line)
            sys.stdout.flush()
            last_output[0] = time.monotonic()
    returncode = proc.wait()
    done.set()
    beat.join()
    return CommandResult(returncode, "".join(lines), time.monotonic() - start)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(str(cell))) for w, cell in zip(widths, row, strict=True)]
    out = [
        " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    out += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)
