"""The real server as a subprocess on 127.0.0.1: readiness timing and graceful drain."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerProcess, instance, poll


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def metric(port: int, name: str) -> float:
    _, text = get(port, "/metrics")
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exposed")


def test_ready_only_after_warmup_of_every_bucket(
    start_server: Callable[..., ServerProcess],
) -> None:
    rounds = 400  # long enough that the not-ready window is observable
    server = start_server(DP_WARMUP_ROUNDS=str(rounds), DP_MAX_BATCH="32")
    port = server.wait_listening()
    seen: list[tuple[int, int]] = []

    def ready() -> bool:
        live, _ = get(port, "/livez")
        status, _ = get(port, "/readyz")
        seen.append((live, status))
        return status == 200

    poll(ready, timeout=60, interval=0.01)
    assert (200, 503) in seen, "liveness should answer while readiness is still 503"
    assert get(port, "/v2/health/ready")[0] == 200
    # Every bucket (1, 2, 4, 8, 16, 32) was warmed `rounds` times before readiness.
    assert metric(port, "dp_warmup_batches_total") == 6 * rounds
    events = [e.get("event") for e in server.events()]
    assert events.index("listening") < events.index("model_ready")


def test_predict_is_503_until_ready(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(DP_WARMUP_ROUNDS="400")
    port = server.wait_listening()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/predict", json.dumps({"instances": [instance()]}))
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status == 503:  # still warming up (expected with 400 rounds)
        assert body["error"] == "not_ready" and response.getheader("retry-after") == "1"
    else:
        assert response.status == 200
        assert metric(port, "dp_ready") == 1


class LoadClient(threading.Thread):
    """Sends predictions back to back on a keep-alive connection until refused."""

    def __init__(self, port: int, rows: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.body = json.dumps({"instances": [instance(zone_id=z % 32) for z in range(rows)]})
        self.stop_event = stop
        self.outcomes: Counter[str] = Counter()
        self.ok_after_term = 0
        self.term_sent_at: float | None = None

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stop_event.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    conn.connect()
            except ConnectionRefusedError:
                self.outcomes["refused_connect"] += 1  # listener closed: never accepted
                return
            try:
                conn.request("POST", "/v1/predict", self.body)
                response = conn.getresponse()
                payload = json.loads(response.read())
            except (OSError, http.client.HTTPException) as exc:
                self.outcomes[f"lost:{type(exc).__name__}"] += 1
                return
            if response.status == 200:
                self.outcomes["ok"] += 1
                if self.term_sent_at is not None:
                    self.ok_after_term += 1
            elif response.status == 429:
                self.outcomes["shed_429"] += 1  # refused before acceptance; try again
            elif response.status == 503 and payload.get("error") == "draining":
                self.outcomes["refused_503"] += 1
                return
            else:
                self.outcomes[f"lost:http_{response.status}"] += 1
                return
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None


def test_sigterm_drains_with_zero_lost_requests(
    start_server: Callable[..., ServerProcess],
) -> None:
    drain_timeout = 10.0
    server = start_server(DP_DRAIN_TIMEOUT_S=str(drain_timeout), DP_ACCESS_LOG="false")
    port = server.wait_listening()
    poll(lambda: get(port, "/readyz")[0] == 200, timeout=60)
    stop = threading.Event()
    clients = [LoadClient(port, rows=64 if i % 2 else 1, stop=stop) for i in range(8)]
    for client in clients:
        client.start()
    poll(lambda: sum(c.outcomes["ok"] for c in clients) >= 200, timeout=60)

    sent_at = time.monotonic()
    for client in clients:
        client.term_sent_at = sent_at
    server.terminate()
    # Readiness flips at once: the first probe after SIGTERM is already 503.
    try:
        assert get(port, "/readyz")[0] == 503
    except ConnectionRefusedError:
        pass  # already gone: also not ready
    exit_code = server.proc.wait(drain_timeout + 5)
    exited_after = time.monotonic() - sent_at
    for client in clients:
        client.join(15)
    stop.set()

    totals: Counter[str] = Counter()
    for client in clients:
        totals.update(client.outcomes)
    lost = {k: v for k, v in totals.items() if k.startswith("lost")}
    assert lost == {}, f"lost requests: {lost}; all outcomes: {dict(totals)}"
    assert totals["ok"] >= 200
    assert totals["refused_503"] + totals["refused_connect"] == len(clients)
    assert exit_code == 0
    assert exited_after < drain_timeout
    events = {e.get("event"): e for e in server.events()}
    assert events["drain_finished"]["inflight_left"] == 0
    assert events["stopped"]["exit_code"] == 0
