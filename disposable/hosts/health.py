"""HTTP health check of the inference service on every inference host.

How /readyz is reached depends on the host's connection in the contract:
- `direct` (the local cloud, or a GCP host with a public address): GET it from here;
- `iap` (a private GCP host): the controller has no route to the private address, so the
  request runs ON the host, over the same SSH path Ansible uses (IAP tunnel, the
  environment's key and known_hosts): a python3 one-liner GETs http://127.0.0.1:<port>/readyz
  and prints the status. python3 is on every host (Ansible needs it).
A fleet behind a load balancer is checked through its front door instead (`wait_front_door`).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Sequence

import httpx

from disposable.console import say
from disposable.errors import DisposableError
from disposable.hosts import ssh
from disposable.hosts.contract import Contract, Host

SERVICE_PORT = 8080
SSH_TIMEOUT = 60

# Runs an argv, returns (exit code, stdout + stderr). Replaced by a fake in the unit tests.
Runner = Callable[[Sequence[str]], tuple[int, str]]
# One readiness probe: (ready, what was seen).
Probe = Callable[[], tuple[bool, str]]

# Prints "<status> <start of body>" for any HTTP answer; a refused connection raises (exit 1).
_REMOTE_PROBE = """import urllib.request as u, urllib.error as e
try:
    r = u.urlopen("{url}", timeout=5); print(r.status, r.read(200).decode(errors="replace"))
except e.HTTPError as x:
    print(x.code, x.read(200).decode(errors="replace"))"""


def subprocess_runner(argv: Sequence[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=SSH_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {SSH_TIMEOUT}s"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def ssh_probe_argv(env: str, host: Host, port: int) -> list[str]:
    """ssh to the host the way Ansible does (IAP ProxyCommand for `iap` hosts), running the
    readiness GET on the host itself."""
    argv = ssh.ssh_argv(env, host)  # with the IAP ProxyCommand for `iap` hosts
    code = _REMOTE_PROBE.format(url=f"http://127.0.0.1:{port}/readyz")
    return [*argv, f"python3 -c {shlex.quote(code)}"]


def _direct_probe(url: str) -> Probe:
    def probe() -> tuple[bool, str]:
        try:
            response = httpx.get(url, timeout=5)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return response.status_code == 200, f"HTTP {response.status_code}: {response.text[:200]}"

    return probe


def _ssh_probe(argv: Sequence[str], runner: Runner) -> Probe:
    def probe() -> tuple[bool, str]:
        code, output = runner(argv)
        lines = output.strip().splitlines()
        status = lines[-1].split(" ", 1)[0] if code == 0 and lines else ""
        if status == "200":
            return True, "HTTP 200"
        if status.isdigit():
            return False, f"HTTP {lines[-1][:200]}"
        return False, f"ssh exit {code}: {output.strip()[-300:] or 'no output'}"

    return probe


def _wait(name: str, where: str, probe: Probe, timeout: float, hint: str) -> float:
    start = time.monotonic()
    while True:
        ready, seen = probe()
        if ready:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise DisposableError(f"{name}: {where} not ready after {timeout:.0f}s ({seen}).", hint)
        time.sleep(1)


def wait_ready(
    contract: Contract, port: int = SERVICE_PORT, timeout: float = 60, runner: Runner | None = None
) -> dict[str, float]:
    """Poll /readyz on each inference host until 200 (directly, or on the host over SSH/IAP
    for `iap` hosts); return the seconds each took. Raises on timeout."""
    waited: dict[str, float] = {}
    hosts = [h for h in contract.hosts if "inference" in h.groups]
    if not hosts:
        say("Health: no inference hosts in this environment, no service to check")
    for host in hosts:
        hint = f"Look at the service: `invoke ssh {host.name} -- sudo journalctl -u demand-predictor -n 50`."
        if host.connection == "iap":
            where = f"http://127.0.0.1:{port}/readyz on the host (over SSH through IAP)"
            probe = _ssh_probe(ssh_probe_argv(contract.environment, host, port), runner or subprocess_runner)
        else:
            where = f"http://{host.address}:{port}/readyz"
            probe = _direct_probe(where)
        waited[host.name] = _wait(host.name, where, probe, timeout, hint)
        say(f"Health: {host.name} {where} -> 200 ({waited[host.name]:.1f}s)")
    return waited


def wait_front_door(url: str, timeout: float = 300) -> float:
    """Poll <front door>/readyz until 200: the load balancer answers only when at least one
    host is in rotation (its own /readyz health check passed)."""
    where = f"{url.rstrip('/')}/readyz"
    seconds = _wait(
        "front door",
        where,
        _direct_probe(where),
        timeout,
        "A new load balancer takes minutes to program; `gcloud compute backend-services get-health` shows the hosts.",
    )
    say(f"Health: front door {where} -> 200 ({seconds:.1f}s)")
    return seconds


SHED_ERRORS = {"queue_full", "latency_budget"}


def is_shed(response: httpx.Response) -> bool:
    """An answer of the service's admission control (overload), not of its correctness."""
    if response.status_code not in (429, 503):
        return False
    try:
        return response.json().get("error") in SHED_ERRORS
    except ValueError:
        return False


def post_until_not_shed(url: str, body: object, timeout: float) -> tuple[httpx.Response, int]:
    """POST `body` to `url`; asked again while admission control sheds it, until `timeout`
    s have passed. A busy host's load shedding says "later", not "wrong": a client asks
    again (after Retry-After, at most 1 s). Returns the last answer and how often it was
    shed; any other answer is returned at once, and HTTP errors propagate."""
    shed = 0
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(url, json=body, timeout=timeout)
        if not is_shed(response) or time.monotonic() >= deadline:
            return response, shed
        shed += 1
        time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 1.0))


# A request with only where and when: recent rides and weather come from the feature store.
ZONE_ONLY = {"instances": [{"zone_id": 3, "hour": 8, "day_of_week": 1}]}


def check_zone_only_prediction(url: str, timeout: float = 10) -> dict[str, object]:
    """POST a zone-only prediction to `url` (the front door, or a host): it must answer 200
    with fresh features (`stale: false`), which only the feature store can provide."""
    where = f"{url.rstrip('/')}/v1/predict"
    hint = (
        "The service reads features from the environment's feature store: `invoke feed --once` writes the "
        "current interval; `invoke status` shows whether the features host is up."
    )
    try:
        response, shed = post_until_not_shed(where, ZONE_ONLY, timeout)
    except httpx.HTTPError as exc:
        raise DisposableError(f"Zone-only prediction: {where} did not answer ({exc}).", hint) from exc
    if shed:
        say(f"Feature store: the zone-only prediction was shed {shed} time(s) (host busy) before it was answered")
    if response.status_code != 200:
        raise DisposableError(f"Zone-only prediction: {where} -> {response.status_code} {response.text[:200]}", hint)
    prediction = response.json()["predictions"][0]
    if prediction.get("stale") is not False:
        raise DisposableError(f"Zone-only prediction: {where} answered with stale features: {prediction}", hint)
    say(f"Feature store: a zone-only prediction through {where} -> 200, fresh features: {prediction}")
    return dict(prediction)
