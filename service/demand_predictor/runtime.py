"""Service lifecycle: device -> load -> verify -> warm up -> ready -> draining -> stopped.

Loading runs on a background thread so liveness answers at once while readiness stays
false until the device is chosen, the weights are checksum-verified, loaded and every
batch bucket has been run ``warmup_rounds`` times. A load failure is fatal:
``on_fatal`` is called so the server exits non-zero instead of running unready forever.

A device refusal (``DP_DEVICE=cuda`` without a working CUDA device, see device.py) is
not a load failure: the process stays up and unready (phase ``refused``), so
``/readyz`` keeps answering 503 with the reason while the journal has it at ERROR,
and it never serves on the CPU instead.

Hot swap (``load_version``: the admin endpoint, SIGHUP): a new version is fetched if
missing (modelstore.py), verified, loaded and warmed up on a loader thread while the
current version keeps serving, then ``serving`` is replaced in one assignment. A
request reads ``serving`` once, when it starts, and its rows run on that version's
predictor (batching.py keeps versions apart), so requests in flight finish on the
version they started with; the old version is freed when the last of them is done. A
failed load changes nothing (the old version keeps serving); it is logged, counted and
reported to the caller. Readiness never drops during a swap.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from demand_predictor import artifact, device, modelstore
from demand_predictor.batching import BatchingWorker, Predict
from demand_predictor.config import ConfigError, Settings, load_settings
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


@dataclass(eq=False)
class Serving:
    """One loaded, warmed-up model version; a request keeps the one it started with."""

    manifest: artifact.Manifest
    predictor: Predictor
    artifact_dir: Path
    loaded_at: float = field(default_factory=time.time)
    predict: Predict = field(init=False)  # one bound method: the batch key in batching.py
    encoder: Any = None  # the response template, built by the app on first use

    def __post_init__(self) -> None:
        self.predict = self.predictor.predict

    @property
    def version(self) -> str:
        return self.manifest.version


class LoadFailed(Exception):
    """A hot load failed; the old version keeps serving. ``reason`` labels the metric."""

    def __init__(self, reason: str, message: str, status: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status  # the admin endpoint's HTTP status


@dataclass(frozen=True)
class LoadOutcome:
    result: str  # swapped, unchanged
    version: str
    previous: str
    sha256: str
    duration_s: float


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
        self.readiness_hold = (
            ""  # non-empty: /readyz says 503 with this reason, predictions still served
        )
        self.phase = Phase.LOADING
        self.error = ""
        self.device_choice: device.DeviceChoice | None = None
        # Set by the server when it verified the artifact before binding the port:
        # the loader then maps that very file instead of hashing it a second time.
        self.verified: artifact.VerifiedArtifact | None = None
        self.worker: BatchingWorker | None = None
        self.serving: Serving | None = None
        self.fetcher: Any = None  # feature_store.FeatureFetcher when a store is configured
        self.inflight = 0
        self._load_lock = threading.Lock()  # one hot load at a time
        self.loading_version = ""
        self.last_load: dict[str, object] | None = None
        self.on_fatal: Callable[[str], None] = lambda message: None
        # Set by the server: once warm, move every object alive so far (torch, the
        # app, the model) out of the garbage collector's view. A full collection
        # otherwise walks ~200k long-lived objects: a ~90 ms stall of the event loop.
        self.freeze_heap = False
        self._loader: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    @property
    def manifest(self) -> artifact.Manifest | None:
        serving = self.serving
        return None if serving is None else serving.manifest

    @property
    def predictor(self) -> Predictor | None:
        serving = self.serving
        return None if serving is None else serving.predictor

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
            model_dir = modelstore.ensure_local(self.settings)
            loaded = artifact.load(
                model_dir,
                choice.torch_device(),
                self.settings.expected_sha256,
                verified=self.verified,
            )
            self.verified = None  # the mapping holds the file now
            predictor = Predictor(
                loaded,
                self.settings.max_batch,
                half=self.settings.half,
                fused=self.settings.fused_model,
            )
            timings = predictor.warmup(
                self.settings.warmup_rounds,
                self.metrics.warmup_batches.inc,
                self._graph_fallback,
            )
            self.metrics.cuda_graph_buckets.set(len(predictor.graph_buckets))
            worker = BatchingWorker(
                self._predict_active,  # requests carry their version's; this is a fallback
                self.settings.max_batch,
                self.metrics,
                self.settings.torch_threads,
                initial_batch_seconds=timings,
                batching=self.settings.batching,
            )
            fetcher = self._feature_fetcher(worker)
            if self.freeze_heap:
                gc.collect()
                gc.freeze()
            worker.start()
            if fetcher is not None:
                fetcher.start()
        except Exception as exc:  # noqa: BLE001 - any load failure is fatal
            self.phase = Phase.FAILED
            self.error = str(exc)
            log.error("model load failed: %s", exc, extra={"event": "model_load_failed"})
            self.on_fatal(str(exc))
            return
        manifest = loaded.manifest
        self.serving = Serving(manifest, predictor, model_dir)
        self.worker = worker
        self.fetcher = fetcher
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
                "fused_model": self.settings.fused_model,
                "batching": self.settings.batching,
                "load_s": round(time.perf_counter() - started, 3),
            },
        )

    def _predict_active(self, columns: Any) -> Any:
        serving = self.serving
        assert serving is not None
        return serving.predict(columns)

    def _feature_fetcher(self, worker: BatchingWorker) -> Any:
        """The feature fetcher in front of ``worker``, or None without a store."""
        settings = self.settings
        if not settings.feature_store_url:
            return None
        from demand_predictor import feature_store

        client = feature_store.connect(
            settings.feature_store_url,
            settings.feature_store_username,
            settings.feature_store_password_file,
            settings.feature_store_timeout_ms / 1000.0,
        )
        store = feature_store.FeatureStore(client, settings.feature_store_city)
        log.info(
            "feature store configured",
            extra={
                "event": "feature_store_configured",
                "url": settings.feature_store_url,
                "username": settings.feature_store_username,
                "city": settings.feature_store_city,
                "timeout_ms": settings.feature_store_timeout_ms,
                "max_age_s": settings.feature_store_max_age_s,
            },
        )
        return feature_store.FeatureFetcher(
            store,
            worker.submit,
            self.metrics,
            settings.feature_store_max_age_s,
            settings.feature_store_retry_s,
        )

    # -- hot swap ---------------------------------------------------------------------
    def load_version(self, version: str, trigger: str) -> LoadOutcome:
        """Load, verify and warm up ``version`` while the current one serves, then swap.

        Blocking (call it on a thread). Raises LoadFailed; the current version keeps
        serving whatever happens here.
        """
        if not self._load_lock.acquire(blocking=False):
            raise LoadFailed(
                "busy", f"version {self.loading_version} is being loaded; try again later", 409
            )
        started = time.perf_counter()
        try:
            self.loading_version = version
            self.metrics.model_loading.set(1)
            outcome = self._load_version(version, trigger, started)
        except LoadFailed as exc:
            self._record(trigger, version, "failed", str(exc), started)
            self.metrics.model_loads.labels(trigger, "failed").inc()
            self.metrics.model_load_failures.labels(exc.reason).inc()
            log.error(
                "model version %s not loaded, %s keeps serving: %s",
                version,
                self.serving.version if self.serving else "nothing",
                exc,
                extra={
                    "event": "model_load_failed",
                    "version": version,
                    "trigger": trigger,
                    "reason": exc.reason,
                },
            )
            raise
        finally:
            self.loading_version = ""
            self.metrics.model_loading.set(0)
            self._load_lock.release()
        self._record(trigger, version, outcome.result, "", started)
        self.metrics.model_loads.labels(trigger, outcome.result).inc()
        return outcome

    def _record(self, trigger: str, version: str, result: str, error: str, started: float) -> None:
        self.last_load = {
            "version": version,
            "trigger": trigger,
            "result": result,
            "error": error,
            "at": time.time(),
            "duration_s": round(time.perf_counter() - started, 3),
        }

    def _load_version(self, version: str, trigger: str, started: float) -> LoadOutcome:
        settings = self.settings
        old = self.serving
        worker = self.worker
        if self.phase is not Phase.READY or old is None or worker is None:
            raise LoadFailed("not_ready", f"the service is {self.phase.value}", 503)
        if not settings.versioned:
            raise LoadFailed(
                "not_versioned",
                "versioned models are not configured: set DP_MODEL_VERSION (DP_MODEL_DIR is "
                "then the local store root, <root>/<name>/<version>)",
                409,
            )
        if version == old.version:
            log.info(
                "model version %s is already serving",
                version,
                extra={"event": "model_unchanged", "version": version, "trigger": trigger},
            )
            return LoadOutcome("unchanged", version, old.version, old.manifest.sha256, 0.0)
        log.info(
            "loading model version %s while %s serves",
            version,
            old.version,
            extra={"event": "model_load_started", "version": version, "trigger": trigger},
        )
        try:
            model_dir = modelstore.ensure_local(settings, version)
        except modelstore.StoreError as exc:
            status = 404 if exc.reason == "not_found" else 502 if exc.reason == "download" else 422
            raise LoadFailed(exc.reason, str(exc), status) from exc
        try:
            torch.set_num_threads(settings.torch_threads)
            loaded = artifact.load(model_dir, old.predictor.device)
            manifest = loaded.manifest
            if (manifest.name, manifest.version) != (settings.model_name, version):
                raise LoadFailed(
                    "invalid",
                    f"{model_dir}: the manifest describes {manifest.name} {manifest.version}, "
                    f"not {settings.model_name} {version}",
                    422,
                )
            predictor = Predictor(
                loaded, settings.max_batch, half=settings.half, fused=settings.fused_model
            )
            predictor.warmup(
                settings.warmup_rounds,
                self.metrics.warmup_batches.inc,
                self._graph_fallback,
                capture_lock=worker.batch_lock,
            )
        except LoadFailed:
            raise
        except artifact.ArtifactError as exc:
            reason = "checksum" if "checksum" in str(exc) or "changed" in str(exc) else "invalid"
            raise LoadFailed(reason, str(exc), 422) from exc
        except Exception as exc:
            raise LoadFailed("error", f"{type(exc).__name__}: {exc}", 500) from exc
        new = Serving(manifest, predictor, model_dir)
        self.serving = new  # the swap: requests from now on start on the new version
        self.metrics.cuda_graph_buckets.set(len(predictor.graph_buckets))
        try:
            self.metrics.model_info.remove(old.manifest.name, old.version, old.manifest.sha256)
        except KeyError:
            pass
        self.metrics.model_info.labels(manifest.name, manifest.version, manifest.sha256).set(1)
        duration = time.perf_counter() - started
        self.metrics.model_swap_seconds.set(duration)
        log.info(
            "model version %s serving (was %s)",
            version,
            old.version,
            extra={
                "event": "model_swapped",
                "version": version,
                "previous": old.version,
                "sha256": manifest.sha256,
                "trigger": trigger,
                "swap_s": round(duration, 3),
            },
        )
        return LoadOutcome("swapped", version, old.version, manifest.sha256, duration)

    def reload_config(self) -> LoadOutcome | None:
        """SIGHUP: re-read the configuration and load its ``model_version``. Blocking."""
        try:
            settings = load_settings()
        except ConfigError as exc:
            log.error(
                "SIGHUP: configuration not reloaded: %s", exc, extra={"event": "reload_failed"}
            )
            return None
        if not settings.model_version:
            log.error(
                "SIGHUP: the configuration names no model_version; nothing to load",
                extra={"event": "reload_failed"},
            )
            return None
        if settings.model_dir != self.settings.model_dir:
            log.warning(
                "SIGHUP: DP_MODEL_DIR changed; a restart applies it, the version is loaded from %s",
                self.settings.model_dir,
                extra={"event": "reload_partial"},
            )
        try:
            return self.load_version(settings.model_version, "sighup")
        except LoadFailed:
            return None  # logged and counted by load_version

    def begin_drain(self) -> None:
        if self.phase in (Phase.READY, Phase.LOADING, Phase.REFUSED):
            self.phase = Phase.DRAINING
        self.metrics.ready.set(0)

    def stop(self, timeout: float) -> None:
        self.begin_drain()
        if self.fetcher is not None and not self.fetcher.stop(timeout):
            log.warning("feature fetcher did not stop within %.1f s", timeout)
        if self.worker is not None and not self.worker.stop(timeout):
            log.warning("inference worker did not stop within %.1f s", timeout)
        if self.phase is not Phase.FAILED:
            self.phase = Phase.STOPPED

    def wait_loaded(self, timeout: float) -> bool:
        """For tools and tests: block until loading finished (ready or failed)."""
        if self._loader is not None:
            self._loader.join(timeout)
        return self.phase is not Phase.LOADING
