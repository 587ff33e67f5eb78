"""Run the service under uvicorn with graceful drain on SIGTERM/SIGINT.

Drain sequence (first signal):
0. with ``drain_serve_s`` > 0: readiness turns 503 at once but predictions are still
   served for that long, so a load balancer's health checks take the host out of
   rotation before it refuses anything (the fleet sets it above HAProxy's fall x inter);
1. readiness turns (or stays) 503; new predictions get 503 ``draining`` with
   ``Connection: close`` (refused before being accepted);
2. requests already accepted (in flight or queued) run to completion, and for at
   least ``drain_grace_s`` newcomers keep getting that 503 (so keep-alive clients and
   load balancers move away before the socket closes);
3. uvicorn then stops listening, closes idle connections and exits; the inference
   worker finishes and the process exits 0.
Everything fits in ``drain_timeout_s`` (keep systemd's TimeoutStopSec above it). A
second signal exits at once.

SIGHUP re-reads the configuration and hot-loads its ``model_version`` (runtime.py);
the service keeps serving throughout. With ``DP_ADMIN_SOCKET`` set, the server also
listens on that unix socket (mode 0600): the admin endpoints answer only there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from demand_predictor import artifact, modelstore
from demand_predictor.app import create_app
from demand_predictor.config import Settings
from demand_predictor.metrics import Metrics
from demand_predictor.runtime import Runtime

log = logging.getLogger("demand_predictor.server")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_ARTIFACT = 2


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        runtime: Runtime,
        drain_timeout_s: float,
        drain_grace_s: float,
        admin_socket: socket.socket | None = None,
        drain_serve_s: float = 0.0,
    ) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.admin_socket = admin_socket
        self.drain_timeout_s = drain_timeout_s
        self.drain_grace_s = drain_grace_s
        self.drain_serve_s = drain_serve_s
        self.exit_code = EXIT_OK
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested = False
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGHUP, self.handle_reload)
        try:
            await super().serve(sockets)
        finally:
            if previous is not None:
                signal.signal(signal.SIGHUP, previous)

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                log.info("listening", extra={"event": "listening", "host": host, "port": port})
        if self.admin_socket is not None and not self.should_exit:
            config = self.config
            loop = asyncio.get_running_loop()

            def create_protocol() -> asyncio.Protocol:
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config,
                    server_state=self.server_state,
                    app_state=self.lifespan.state,
                    _loop=loop,
                )

            admin = await loop.create_unix_server(
                create_protocol, sock=self.admin_socket, backlog=64
            )
            self.servers.append(admin)
            path = self.admin_socket.getsockname()
            log.info("admin socket listening", extra={"event": "admin_listening", "path": path})

    def handle_reload(self, sig: int, frame: FrameType | None) -> None:
        """SIGHUP: load the configured model version on a thread; keep serving."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._start_reload)

    def _start_reload(self) -> None:
        log.info("SIGHUP: reloading the model version", extra={"event": "reload_requested"})
        threading.Thread(
            target=self.runtime.reload_config, name="model-reload", daemon=True
        ).start()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the signal handler: only hand over to the event loop.
        if self._loop is None:
            self.should_exit = True
            return
        if self._drain_requested:
            self.force_exit = True
            self.should_exit = True
            return
        self._drain_requested = True
        self._loop.call_soon_threadsafe(self._start_drain, signal.Signals(sig).name)

    def fail(self, message: str) -> None:
        """Called (thread-safe) when the model cannot be loaded: exit non-zero."""
        if self._loop is None:
            return

        def stop() -> None:
            self.exit_code = EXIT_FAILED
            self.should_exit = True

        self._loop.call_soon_threadsafe(stop)

    def _start_drain(self, signal_name: str) -> None:
        if self.drain_serve_s > 0 and self.runtime.ready:
            # Readiness first: the load balancer takes the host out while it still serves.
            self.runtime.readiness_hold = f"shutting down ({signal_name})"
            log.info(
                "shutdown announced",
                extra={
                    "event": "drain_announced",
                    "signal": signal_name,
                    "serve_s": self.drain_serve_s,
                },
            )
            assert self._loop is not None
            self._loop.call_later(self.drain_serve_s, self._begin_drain, signal_name)
            return
        self._begin_drain(signal_name)

    def _begin_drain(self, signal_name: str) -> None:
        self.runtime.begin_drain()  # new requests are refused from now on
        self._drain_task = asyncio.ensure_future(self._drain(signal_name))

    async def _drain(self, signal_name: str) -> None:
        started = time.monotonic()
        deadline = started + self.drain_timeout_s
        reserve = min(2.0, self.drain_timeout_s * 0.2)  # for uvicorn + worker shutdown
        grace_end = started + min(self.drain_grace_s, self.drain_timeout_s - reserve)
        log.info(
            "drain started",
            extra={
                "event": "drain_started",
                "signal": signal_name,
                "inflight": self.runtime.inflight,
            },
        )
        # Accepted work finishes; meanwhile, and for at least the grace period, newcomers
        # get 503 + Connection: close, so clients and balancers leave before we close.
        while time.monotonic() < deadline - reserve and (
            self.runtime.inflight > 0 or time.monotonic() < grace_end
        ):
            await asyncio.sleep(0.005)
        left = self.runtime.inflight
        log.log(
            logging.WARNING if left else logging.INFO,
            "drain finished",
            extra={
                "event": "drain_finished",
                "inflight_left": left,
                "drain_s": round(time.monotonic() - started, 3),
            },
        )
        self.config.timeout_graceful_shutdown = max(0.5, deadline - time.monotonic())
        self.should_exit = True


