"""HTTP health check of the inference service on every inference host."""

from __future__ import annotations

import time

import httpx

from disposable.console import say
from disposable.errors import DisposableError
from disposable.hosts.contract import Contract

SERVICE_PORT = 8080


def wait_ready(contract: Contract, port: int = SERVICE_PORT, timeout: float = 60) -> dict[str, float]:
    """Poll /readyz on each host until 200; return the seconds each took. Raises on timeout."""
    waited: dict[str, float] = {}
    hosts = [h for h in contract.hosts if "inference" in h.groups]
    if not hosts:
        say("Health: no inference hosts in this environment, no service to check")
    for host in hosts:
        url = f"http://{host.address}:{port}/readyz"
        start = time.monotonic()
        last = ""
        while True:
            try:
                response = httpx.get(url, timeout=5)
                if response.status_code == 200:
                    break
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - start > timeout:
                raise DisposableError(
                    f"{host.name}: {url} not ready after {timeout:.0f}s ({last}).",
                    f"Look at the service: `invoke ssh {host.name} -- sudo journalctl -u demand-predictor -n 50`.",
                )
            time.sleep(1)
        waited[host.name] = time.monotonic() - start
        say(f"Health: {host.name} {url} -> 200 ({waited[host.name]:.1f}s)")
    return waited
