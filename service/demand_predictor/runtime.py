"""Service lifecycle: device -> load -> verify -> warm up -> ready -> draining -> stopped.

Loading runs on a background thread so liveness answers at once while readiness stays
false until the device is chosen, the weights are checksum-verified, loaded and every
batch bucket has been run ``warmup_rounds`` times. A load failure is fatal:
``on_fatal`` is called so the server exits non-zero instead of running unready forever.

A device refusal (``DP_DEVICE=cuda`` without a working CUDA device, see device.py) is
not a load failure: the process stays up and unready (phase ``refused``), so
``/readyz`` keeps answering 503 with the reason while the journal has it at ERROR,
and it never serves on the CPU instead.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum

import torch

from demand_predictor import artifact, device
from demand_predictor.batching import BatchingWorker
from demand_predictor.config import Settings
from demand_predictor.metrics import Metrics
from demand_predictor.predictor import Predictor

log = logging.getLogger("demand_predictor.runtime")


class Phase(str, Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    REFUSED = "refused"  # no acceptable device (DP_DEVICE=cuda without CUDA)
    DRAINING = "draining"
    STOPPED = "stopped"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        resolve_device: Callable[[str], device.DeviceChoice] = device.resolve,
    ) -> None:
        """``resolve_device`` applies the device policy (tests inject made-up facts)."""
        self.settings = settings
        self.metrics = metrics
        self.resolve_device = resolve_device
        self.phase = Phase.LOADING
        self.error = ""
        self.device_choice: device.DeviceChoice | None = None
        # Set by the server when it verified the artifact before binding the port:
        # the loader then maps that very file instead of hashing it a second time.
        self.verified: artifact.VerifiedArtifact | None = None
        self.worker: BatchingWorker | None = None
        self.predictor: Predictor | None = None
        self.manifest: artifact.Manifest | None = None
        self.inflight = 0
        self.on_fatal: Callable[[str], None] = lambda message: None
        # Set by the server: once warm, move every object alive so far (torch, the
        # app, the model) out of the garbage collector's view. A full collection
        # otherwise walks ~200k long-lived objects: a ~90 ms stall of the event loop.
        self.freeze_heap = False
        self._loader: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def start(self) -> None:
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def not_ready_reason(self) -> str:
        """Why /readyz is 503, for operators."""
        phase = self.phase
        if phase is Phase.LOADING:
            return "loading: choosing the device, verifying, loading and warming up the model"
        if phase in (Phase.REFUSED, Phase.FAILED):
            return self.error
        if phase is Phase.DRAINING:
            return "draining: shutting down"
        if phase is Phase.STOPPED:
            return "stopped"
        return ""

    def device_info(self) -> dict[str, object] | None:
        """The device as /readyz and /v1/models report it."""
        choice = self.device_choice
        if choice is None:
            return None
        info: dict[str, object] = choice.to_json()
        info["half"] = self.settings.half
        if self.predictor is not None:
            info["cuda_graph_buckets"] = list(self.predictor.graph_buckets)
        return info

    def choose_device(self) -> device.DeviceChoice | None:
        """The device to load on; None (phase refused, reason logged at ERROR) if none."""
        choice = self.device_choice = self.resolve_device(self.settings.device)
        device.log_choice(choice)
        if choice.refused:
            self.error = choice.reason
            if self.phase is Phase.LOADING:
                self.phase = Phase.REFUSED
            self.metrics.ready.set(0)
            return None
        self.metrics.device_info.labels(**choice.labels()).set(1)
        if self.settings.half and choice.device == "cpu":
            log.warning(
                "DP_HALF=true on the CPU: float16 matmuls are usually slower than float32 there",
                extra={"event": "half_on_cpu"},
            )
        return choice

    def _graph_fallback(self, size: int, why: str) -> None:
        self.metrics.cuda_graph_fallbacks.labels(str(size)).inc()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            torch.set_num_threads(self.settings.torch_threads)
            choice = self.choose_device()
            if choice is None:
                return
            loaded = artifact.load(
                self.settings.model_dir,
                choice.torch_device(),
                self.settings.expected_sha256,
                verified=self.verified,
            )
            self.verified = None  # the mapping holds the file now
            predictor = Predictor(loaded, self.settings.max_batch, half=self.settings.half)
            timings = predictor.warmup(
                self.settings.warmup_rounds,
                self.metrics.warmup_batches.inc,
                self._graph_fallback,
            )
            self.metrics.cuda_graph_buckets.set(len(predictor.graph_buckets))
            worker = BatchingWorker(
                predictor.predict,
                self.settings.max_batch,
                self.metrics,
                self.settings.torch_threads,
                initial_batch_seconds=timings,
            )
            if self.freeze_heap:
                gc.collect()
                gc.freeze()
            worker.start()
        except Exception as exc:  # noqa: BLE001 - any load failure is fatal
            self.phase = Phase.FAILED
            self.error = str(exc)
            log.error("model load failed: %s", exc, extra={"event": "model_load_failed"})
            self.on_fatal(str(exc))
            return
        manifest = loaded.manifest
        self.manifest = manifest
        self.predictor = predictor
        self.worker = worker
        self.metrics.model_info.labels(manifest.name, manifest.version, manifest.sha256).set(1)
        if self.phase is Phase.LOADING:  # a drain may have begun meanwhile
            self.phase = Phase.READY
            self.metrics.ready.set(1)
        log.info(
            "model ready",
            extra={
                "event": "model_ready",
                "model": manifest.name,
                "version": manifest.version,
                "sha256": manifest.sha256,
                "device": str(loaded.device),
                "device_name": choice.name,
                "half": self.settings.half,
                "cuda_graph_buckets": list(predictor.graph_buckets),
                "cuda_graph_fallbacks": len(predictor.graph_fallbacks),
                "buckets": list(predictor.buckets),
                "warmup_rounds": self.settings.warmup_rounds,
                "load_s": round(time.perf_counter() - started, 3),
            },
        )

    def begin_drain(self) -> None:
        if self.phase in (Phase.READY, Phase.LOADING, Phase.REFUSED):
            self.phase = Phase.DRAINING
        self.metrics.ready.set(0)

    def stop(self, timeout: float) -> None:
        self.begin_drain()
        if self.worker is not None and not self.worker.stop(timeout):
            log.warning("inference worker did not stop within %.1f s", timeout)
        if self.phase is not Phase.FAILED:
            self.phase = Phase.STOPPED

    def wait_loaded(self, timeout: float) -> bool:
        """For tools and tests: block until loading finished (ready or failed)."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self.phase is not Phase.LOADING