def verify_artifact(settings: Settings) -> artifact.VerifiedArtifact:
    """Checksum check before binding the port: a bad artifact refuses to start. The
    result goes to the loader, which maps that very file without hashing it again.
    With versioned models, a version missing here is pulled from DP_MODEL_STORE_URL."""
    try:
        model_dir = modelstore.ensure_local(settings)
    except modelstore.StoreError as exc:
        raise artifact.ArtifactError(str(exc)) from exc
    return artifact.verify(model_dir, settings.expected_sha256)


def bind_admin_socket(path: str) -> socket.socket:
    """A listening unix socket at ``path``, mode 0600 (owner only; root passes anyway).

    A stale socket file left by a crash is replaced; one that still answers is not.
    """
    target = Path(path)
    if target.exists() or target.is_symlink():
        if not stat.S_ISSOCK(target.lstat().st_mode):
            raise OSError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            target.unlink()  # nobody listens: stale
        else:
            raise OSError(f"{path} is in use by another process")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(64)
    sock.setblocking(False)
    return sock


# The inference thread and the event loop share the GIL. With CPython's default 5 ms
# switch interval, a thread waiting for the GIL (torch re-takes it after every op) can
# stall for up to 5 ms per handoff; 0.5 ms keeps handoffs short.
GIL_SWITCH_INTERVAL_S = 0.0005


def event_loop_options() -> dict[str, str]:
    """uvicorn's fastest event loop and HTTP parser available: uvloop + httptools (both
    C; several times less CPU per request than asyncio + h11), else the pure-Python
    pair. The benchmark's comparison servers use the same choice."""
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401
    except ImportError:
        return {"loop": "asyncio", "http": "h11"}
    return {"loop": "uvloop", "http": "httptools"}


def uvicorn_config(settings: Settings, app: FastAPI) -> uvicorn.Config:
    """The server settings of the service: uvloop + httptools with the early-refusal
    protocol (``DP_EARLY_REFUSAL``) bound to the app's prediction endpoint, serving the
    app's front (``app.state.asgi_front``). The benchmark's HTTP floor on the service's
    stack (bench/baselines.py) is served with exactly these."""
    options: dict[str, Any] = event_loop_options()
    if options["http"] == "httptools":
        from demand_predictor.protocol import early_refusal_protocol

        options["http"] = early_refusal_protocol(
            app.state.predict_endpoint, app.state.request_recorder, refuse=settings.early_refusal
        )
    return uvicorn.Config(
        app.state.asgi_front,
        host=settings.host,
        port=settings.port,
        **options,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        backlog=2048,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
    )


def run(settings: Settings, customize: Callable[[FastAPI], None] | None = None) -> int:
    """Serve until drained. ``customize(app)`` runs after the app is built and before
    the server settings are derived from it (the benchmark's floor swaps the
    prediction handler for a constant there); the service itself passes none."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        verified = verify_artifact(settings)
    except artifact.ArtifactError as exc:
        log.critical("refusing to start: %s", exc, extra={"event": "artifact_rejected"})
        return EXIT_BAD_ARTIFACT
    runtime = Runtime(settings, Metrics(settings.max_batch))
    runtime.verified = verified
    runtime.freeze_heap = True
    app = create_app(settings, runtime)
    if customize is not None:
        customize(app)
    config = uvicorn_config(settings, app)
    admin = None
    if settings.admin_socket:
        try:
            admin = bind_admin_socket(settings.admin_socket)
        except OSError as exc:
            log.critical(
                "cannot listen on the admin socket %s: %s",
                settings.admin_socket,
                exc,
                extra={"event": "admin_socket_failed"},
            )
            return EXIT_FAILED
    server = DrainingServer(
        config,
        runtime,
        settings.drain_timeout_s,
        settings.drain_grace_s,
        admin_socket=admin,
        drain_serve_s=settings.drain_serve_s,
    )
    runtime.on_fatal = server.fail
    try:
        server.run()
    finally:
        if admin is not None:
            admin.close()
            with contextlib.suppress(OSError):
                os.unlink(settings.admin_socket)
    if not server.started and server.exit_code == EXIT_OK:
        return EXIT_FAILED  # e.g. the port was taken
    log.info("stopped", extra={"event": "stopped", "exit_code": server.exit_code})
    return server.exit_code
