"""Integration tests: real LXD containers, real Terraform state, real Ansible over SSH.

They drive the project exactly as a user does, through `invoke`, and need the setup that
./bootstrap.sh performs (LXD daemon, host image, provider mirror). They run in CI.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")


class Invoke:
    """Run `invoke ...` in the repository, echo its output, return (exit code, output)."""

    def __init__(self, program: str = INVOKE) -> None:
        self.program = program

    def __call__(self, *args: str, timeout: float = 900, env: dict[str, str] | None = None) -> tuple[int, str]:
        """The timeout holds even when the command prints nothing (a silent hang): output is
        read by a thread, and the whole process group is killed when time is up."""
        start = time.monotonic()
        shown = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        print(f"\n$ {shown + ' ' if shown else ''}invoke {' '.join(args)}", flush=True)
        proc = self.popen(*args, env=env)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
        output = []
        while True:
            left = timeout - (time.monotonic() - start)
            try:
                line = lines.get(timeout=max(left, 0))
            except queue.Empty:
                _kill_group(proc)
                pytest.fail(f"invoke {' '.join(args)} ran longer than {timeout}s (killed)")
            if line is None:
                break
            output.append(line)
            print(line, end="", flush=True)  # streamed, so long stages show progress in CI logs
        code = proc.wait()
        print(f"(exit {code} after {time.monotonic() - start:.1f}s)", flush=True)
        return code, "".join(output)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.program, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: a timeout kills terraform/ansible too
        )


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session")
def invoke() -> Invoke:
    proc = subprocess.run(["lxc", "query", "/1.0"], capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.fail("LXD is not running: run ./bootstrap.sh setup (the integration tests need the local cloud)")
    return Invoke()


def lxc_names(kind: str) -> set[str]:
    """Names of LXD objects of a kind (list, network list, profile list)."""
    args = ["lxc", "list"] if kind == "instance" else ["lxc", kind, "list"]
    out = subprocess.run(
        [*args, "--format=csv", "-c", "n"] if kind == "instance" else [*args, "--format=csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split(",")[0] for line in out.splitlines() if line}
