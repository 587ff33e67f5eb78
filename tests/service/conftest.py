"""Shared fixtures: one trained model per session, in-process clients, real servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
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
# Figures measured by tests (latency, swap), printed at the end of the run.
FIGURES: list[tuple[str, dict[str, Any]]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("measured figures")
    for name, values in FIGURES:
        terminalreporter.write_line(f"{name}: {json.dumps(values, sort_keys=True)}")


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
def second_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1.1.0: trained on another data seed, so its outputs differ from 1.0.0's."""
    out = tmp_path_factory.mktemp("model-1.1.0")
    train.train(out, seed=TRAIN_SEED + 1, epochs=4, version="1.1.0")
    return out


def make_version(source: Path, target: Path, version: str | None = None) -> Path:
    """Copy an artifact to ``target`` (optionally relabelled as ``version``)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "model.safetensors", target / "model.safetensors")
    manifest = json.loads((source / "manifest.json").read_text())
    if version is not None:
        manifest["model"]["version"] = version
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return target


@pytest.fixture
def versioned_root(tmp_path: Path, model_dir: Path, second_model_dir: Path) -> Path:
    """A host's local model root: demand-predictor/1.0.0 and demand-predictor/1.1.0."""
    root = tmp_path / "models"
    make_version(model_dir, root / "demand-predictor" / "1.0.0")
    make_version(second_model_dir, root / "demand-predictor" / "1.1.0")
    return root


def corrupt(weights: Path) -> None:
    """Flip one byte in the middle of a file (same size, other sha256)."""
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on a free loopback port (and a unix socket), in a temp
    dir, no persistence; optionally with an ACL user that has a password."""

    def __init__(self, workdir: Path, user: str = "", password: str = "") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError(
                "redis-server not found: the feature-store tests need it "
                "(apt-get install --no-install-recommends redis-server)"
            )
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.user, self.password = user, password
        self.port = free_port()
        self.unix_socket = str(workdir / "redis.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", self.unix_socket,
            "--unixsocketperm", "700",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        if self.user:
            args += ["--user", "default", "off", "--user", self.user, "on", f">{self.password}"]
            args += ["~fv:*", "+@all"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll(self._answers, timeout=10)

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {(self.workdir / 'redis.log').read_text()}")
        try:
            return self.cli("PING").strip() in ("PONG", "NOAUTH Authentication required.")
        except (OSError, subprocess.SubprocessError):
            return False

    def cli(self, *command: str) -> str:
        """redis-cli against this server (as the ACL user when there is one)."""
        env = {**os.environ, "REDISCLI_AUTH": self.password} if self.password else None
        args = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port)]
        if self.user:
            args += ["--user", self.user]
        out = subprocess.run(
            [*args, *command], capture_output=True, timeout=10, env=env, check=False
        )
        return out.stdout.decode()

    def client(self) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=self.user or None,
            password=self.password or None,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()
