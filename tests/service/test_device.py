"""Device policy: refusal without CUDA, auto's choice, what /readyz, logs and /metrics say.

The policy is a pure function of injectable facts, so the CUDA cases run on a CPU
machine with made-up facts (a CPU-only torch; a CUDA torch without a driver; a
Tesla T4).
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from demand_predictor import device
from demand_predictor.app import create_app
from demand_predictor.config import load_settings
from demand_predictor.metrics import Metrics
from demand_predictor.runtime import Phase, Runtime
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerProcess, instance, poll

CPU_ONLY = device.CudaFacts(torch_version="2.13.0+cpu", cuda_runtime=None, available=False)
NO_DRIVER = device.CudaFacts(torch_version="2.13.0+cu124", cuda_runtime="12.4", available=False)
T4 = device.CudaFacts(
    torch_version="2.13.0+cu124",
    cuda_runtime="12.4",
    available=True,
    name="Tesla T4",
    capability=(7, 5),
    driver="550.54.15",
)
BROKEN = device.CudaFacts(
    torch_version="2.13.0+cu124",
    cuda_runtime="12.4",
    available=True,
    name="Tesla T4",
    capability=(7, 5),
    error="RuntimeError: CUDA error: uncorrectable ECC error encountered",
)
REFUSAL = (
    "device cuda requested but torch.cuda.is_available() is False "
    "(torch 2.13.0+cpu built without CUDA / no driver)"
)


def fake_resolver(facts: device.CudaFacts) -> Callable[[str], device.DeviceChoice]:
    return lambda requested: device.decide(requested, facts, "Fake CPU 9000")


def test_cuda_without_cuda_is_refused_with_the_reason() -> None:
    choice = device.decide("cuda", CPU_ONLY, "Fake CPU 9000")
    assert choice.refused and choice.device == ""
    assert choice.reason == REFUSAL
    assert choice.level == logging.ERROR
    with pytest.raises(RuntimeError, match="built without CUDA"):
        choice.torch_device()  # never a CPU device instead


def test_cuda_build_without_driver_and_a_failing_device_are_refused() -> None:
    no_driver = device.decide("cuda", NO_DRIVER, "cpu")
    assert no_driver.refused
    assert "built for CUDA 12.4" in no_driver.reason and "nvidia-smi" in no_driver.reason
    broken = device.decide("cuda", BROKEN, "cpu")
    assert broken.refused
    assert "failed its probe" in broken.reason and "ECC" in broken.reason


def test_cuda_with_a_t4() -> None:
    choice = device.decide("cuda", T4, "Fake CPU 9000")
    assert not choice.refused
    assert choice.torch_device() == torch.device("cuda", 0)
    assert choice.labels() == {
        "device": "cuda",
        "name": "Tesla T4",
        "capability": "7.5",
        "driver": "550.54.15",
    }
    assert "Tesla T4" in choice.reason and "7.5" in choice.reason


def test_auto_chooses_and_says_why() -> None:
    gpu = device.decide("auto", T4, "Fake CPU 9000")
    assert gpu.device == "cuda" and "CUDA device available" in gpu.reason
    cpu_host = device.decide("auto", CPU_ONLY, "Fake CPU 9000")
    assert cpu_host.device == "cpu" and cpu_host.level == logging.INFO
    assert "built without CUDA" in cpu_host.reason and "serving on the CPU" in cpu_host.reason
    assert cpu_host.labels() == {
        "device": "cpu",
        "name": "Fake CPU 9000",
        "capability": "",
        "driver": "",
    }
    # A CUDA build of torch that finds no device looks like a broken GPU host: WARNING.
    broken_host = device.decide("auto", NO_DRIVER, "Fake CPU 9000")
    assert broken_host.device == "cpu" and broken_host.level == logging.WARNING
    assert device.decide("auto", BROKEN, "x").level == logging.WARNING


def test_cpu_is_not_probed() -> None:
    choice = device.decide("cpu", None, "Fake CPU 9000")
    assert choice.device == "cpu" and choice.reason == "DP_DEVICE=cpu"


def test_cpu_name_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
    )
    assert device.cpu_name(cpuinfo) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert device.cpu_name(tmp_path / "missing")  # platform's answer, never empty


def test_metric_labels_for_a_t4() -> None:
    settings = load_settings({"DP_DEVICE": "cuda"})
    metrics = Metrics(8)
    runtime = Runtime(settings, metrics, resolve_device=fake_resolver(T4))
    choice = runtime.choose_device()
    assert choice is not None and choice.device == "cuda"
    labels = {"device": "cuda", "name": "Tesla T4", "capability": "7.5", "driver": "550.54.15"}
    assert metrics.registry.get_sample_value("dp_device_info", labels) == 1


def _metric_samples(text: str, name: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_refusal_readyz_503_with_reason_and_error_log(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        {"DP_MODEL_DIR": str(model_dir), "DP_DEVICE": "cuda", "DP_ACCESS_LOG": "false"}
    )
    runtime = Runtime(settings, Metrics(settings.max_batch), resolve_device=fake_resolver(CPU_ONLY))
    caplog.set_level(logging.INFO)
    with TestClient(create_app(settings, runtime), base_url="http://127.0.0.1") as client:
        assert runtime.wait_loaded(30)
        assert runtime.phase is Phase.REFUSED
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready" and body["phase"] == "refused"
        assert body["reason"] == REFUSAL
        assert body["device"]["requested"] == "cuda" and body["device"]["device"] == ""
        assert client.get("/livez").status_code == 200  # up, but not ready
        predict = client.post("/v1/predict", json={"instances": [instance()]})
        assert predict.status_code == 503 and predict.json()["error"] == "not_ready"
        text = client.get("/metrics").text
        assert _metric_samples(text, "dp_device_info") == []  # it serves on no device
        assert _metric_samples(text, "dp_ready")[0].value == 0
        assert runtime.predictor is None  # the model was never put on the CPU instead
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and REFUSAL in errors[0].getMessage()
    assert getattr(errors[0], "event", None) == "device_refused"


def test_ready_reports_the_device_everywhere(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        {"DP_MODEL_DIR": str(model_dir), "DP_DEVICE": "auto", "DP_ACCESS_LOG": "false"}
    )
    runtime = Runtime(settings, Metrics(settings.max_batch), resolve_device=fake_resolver(CPU_ONLY))
    caplog.set_level(logging.INFO)
    with TestClient(create_app(settings, runtime), base_url="http://127.0.0.1") as client:
        poll(lambda: client.get("/readyz").status_code == 200, timeout=30)
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["device"]["device"] == "cpu" and ready["device"]["name"] == "Fake CPU 9000"
        assert (
            ready["device"]["requested"] == "auto"
            and "built without CUDA" in ready["device"]["reason"]
        )
        assert ready["device"]["half"] is False and ready["device"]["cuda_graph_buckets"] == []
        info = _metric_samples(client.get("/metrics").text, "dp_device_info")
        assert [(s.labels, s.value) for s in info] == [
            ({"device": "cpu", "name": "Fake CPU 9000", "capability": "", "driver": ""}, 1.0)
        ]
        serving = client.get("/v1/models/demand-predictor").json()["serving"]
        assert serving["device"] == "cpu" and serving["device_info"]["name"] == "Fake CPU 9000"
    selected = [r for r in caplog.records if getattr(r, "event", None) == "device_selected"]
    assert selected and selected[0].levelno == logging.INFO
    assert (
        "serving on cpu" in selected[0].getMessage()
        and "built without CUDA" in selected[0].getMessage()
    )


def _get(port: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_real_server_with_device_cuda(start_server: Callable[..., ServerProcess]) -> None:
    """The real process, real probe: on a machine without CUDA it stays up, unready,
    saying why (journal at ERROR and /readyz); with CUDA it serves on it."""
    server = start_server(DP_DEVICE="cuda", DP_WARMUP_ROUNDS="1")
    port = server.wait_listening()
    if torch.cuda.is_available():
        poll(lambda: _get(port, "/readyz")[0] == 200, timeout=120)
        assert _get(port, "/readyz")[1]["device"]["device"] == "cuda"
        return
    status, body = poll(
        lambda: (r := _get(port, "/readyz"))[1].get("phase") == "refused" and r, timeout=60
    )
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["reason"].startswith("device cuda requested but torch.cuda.is_available() is False")
    assert _get(port, "/livez")[0] == 200
    assert server.proc.poll() is None  # not a crash loop: up, unready, and saying why
    refused = [e for e in server.events() if e.get("event") == "device_refused"]
    assert refused and refused[0]["level"] == "ERROR"
    assert body["reason"] in refused[0]["msg"]
    assert not [e for e in server.events() if e.get("event") == "model_ready"]
