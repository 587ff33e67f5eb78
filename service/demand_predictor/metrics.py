"""Prometheus metrics of one service instance (own registry, so tests can build many)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # drop the *_created series: less noise per scrape

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip


FEATURE_STORE_BUCKETS = (
    0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
    0.025, 0.05, 0.1,
)  # fmt: skip


def batch_buckets(max_batch: int) -> tuple[float, ...]:
    sizes = [1]
    while sizes[-1] < max_batch:
        sizes.append(min(sizes[-1] * 2, max_batch))
    return tuple(float(s) for s in sizes)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_duration = Histogram(
            "dp_http_request_duration_seconds",
            "HTTP request latency, by route template, method and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "dp_queue_wait_seconds",
            "Time a request spent queued before its batch started.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            "dp_inference_duration_seconds",
            "Time to run one batch (features, model, postprocessing).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "dp_batch_size_rows",
            "Rows per executed batch.",
            buckets=batch_buckets(max_batch),
            registry=r,
        )
        self.queue_depth = Gauge(
            "dp_queue_depth_rows", "Rows waiting for the inference worker.", registry=r
        )
        self.inflight = Gauge(
            "dp_inflight_requests", "Prediction requests being handled.", registry=r
        )
        self.rejections = Counter(
            "dp_rejections_total", "Requests refused, by reason.", ["reason"], registry=r
        )
        self.model_info = Gauge(
            "dp_model_info",
            "Loaded model (value 1), labelled with name, version and weights sha256.",
            ["name", "version", "sha256"],
            registry=r,
        )
        self.ready = Gauge("dp_ready", "1 when the service accepts predictions.", registry=r)
        self.ewma_row_seconds = Gauge(
            "dp_service_time_per_row_seconds",
            "EWMA of batch time / rows, per batch-size bucket (admission control input).",
            ["bucket"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "dp_event_loop_lag_seconds",
            "How late a 5 ms event-loop timer fires (HTTP-side queueing).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.warmup_batches = Counter(
            "dp_warmup_batches_total", "Warm-up batches run before readiness.", registry=r
        )
        self.device_info = Gauge(
            "dp_device_info",
            "Device the model runs on (value 1): device type, device or CPU model name, "
            "CUDA compute capability and driver version (empty on the CPU).",
            ["device", "name", "capability", "driver"],
            registry=r,
        )
        self.cuda_graph_buckets = Gauge(
            "dp_cuda_graph_buckets",
            "Batch buckets served by a captured CUDA graph (0 on the CPU).",
            registry=r,
        )
        self.cuda_graph_fallbacks = Counter(
            "dp_cuda_graph_fallbacks_total",
            "Batch buckets left eager because CUDA graph capture or its check failed.",
            ["bucket"],
            registry=r,
        )

        # Online feature store (feature_store.py).
        self.feature_store_up = Gauge(
            "dp_feature_store_up",
            "1 when the last feature-store round trip (lookup or probe) succeeded; 0 when it "
            "failed (requests that need the store get 503 meanwhile). Absent: no store.",
            registry=r,
        )
        self.feature_store_lookup = Histogram(
            "dp_feature_store_lookup_seconds",
            "Duration of one feature-store round trip (every key of a batch at once).",
            buckets=FEATURE_STORE_BUCKETS,
            registry=r,
        )
        self.feature_store_rows = Counter(
            "dp_feature_store_rows_total",
            "Rows whose features came from the store, by feature view and result: hit (fresh), "
            "stale (older than DP_FEATURE_STORE_MAX_AGE_S), miss (no key: training means used).",
            ["view", "result"],
            registry=r,
        )
        self.feature_store_errors = Counter(
            "dp_feature_store_errors_total",
            "Failed feature-store round trips, by kind (timeout, connection, error).",
            ["kind"],
            registry=r,
        )
        self.stale_predictions = Counter(
            "dp_stale_predictions_total",
            "Predictions answered with stale: true (a store feature was stale or missing).",
            registry=r,
        )
        # Versioned models, hot swap (runtime.py).
        self.model_loads = Counter(
            "dp_model_loads_total",
            "Model version loads after startup, by trigger (api, sighup) and result "
            "(swapped, failed, unchanged).",
            ["trigger", "result"],
            registry=r,
        )
        self.model_load_failures = Counter(
            "dp_model_load_failures_total",
            "Failed version loads, by reason (not_found, download, checksum, invalid, error).",
            ["reason"],
            registry=r,
        )
        self.model_swap_seconds = Gauge(
            "dp_model_swap_seconds",
            "Duration of the last successful load: fetch, verify, load, warm-up and swap.",
            registry=r,
        )
        self.model_loading = Gauge(
            "dp_model_loading", "1 while a new model version loads and warms up.", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
