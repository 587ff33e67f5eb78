"""HAProxy's runtime API on the load-balancer host, reached over SSH (the socket is local
to that host and admin-level): server states and sessions, drain / maint / ready.

A reload of HAProxy forgets these runtime states, so nothing here reloads it, and the
tools never reconfigure the load balancer while a rollout is in progress.
"""

from __future__ import annotations

import csv
import io
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from disposable.errors import DisposableError
from disposable.hosts import ssh
from disposable.hosts.contract import Contract, Host

SOCKET = "/run/haproxy/admin.sock"
BACKEND = "inference"
REFUSALS = ("no such", "unknown", "permission denied", "require")  # how the runtime API says no
_SEND = (
    "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
    "s.sendall(sys.argv[2].encode() + b'\\n'); sys.stdout.write(b''.join(iter(lambda: s.recv(65536), b'')).decode())"
)


@dataclass(frozen=True)
class ServerState:
    name: str
    status: str  # UP, DOWN, DRAIN, MAINT, "UP 1/2"...
    sessions: int  # current sessions (scur)
    queued: int  # requests waiting for it (qcur)
    weight: int


class RuntimeApi:
    def __init__(self, env: str, lb: Host, backend: str = BACKEND) -> None:
        self.env, self.lb, self.backend = env, lb, backend

    @classmethod
    def of(cls, env: str, contract: Contract) -> RuntimeApi:
        lbs = contract.in_group("lb")
        if not lbs:
            raise DisposableError(
                f"Environment {env} has no load balancer (no host in group lb).",
                "Provision one (the local environment's lb_count=1, the default), then `invoke configure`.",
            )
        return cls(env, lbs[0])

    def command(self, command: str) -> str:
        remote = f"sudo python3 -c {shlex.quote(_SEND)} {SOCKET} {shlex.quote(command)}"
        proc = subprocess.run([*ssh.ssh_argv(self.env, self.lb), remote], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DisposableError(f"HAProxy runtime API on {self.lb.name}: `{command}` failed: {proc.stderr.strip()}")
        answer = proc.stdout.strip()
        if answer.lower().startswith(REFUSALS):
            raise DisposableError(f"HAProxy runtime API on {self.lb.name}: `{command}`: {answer}")
        return answer

    def servers(self) -> dict[str, ServerState]:
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        result = {}
        for row in rows:
            if row["pxname"] == self.backend and row["svname"] not in ("FRONTEND", "BACKEND"):
                result[row["svname"]] = ServerState(
                    row["svname"], row["status"], int(row["scur"] or 0), int(row["qcur"] or 0), int(row["weight"] or 0)
                )
        return result

    def state(self, server: str) -> ServerState:
        found = self.servers().get(server)
        if found is None:
            raise DisposableError(f"HAProxy on {self.lb.name} has no server {server} in backend {self.backend}.")
        return found

    def set_state(self, server: str, state: str) -> None:
        """ready, drain (finish current sessions, take no new ones) or maint (no traffic)."""
        self.command(f"set server {self.backend}/{server} state {state}")

    def wait_drained(self, server: str, timeout: float = 60) -> float:
        """Until the server holds no session and nothing waits for it; seconds waited."""
        return self._wait(server, lambda s: s.sessions == 0 and s.queued == 0, "drained", timeout)

    def wait_up(self, server: str, timeout: float = 120) -> float:
        """Until HAProxy's health checks count the server UP (in rotation); seconds waited."""
        return self._wait(server, lambda s: s.status == "UP", "UP", timeout)

    def wait_down(self, server: str, timeout: float = 30) -> float:
        return self._wait(server, lambda s: s.status.startswith(("DOWN", "MAINT")), "out of rotation", timeout)

    def _wait(self, server: str, done: Callable[[ServerState], bool], what: str, timeout: float) -> float:
        start = time.monotonic()
        last: ServerState | None = None
        while time.monotonic() - start < timeout:
            last = self.state(server)
            if done(last):
                return time.monotonic() - start
            time.sleep(0.5)
        raise DisposableError(f"{server} not {what} after {timeout:.0f}s (last: {last}).")
