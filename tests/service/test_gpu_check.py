"""The GPU check script on a CPU machine: its arguments, the clear refusal without CUDA
(nothing measured, exit 3), and a quick dry run of all its code paths on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from demand_predictor import gpu_check

from conftest import SERVICE_DIR


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DP_")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, even on a machine that has one
    return subprocess.run(
        [sys.executable, str(SERVICE_DIR / "gpu_check.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_arguments() -> None:
    args = gpu_check.parse_args([])
    assert args.device == "cuda" and args.plan is gpu_check.FULL
    assert args.max_batch == 256 and args.out == Path("gpu_check.json")
    assert args.budget_s == 330.0
    quick = gpu_check.parse_args(
        ["--device", "cpu", "--quick", "--model-dir", "/m", "--max-batch", "16"]
    )
    assert quick.device == "cpu" and quick.plan is gpu_check.QUICK
    assert quick.model_dir == Path("/m") and quick.max_batch == 16
    assert gpu_check.parse_args(["--quick"]).max_batch == max(gpu_check.QUICK.batch_sizes)
    for bad in (["--device", "tpu"], ["--max-batch", "0"], ["--budget-s", "-1"]):
        with pytest.raises(SystemExit) as exc:
            gpu_check.parse_args(bad)
        assert exc.value.code == 2


def test_without_cuda_it_exits_3_and_measures_nothing(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = run_script("--model-dir", str(tmp_path / "no-model"), "--out", str(out), timeout=60)
    assert result.returncode == gpu_check.EXIT_NO_CUDA, result.stderr
    assert (
        "gpu_check: no CUDA device: device cuda requested but torch.cuda.is_available() is False"
        in (result.stderr)
    )
    assert "Nothing was measured" in result.stderr
    report = json.loads(out.read_text())
    assert report["status"] == "no_cuda"
    assert not {"latency_ms", "http", "correctness"} & set(report)
    assert not (tmp_path / "no-model").exists()  # it stopped before training anything


def test_quick_dry_run_on_the_cpu(tmp_path: Path, model_dir: Path) -> None:
    out = tmp_path / "dry.json"
    result = run_script(
        "--device", "cpu", "--quick", "--model-dir", str(model_dir), "--out", str(out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DRY RUN on the CPU" in result.stdout
    report = json.loads(out.read_text())
    assert report["status"] == "ok" and report["dry_run"] is True and report["failures"] == []
    env = report["environment"]
    assert env["device"]["device"] == "cpu" and env["gpu_name"] is None
    # Figures are labelled by the device they were measured on: no "cuda" device anywhere.
    assert set(report["latency_ms"]) == {"cpu", "cpu_float16"}
    assert set(report["latency_ms"]["cpu"]) == {"1", "8"}
    assert set(report["http"]) == {"cpu"}
    leg = report["http"]["cpu"]
    assert leg["ok"] and leg["dp_device_info"]["device"] == "cpu"
    assert leg["readyz"]["device"]["device"] == "cpu"
    assert leg["predictions"]["ok"] and leg["load"]["probe_passed"]
    names = {c["name"] for c in report["correctness"]}
    assert {"cpu graphs, batch 1", "cpu float16, batch 8", "batching worker vs CPU"} <= names
    assert all(c["ok"] for c in report["correctness"])
    text = json.dumps({k: report[k] for k in ("latency_ms", "http")})
    assert '"cuda"' not in text and "DP_DEVICE=cuda" not in text
