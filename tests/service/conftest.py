"""Shared fixtures: one trained model per session, in-process clients, real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"
if str(SERVICE_DIR) not in sys.path:
    sys.path.insert(0, str(SERVICE_DIR))

from demand_predictor import train
from demand_predictor.app import create_app
from demand_predictor.config import load_settings
from fastapi.testclient import TestClient

TRAIN_SEED = 7


def poll(condition: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Return the first truthy value of ``condition()``; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def instance(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "zone_id": 3,
        "hour": 18,
        "day_of_week": 2,
        "weather": {"temperature_c": 11.5, "precipitation_mm_h": 2.0, "wind_speed_m_s": 4.0},
        "recent_rides": [10, 12, 14, 15],
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train.train(out, seed=TRAIN_SEED, epochs=4, version="1.0.0")
    return out


@pytest.fixture(scope="session")
def manifest(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "manifest.json").read_text())


@pytest.fixture
def make_client(model_dir: Path) -> Iterator[Callable[..., TestClient]]:
    """Factory: an in-process app (real model) with DP_* overrides, already ready."""
    clients: list[TestClient] = []

    def factory(wait_ready: bool = True, **env: str) -> TestClient:
        environ = {"DP_MODEL_DIR": str(model_dir), "DP_ACCESS_LOG": "false", **env}
        client = TestClient(create_app(load_settings(environ)), base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        if wait_ready:
            poll(lambda: client.get("/readyz").status_code == 200, timeout=30)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


class ServerProcess:
    """``python -m demand_predictor serve`` on 127.0.0.1 with an OS-chosen port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DP_")},
            "PYTHONPATH": str(SERVICE_DIR),
            "DP_HOST": "127.0.0.1",
            "DP_PORT": "0",
            **env,
        }
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "demand_predictor", "serve"],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self.port = 0

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_listening(self, timeout: float = 30) -> int:
        def listening() -> int:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_path.read_text()}")
            for event in self.events():
                if event.get("event") == "listening":
                    return int(event["port"])
            return 0

        self.port = poll(listening, timeout)
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def start_server(tmp_path: Path, model_dir: Path) -> Iterator[Callable[..., ServerProcess]]:
    servers: list[ServerProcess] = []

    def factory(**env: str) -> ServerProcess:
        merged = {"DP_MODEL_DIR": str(model_dir), **env}
        server = ServerProcess(merged, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close()
