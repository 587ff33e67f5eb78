"""Run the service under uvicorn with graceful drain on SIGTERM/SIGINT.

Drain sequence (first signal):
1. readiness turns 503 at once; new predictions get 503 ``draining`` with
   ``Connection: close`` (refused before being accepted);
2. requests already accepted (in flight or queued) run to completion, and for at
   least ``drain_grace_s`` newcomers keep getting that 503 (so keep-alive clients and
   load balancers move away before the socket closes);
3. uvicorn then stops listening, closes idle connections and exits; the inference
   worker finishes and the process exits 0.
Everything fits in ``drain_timeout_s`` (keep systemd's TimeoutStopSec above it). A
second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from types import FrameType
from typing import Any

import uvicorn

from demand_predictor import artifact
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
    ) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.drain_timeout_s = drain_timeout_s
        self.drain_grace_s = drain_grace_s
        self.exit_code = EXIT_OK
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested = False
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                log.info("listening", extra={"event": "listening", "host": host, "port": port})

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
        self.runtime.begin_drain()  # readiness and new requests see it from now on
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
    result goes to the loader, which maps that very file without hashing it again."""
    return artifact.verify(settings.model_dir, settings.expected_sha256)


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


def run(settings: Settings) -> int:
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
    options: dict[str, Any] = event_loop_options()
    if options["http"] == "httptools":
        from demand_predictor.protocol import early_refusal_protocol

        options["http"] = early_refusal_protocol(
            app.state.predict_endpoint, app.state.request_recorder
        )
    config = uvicorn.Config(
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
    server = DrainingServer(config, runtime, settings.drain_timeout_s, settings.drain_grace_s)
    runtime.on_fatal = server.fail
    server.run()
    if not server.started and server.exit_code == EXIT_OK:
        return EXIT_FAILED  # e.g. the port was taken
    log.info("stopped", extra={"event": "stopped", "exit_code": server.exit_code})
    return server.exit_code
