"""Readiness withheld while the service still serves: the operator's not-ready file, and
the announced shutdown (SIGTERM with drain_serve_s) that lets a load balancer take the
host out before it refuses anything. Real server processes on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import ServerProcess, poll

ROW = {
    "zone_id": 3,
    "hour": 8,
    "day_of_week": 2,
    "weather": {"temperature_c": 10.0, "precipitation_mm_h": 0.0, "wind_speed_m_s": 3.0},
    "recent_rides": [4, 5, 6, 7],
}


def _predict(url: str) -> int:
    return httpx.post(f"{url}/v1/predict", json={"instances": [ROW]}, timeout=5).status_code


def test_the_not_ready_file_takes_the_host_out_but_predictions_still_work(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    flag = tmp_path / "not-ready"
    server = start_server(DP_NOT_READY_FILE=str(flag))
    server.wait_listening()
    poll(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 60)
    flag.touch()
    answer = httpx.get(f"{server.url}/readyz")
    assert answer.status_code == 503 and "not-ready exists" in answer.json()["reason"]
    assert _predict(server.url) == 200
    flag.unlink()
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_sigterm_announces_then_keeps_serving_then_drains(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(DP_DRAIN_SERVE_S="2", DP_DRAIN_GRACE_S="0.5")
    server.wait_listening()
    poll(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 60)
    server.terminate()
    time.sleep(0.3)
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 503 and "shutting down (SIGTERM)" in ready.json()["reason"]
    assert _predict(server.url) == 200, "still served while the load balancer notices"
    assert server.proc.wait(30) == 0
    events = [e.get("event") for e in server.events()]
    assert (
        events.index("drain_announced")
        < events.index("drain_started")
        < events.index("drain_finished")
    )
    assert json.dumps(events)
