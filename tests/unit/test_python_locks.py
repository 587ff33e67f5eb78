"""Python locks: every lock names the indexes it needs (a local-version wheel such as
+cpu/+cuXXX is not on PyPI), no lock names a folder of one machine, and torch lives in a
per-device lock of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from disposable.packages import pylocks

TORCH = "torch==2.13.0+cpu \\\n    --hash=sha256:" + "6" * 64 + "\n    # via -r service/requirements.in\n"
FASTAPI = "fastapi==0.165.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via -r service/requirements.in\n"


@pytest.mark.parametrize("lock", pylocks.all_locks(), ids=lambda p: p.name)
def test_committed_locks_name_every_index_they_need(lock: Path) -> None:
    assert pylocks.index_problems(lock) == []


def test_a_local_version_without_its_index_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text(FASTAPI + TORCH)
    assert pylocks.index_problems(lock) == [
        "requirements.txt: torch==2.13.0+cpu needs --index-url https://download.pytorch.org/whl/cpu (it is not on PyPI)"
    ]
    lock.write_text("--index-url https://download.pytorch.org/whl/cu126\n" + TORCH)
    assert len(pylocks.index_problems(lock)) == 1, "the cu126 index does not serve +cpu"
    lock.write_text("--index-url https://download.pytorch.org/whl/cpu\n" + TORCH)
    assert pylocks.index_problems(lock) == []


def test_a_folder_of_one_machine_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("--find-links /opt/wheels\n" + FASTAPI)
    assert pylocks.index_problems(lock) == [
        "requirements.txt: --find-links names a folder of one machine; name an index instead"
    ]


def test_torch_moves_to_its_device_lock(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "requirements.txt").write_text("# header\n" + FASTAPI + TORCH)
    (tmp_path / "requirements.txt").write_text("# header\n" + FASTAPI + TORCH)
    without, torch = pylocks.split_torch((tmp_path / "requirements.txt").read_text())
    assert torch is not None and torch.startswith("torch==2.13.0+cpu") and "torch==" not in without
    cpu = pylocks.DEVICE_LOCKS["cpu"]
    text = pylocks.device_lock_text(cpu, torch)
    assert "--index-url https://download.pytorch.org/whl/cpu" in text and text.count("--hash=") == 1


def test_the_host_lock_joins_the_service_lock_and_the_device_lock(tmp_path: Path) -> None:
    joined = pylocks.host_lock("cpu", tmp_path).read_text()
    assert "torch==2.13.0+cpu" in joined and "fastapi==" in joined
    assert "\n--index-url" not in joined, "hosts install with --no-index from the wheelhouse"


def test_a_gpu_host_without_the_gpu_lock_is_an_error_that_names_it(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    missing = pylocks.DeviceLock("cuda", tmp_path / "requirements-torch-cu126.txt", "cu126", "GPU hosts")
    monkeypatch.setitem(pylocks.DEVICE_LOCKS, "cuda", missing)
    with pytest.raises(pylocks.DisposableError) as error:
        pylocks.host_lock("cuda", tmp_path)
    assert "requirements-torch-cu126.txt does not exist" in str(error.value) and "invoke lock --gpu" in str(error.value)
