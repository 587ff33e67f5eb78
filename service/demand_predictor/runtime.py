"""Service lifecycle: load -> verify -> warm up -> ready -> draining -> stopped.

Loading runs on a background thread so liveness answers at once while readiness stays
false until the weights are checksum-verified, loaded and every batch bucket has been
run ``warmup_rounds`` times. A load failure is fatal: ``on_fatal`` is called so the
server exits non-zero instead of running unready forever.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum

import torch

from demand_predictor import artifact
from demand_predictor.batching import BatchingWorker
from demand_predictor.config import Settings
from demand_predictor.metrics import Metrics
from demand_predictor.predictor import Predictor

log = logging.getLogger("demand_predictor.runtime")


class Phase(str, Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"
    STOPPED = "stopped"


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise artifact.ArtifactError("DP_DEVICE=cuda but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


class Runtime:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.phase = Phase.LOADING
        self.error = ""
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

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            torch.set_num_threads(self.settings.torch_threads)
            device = pick_device(self.settings.device)
            loaded = artifact.load(self.settings.model_dir, device, self.settings.expected_sha256)
            predictor = Predictor(loaded, self.settings.max_batch)
            timings = predictor.warmup(self.settings.warmup_rounds, self.metrics.warmup_batches.inc)
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
                "device": str(device),
                "buckets": list(predictor.buckets),
                "warmup_rounds": self.settings.warmup_rounds,
                "load_s": round(time.perf_counter() - started, 3),
            },
        )

    def begin_drain(self) -> None:
        if self.phase in (Phase.READY, Phase.LOADING):
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
