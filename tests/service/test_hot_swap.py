"""Versioned models swapped without downtime: in-process, over the admin socket, SIGHUP,
and under a constant open-loop load."""

from __future__ import annotations

import asyncio
import functools
import gc
import http.server
import itertools
import json
import os
import signal
import stat
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from demand_predictor import artifact
from demand_predictor.batching import BatchingWorker, WorkItem
from demand_predictor.bench import loadgen
from demand_predictor.metrics import Metrics
from demand_predictor.predictor import Predictor, synthetic_rows
from demand_predictor.runtime import LoadFailed
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import FIGURES, ServerProcess, corrupt, instance, make_version, poll

NAME = "demand-predictor"
BODY = {"instances": [instance(zone_id=z, hour=z % 24) for z in range(8)]}


def metric(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and (labels is None or s.labels == labels):
                return s.value
    return None


@pytest.fixture
def versioned_client(make_client: Callable[..., TestClient], versioned_root: Path) -> TestClient:
    return make_client(DP_MODEL_DIR=str(versioned_root), DP_MODEL_VERSION="1.0.0")


def predict_bytes(client: TestClient) -> tuple[str, bytes]:
    response = client.post("/v1/predict", json=BODY)
    assert response.status_code == 200, response.text
    return response.json()["model_version"], response.content


def test_swap_serves_the_new_version_and_rollback_is_bit_identical(
    versioned_client: TestClient,
) -> None:
    runtime = versioned_client.app.state.runtime
    version, v1_before = predict_bytes(versioned_client)
    assert version == "1.0.0"
    outcome = runtime.load_version("1.1.0", "api")
    assert (outcome.result, outcome.previous, outcome.version) == ("swapped", "1.0.0", "1.1.0")
    version, v2 = predict_bytes(versioned_client)
    assert version == "1.1.0" and v2 != v1_before
    assert all(row["model_version"] == "1.1.0" for row in json.loads(v2)["predictions"])
    assert runtime.load_version("1.0.0", "api").result == "swapped"  # rollback
    version, v1_after = predict_bytes(versioned_client)
    assert version == "1.0.0" and v1_after == v1_before  # bit for bit
    assert runtime.load_version("1.0.0", "api").result == "unchanged"
    text = versioned_client.get("/metrics").text
    assert metric(text, "dp_model_loads_total", {"trigger": "api", "result": "swapped"}) == 2
    info = [
        s.labels["version"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "dp_model_info"
    ]
    assert info == ["1.0.0"]  # only the active version
    listing = versioned_client.get(f"/v1/models/{NAME}").json()
    assert listing["active_version"] == "1.0.0" and listing["loaded"] == ["1.0.0"]
    states = {v["version"]: v["state"] for v in listing["versions"]}
    assert states == {"1.0.0": "active", "1.1.0": "available"}
    assert listing["last_load"]["result"] == "unchanged"
    assert listing["features"]["names"]  # the manifest metadata is still there


def test_a_corrupted_version_is_refused_and_the_old_keeps_serving(
    versioned_client: TestClient, versioned_root: Path, second_model_dir: Path
) -> None:
    runtime = versioned_client.app.state.runtime
    bad = make_version(second_model_dir, versioned_root / NAME / "1.2.0", version="1.2.0")
    corrupt(bad / "model.safetensors")
    with pytest.raises(LoadFailed) as err:
        runtime.load_version("1.2.0", "api")
    assert err.value.reason == "checksum" and err.value.status == 422
    assert "checksum mismatch" in str(err.value)
    assert predict_bytes(versioned_client)[0] == "1.0.0"
    with pytest.raises(LoadFailed) as err:
        runtime.load_version("7.0.0", "api")
    assert err.value.reason == "not_found" and err.value.status == 404
    mislabelled = make_version(second_model_dir, versioned_root / NAME / "1.3.0")  # says 1.1.0
    assert mislabelled.exists()
    with pytest.raises(LoadFailed) as err:
        runtime.load_version("1.3.0", "api")
    assert err.value.reason == "invalid"
    text = versioned_client.get("/metrics").text
    assert metric(text, "dp_model_load_failures_total", {"reason": "checksum"}) == 1
    assert metric(text, "dp_model_load_failures_total", {"reason": "not_found"}) == 1
    assert metric(text, "dp_model_loads_total", {"trigger": "api", "result": "failed"}) == 3
    assert versioned_client.get("/readyz").json()["version"] == "1.0.0"
    last = versioned_client.get(f"/v1/models/{NAME}").json()["last_load"]
    assert last["result"] == "failed" and "1.3.0" in last["version"]


def test_admin_endpoint_is_refused_without_the_admin_socket(
    versioned_client: TestClient,
) -> None:
    response = versioned_client.post(f"/v1/models/{NAME}/versions/1.1.0:load")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "DP_ADMIN_SOCKET" in response.json()["message"]
    assert predict_bytes(versioned_client)[0] == "1.0.0"


def test_unversioned_service_refuses_hot_loads(client: TestClient) -> None:
    with pytest.raises(LoadFailed) as err:
        client.app.state.runtime.load_version("1.1.0", "api")
    assert err.value.reason == "not_versioned" and err.value.status == 409


def test_requests_finish_on_the_version_they_started_with(
    model_dir: Path, second_model_dir: Path
) -> None:
    """Queued rows of two versions are never batched together; each gets its own model."""
    old = Predictor(artifact.load(model_dir, torch.device("cpu")), max_batch=8)
    new = Predictor(artifact.load(second_model_dir, torch.device("cpu")), max_batch=8)
    metrics = Metrics(8)
    timings = {size: 0.001 * size for size in old.buckets}
    worker = BatchingWorker(old.predict, 8, metrics, 1, initial_batch_seconds=timings)
    rows = synthetic_rows(2, 32)
    plan = [old.predict, old.predict, new.predict, old.predict, new.predict, new.predict]

    async def scenario() -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        futures = []
        for predict in plan:  # queued before the worker starts: batches form from these
            future = loop.create_future()
            worker.submit(WorkItem(rows, loop, future, predict=predict))
            futures.append(future)
        worker.start()
        return await asyncio.wait_for(asyncio.gather(*futures), 30)

    results = asyncio.run(scenario())
    assert worker.stop(5)
    assert not np.allclose(old.predict(rows), new.predict(rows), rtol=1e-2)  # tell-apart
    for predict, result in zip(plan, results, strict=True):
        # Same model; the batch (bucket) size may differ, hence float32 rounding.
        assert np.allclose(result, predict(rows), rtol=1e-5, atol=1e-4)
    # [old, old], [new], [old], [new, new]: version boundaries split batches.
    assert metrics.registry.get_sample_value("dp_batch_size_rows_count") == 4


def test_the_replaced_version_is_freed(versioned_client: TestClient) -> None:
    runtime = versioned_client.app.state.runtime
    old = weakref.ref(runtime.serving.predictor)
    predict_bytes(versioned_client)
    runtime.load_version("1.1.0", "api")
    predict_bytes(versioned_client)
    gc.collect()  # the app's heap is not frozen here; the server's is, which is why:
    assert old() is None
    frozen = runtime.serving.predictor
    gc.freeze()  # like the server: a cycle through the model would now leak it
    try:
        ref = weakref.ref(frozen)
        del frozen
        runtime.load_version("1.0.0", "api")
        predict_bytes(versioned_client)
        assert ref() is None, "the old version must be freed by reference counting alone"
    finally:
        gc.unfreeze()


# -- the real server -----------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def admin(path: str) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=path), base_url="http://admin", timeout=60
    )


def tcp(port: int, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", json=BODY, timeout=30)


def test_admin_socket_loads_from_an_http_store_and_is_owner_only(
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    model_dir: Path,
    second_model_dir: Path,
) -> None:
    from demand_predictor import modelstore

    store = tmp_path / "store"
    modelstore.publish(store, model_dir)
    modelstore.publish(store, second_model_dir)
    bad = make_version(second_model_dir, tmp_path / "bad", version="1.2.0")
    modelstore.publish(store, bad)
    corrupt(store / NAME / "1.2.0" / "model.safetensors")  # corrupted after publication
    handler = functools.partial(_QuietHandler, directory=str(store))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sock = str(tmp_path / "admin.sock")
    root = tmp_path / "host-models"  # empty: the service pulls 1.0.0 at startup
    try:
        server = start_server(
            DP_MODEL_DIR=str(root),
            DP_MODEL_VERSION="1.0.0",
            DP_MODEL_STORE_URL=f"http://127.0.0.1:{httpd.server_address[1]}",
            DP_ADMIN_SOCKET=sock,
            DP_ACCESS_LOG="false",
        )
        port = server.wait_listening()
        poll(lambda: tcp(port, "GET", "/readyz").status_code == 200, timeout=60)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        refused = tcp(port, "POST", f"/v1/models/{NAME}/versions/1.1.0:load")
        assert refused.status_code == 403
        with admin(sock) as client:
            loaded = client.post(f"/v1/models/{NAME}/versions/1.1.0:load")
            assert loaded.status_code == 200, loaded.text
            assert loaded.json()["active_version"] == "1.1.0"
            assert tcp(port, "POST", "/v1/predict").json()["model_version"] == "1.1.0"
            broken = client.post(f"/v1/models/{NAME}/versions/1.2.0:load")
            assert broken.status_code == 422
            assert (
                broken.json()["reason"] == "checksum" and broken.json()["active_version"] == "1.1.0"
            )
            assert not (root / NAME / "1.2.0").exists()
            assert tcp(port, "POST", "/v1/predict").json()["model_version"] == "1.1.0"
            listing = client.get(f"/v1/models/{NAME}").json()
            by_version = {v["version"]: v for v in listing["versions"]}
            assert by_version["1.2.0"]["in_store"] and not by_version["1.2.0"]["local"]
            assert by_version["1.0.0"]["local"] and by_version["1.1.0"]["state"] == "active"
        metrics = tcp(port, "GET", "/metrics").text
        assert metric(metrics, "dp_model_load_failures_total", {"reason": "checksum"}) == 1
        events = [e for e in server.events() if e.get("event") == "model_load_failed"]
        assert events and events[0]["reason"] == "checksum"
        server.terminate()
        assert server.proc.wait(30) == 0
        assert not os.path.exists(sock)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_sighup_loads_the_configured_version(
    start_server: Callable[..., ServerProcess], tmp_path: Path, versioned_root: Path
) -> None:
    config = tmp_path / "service.toml"
    config.write_text('model_version = "1.0.0"\n')
    server = start_server(
        DP_MODEL_DIR=str(versioned_root), DP_CONFIG_FILE=str(config), DP_ACCESS_LOG="false"
    )
    port = server.wait_listening()
    poll(lambda: tcp(port, "GET", "/readyz").status_code == 200, timeout=60)
    assert tcp(port, "POST", "/v1/predict").json()["model_version"] == "1.0.0"
    config.write_text('model_version = "1.1.0"\n')
    server.proc.send_signal(signal.SIGHUP)
    poll(lambda: tcp(port, "GET", "/readyz").json().get("version") == "1.1.0", timeout=60)
    assert tcp(port, "POST", "/v1/predict").json()["model_version"] == "1.1.0"
    config.write_text('model_version = "9.9.9"\n')  # missing: logged, 1.1.0 keeps serving
    server.proc.send_signal(signal.SIGHUP)
    poll(lambda: any(e.get("event") == "model_load_failed" for e in server.events()), timeout=30)
    assert tcp(port, "POST", "/v1/predict").json()["model_version"] == "1.1.0"
    assert server.proc.poll() is None
    metrics = tcp(port, "GET", "/metrics").text
    assert metric(metrics, "dp_model_loads_total", {"trigger": "sighup", "result": "swapped"}) == 1
    assert metric(metrics, "dp_model_loads_total", {"trigger": "sighup", "result": "failed"}) == 1


# -- swap under constant open-loop load ----------------------------------------------
async def _open_loop(
    port: int, bodies: list[bytes], rate: float, duration_s: float, results: list[tuple]
) -> None:
    """Poisson arrivals at ``rate`` for ``duration_s``; per request: (scheduled, sent,
    done, status, model_version, error). Latency counts from the scheduled time. The
    pool (bench/loadgen.py) never reuses a connection the server closed when its
    keep-alive timeout passed: that would fail requests the server never saw."""
    rng = np.random.default_rng(11)
    offsets = np.cumsum(rng.exponential(1.0 / rate, int(rate * duration_s * 1.3) + 20))
    offsets = offsets[offsets < duration_s]
    payloads = [loadgen.build_request("127.0.0.1", port, "/v1/predict", b) for b in bodies]
    pool = loadgen._Pool("127.0.0.1", port, 64)

    async def one(i: int, due: float) -> None:
        status, version, sent, error = -1, "", time.perf_counter(), ""
        try:
            conn = await pool.acquire()
        except OSError as exc:
            results.append((due, sent, time.perf_counter(), status, version, repr(exc)))
            return
        reader, writer = conn
        reuse = False
        try:
            sent = time.perf_counter()
            writer.write(payloads[i % len(payloads)])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            reuse = True
            marker = body.find(b'"model_version":"')
            if marker >= 0:
                version = body[marker + 17 : body.index(b'"', marker + 17)].decode()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            error = repr(exc)
        finally:
            pool.release(conn, reuse)
        results.append((due, sent, time.perf_counter(), status, version, error))

    tasks = []
    start = time.perf_counter() + 0.05
    for i, offset in enumerate(offsets.tolist()):
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.wait(tasks, timeout=30)
    pool.close()


def _pcts(latencies: list[float]) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1000
    if not ms.size:
        return {"requests": 0}
    return {
        "requests": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def test_swap_under_constant_open_loop_load(
    start_server: Callable[..., ServerProcess], tmp_path: Path, versioned_root: Path
) -> None:
    """200 req/s open loop for DP_TEST_SWAP_LOAD_S (default 60) s on loopback; the swap
    1.0.0 -> 1.1.0 over the admin socket a third of the way in. Every request must
    succeed, and by send order the versions switch exactly once, old to new.

    The latency budget and loop-lag limit are raised so that admission control (tested
    elsewhere) does not shed load when a neighbour takes the shared CPU: a refusal here
    must mean the swap failed a request.
    """
    duration = float(os.environ.get("DP_TEST_SWAP_LOAD_S", "60"))
    rate = 200.0
    sock = str(tmp_path / "admin.sock")
    server = start_server(
        DP_MODEL_DIR=str(versioned_root),
        DP_MODEL_VERSION="1.0.0",
        DP_ADMIN_SOCKET=sock,
        DP_ACCESS_LOG="false",
        DP_LATENCY_BUDGET_MS="2000",
        DP_LOOP_LAG_LIMIT_MS="2000",
        # A longer warm-up (here ~1 s) makes the "during the swap" window, when the new
        # version warms up next to the serving one, long enough to measure.
        DP_WARMUP_ROUNDS="500",
    )
    port = server.wait_listening()
    poll(lambda: tcp(port, "GET", "/readyz").status_code == 200, timeout=60)
    bodies = [
        json.dumps({"instances": [instance(zone_id=z, hour=(z * 5) % 24)]}).encode()
        for z in range(32)
    ]
    results: list[tuple] = []
    generator = threading.Thread(
        target=lambda: asyncio.run(_open_loop(port, bodies, rate, duration, results)),
        daemon=True,
    )
    generator.start()
    time.sleep(duration / 3)
    with admin(sock) as client:
        swap_started = time.perf_counter()
        response = client.post(f"/v1/models/{NAME}/versions/1.1.0:load")
        swap_ended = time.perf_counter()
    assert response.status_code == 200, response.text
    generator.join(duration + 60)
    assert not generator.is_alive()

    ordered = sorted(results, key=lambda r: r[1])  # by the time each request was sent
    failed = [r for r in ordered if r[3] != 200]
    versions = [r[4] for r in ordered]
    switches = sum(1 for a, b in itertools.pairwise(versions) if a != b)
    before = [r for r in ordered if r[1] < swap_started]
    during = [r for r in ordered if swap_started <= r[1] < swap_ended]
    after = [r for r in ordered if r[1] >= swap_ended]
    figures = {
        "duration_s": duration,
        "offered_rate": rate,
        "requests": len(ordered),
        "failed": len(failed),
        "old_version_responses": versions.count("1.0.0"),
        "new_version_responses": versions.count("1.1.0"),
        "version_switches_in_send_order": switches,
        "swap_call_s": round(swap_ended - swap_started, 3),
        "swap_server_s": response.json()["swap_s"],
        "before": _pcts([r[2] - r[0] for r in before]),
        "during": _pcts([r[2] - r[0] for r in during]),
        "after": _pcts([r[2] - r[0] for r in after]),
    }
    FIGURES.append(("hot swap under open-loop load", figures))
    print(figures)
    relative = [(round(r[1] - swap_started, 3), r[3], r[4], r[5]) for r in failed[:5]]
    assert failed == [], (
        f"{len(failed)} failed requests (sent s after the swap call, ...): {relative}"
    )
    assert len(ordered) >= rate * duration * 0.8
    assert all(r[4] == "1.0.0" for r in before)
    assert all(r[4] == "1.1.0" for r in after)
    assert versions[0] == "1.0.0" and versions[-1] == "1.1.0" and switches == 1
