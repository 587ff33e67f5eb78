"""The GPU compatibility matrix (locks/gpu-matrix.yml + the locks): consistent as committed,
and every inconsistency the issue names is caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from disposable.packages import gpu_matrix, pylocks, supply
from disposable.packages.gpu_matrix import TorchLock
from disposable.paths import REPO_ROOT

NVIDIA = "\n".join(
    f"{name}==12.6.0 \\\n    --hash=sha256:{'c' * 64}"
    for name in ("nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-cudnn-cu12")
)


def _lock(text: str, name: str = "requirements-torch-cu126.txt") -> TorchLock:
    return TorchLock(Path(name), text)


def _gpu_lock(torch: str = "2.13.0+cu126", extra: str = NVIDIA, index: str = "cu126") -> TorchLock:
    return _lock(f"--index-url https://download.pytorch.org/whl/{index}\n\ntorch=={torch} \\\n"
                 f"    --hash=sha256:{'d' * 64}\n{extra}\n")  # fmt: skip


def matrix() -> gpu_matrix.Matrix:
    return gpu_matrix.derive(supply.committed_lock())


def test_the_committed_matrix_is_consistent() -> None:
    m = matrix()
    assert m.driver_branch == "535" and m.cuda_toolkit.startswith("11.8.89") and m.kernel_version.startswith("6.1.")
    assert m.kernel_abi.startswith("6.1.0-") and m.gpu_cuda_runtime == "12.6"
    assert gpu_matrix.problems(m, gpu_matrix.torch_lock("cpu"), gpu_matrix.torch_lock("cuda")) == []


def test_a_cuda_13_torch_with_driver_535_is_refused() -> None:
    m = dataclasses.replace(matrix(), gpu_build="cu130")
    found = gpu_matrix.problems(m, None, None)
    assert any("CUDA 13.0 runtime; driver 535 supports CUDA 12.2" in p for p in found), found


def test_a_cuda_torch_lock_without_its_nvidia_wheels_is_refused() -> None:
    found = gpu_matrix.problems(matrix(), None, _gpu_lock(extra=""))
    assert found == [
        "requirements-torch-cu126.txt: torch +cu126 without its nvidia-* runtime wheels (installed --no-deps)"
    ]
    mixed = NVIDIA + f"\nnvidia-cublas-cu13==13.0.0 \\\n    --hash=sha256:{'e' * 64}"
    assert any(
        "another CUDA major: nvidia-cublas-cu13" in p
        for p in gpu_matrix.problems(matrix(), None, _gpu_lock(extra=mixed))
    )
    assert gpu_matrix.problems(matrix(), None, _gpu_lock()) == []


def test_a_cpu_torch_for_gpu_hosts_is_refused() -> None:
    found = gpu_matrix.problems(matrix(), None, _gpu_lock(torch="2.13.0+cpu", extra="", index="cpu"))
    assert "requirements-torch-cu126.txt: the GPU lock pins torch==2.13.0+cpu, the matrix says 2.13.0+cu126" in found
    assert pylocks.device_for(1) == "cuda" and pylocks.device_for(0) == "cpu"


def test_hashes_index_and_release_are_checked() -> None:
    unhashed = _lock("--index-url https://download.pytorch.org/whl/cu126\n\ntorch==2.13.0+cu126\n" + NVIDIA)
    assert "requirements-torch-cu126.txt: no --hash for torch" in gpu_matrix.problems(matrix(), None, unhashed)
    assert any("does not name its index" in p for p in gpu_matrix.problems(matrix(), None, _gpu_lock(index="cu118")))
    older = _gpu_lock(torch="2.7.1+cu126")
    assert any("pins torch==2.7.1+cu126" in p for p in gpu_matrix.problems(matrix(), None, older))


def test_a_gpu_the_build_has_no_kernels_for_is_refused() -> None:
    m = dataclasses.replace(matrix(), gpu_architecture="sm_37", gpu_model="NVIDIA K80")
    assert any("ships no kernels for sm_37" in p for p in gpu_matrix.problems(m, None, None))


def test_the_role_readme_shows_the_current_matrix() -> None:
    readme = (REPO_ROOT / "roles" / "nvidia_driver" / "README.md").read_text()
    assert gpu_matrix.readme_block(matrix()) in readme, (
        "roles/nvidia_driver/README.md is out of date: run "
        "`.venv/bin/python -m disposable.packages.gpu_matrix --write-readme`"
    )
