"""Integration tests: real LXD containers, real Terraform state, real Ansible over SSH.

They drive the project exactly as a user does, through `invoke`, and need the setup that
./bootstrap.sh performs (LXD daemon, host image, provider mirror). They run in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")


class Invoke:
    """Run `invoke ...` in the repository, echo its output, return (exit code, output)."""

    def __call__(self, *args: str, timeout: float = 900, env: dict[str, str] | None = None) -> tuple[int, str]:
        start = time.monotonic()
        shown = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        print(f"\n$ {shown + ' ' if shown else ''}invoke {' '.join(args)}", flush=True)
        proc = self.popen(*args, env=env)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # streamed, so long stages show progress in CI logs
            lines.append(line)
            print(line, end="", flush=True)
            if time.monotonic() - start > timeout:
                proc.kill()
                pytest.fail(f"invoke {' '.join(args)} ran longer than {timeout}s")
        code = proc.wait()
        print(f"(exit {code} after {time.monotonic() - start:.1f}s)", flush=True)
        return code, "".join(lines)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [INVOKE, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )


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
