"""The GPU compatibility matrix: driver, kernel, system CUDA toolkit, torch and its CUDA
runtime, GPU architecture, derived from the locks and checked against published facts.

The choices live in locks/gpu-matrix.yml (GPU, torch release and builds), the exact
versions in the locks (apt lock: driver, kernel, toolkit; torch locks per device), so the
matrix is written once. `problems()` names every inconsistency (a CUDA 13 torch with
driver 535, a +cuXXX torch lock without its nvidia-* wheels, a CPU torch for a GPU host,
torch releases that differ between devices, a GPU the torch build has no kernels for...);
`render()` is the table in roles/nvidia_driver/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from disposable.packages import pylocks
from disposable.packages.aptlock import AptLock
from disposable.paths import REPO_ROOT

MATRIX_FILE = REPO_ROOT / "locks" / "gpu-matrix.yml"
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+?)(?: \\)?$", re.MULTILINE)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


@dataclass(frozen=True)
class TorchLock:
    """One torch lock file: what it pins and from which index."""

    path: Path
    text: str

    @property
    def pins(self) -> dict[str, str]:
        return {m["name"].lower(): m["version"] for m in REQUIREMENT.finditer(self.text)}

    @property
    def torch(self) -> str:
        return self.pins.get("torch", "")

    @property
    def build(self) -> str:
        """The local version of torch: cpu, cu126, ... ('' for a PyPI build)."""
        return self.torch.partition("+")[2]

    def unhashed(self) -> list[str]:
        blocks = re.split(r"\n(?=\S)", self.text)
        return [b.split("==")[0] for b in blocks if "==" in b.split("\n")[0] and "--hash=sha256:" not in b]


@dataclass(frozen=True)
class Matrix:
    gpu_model: str
    gpu_architecture: str
    driver_branch: str
    driver_version: str
    kernel_version: str
    kernel_abi: str
    cuda_toolkit: str
    host_compiler: str
    torch_release: str
    cpu_build: str
    gpu_build: str
    facts: dict[str, Any]

    @property
    def gpu_cuda_runtime(self) -> str:
        return str(self.facts["torch_builds"].get(self.gpu_build, {}).get("cuda", "unknown"))

    def rows(self) -> list[tuple[str, str, str]]:
        native = self.facts["driver_native_cuda"].get(self.driver_branch, "?")
        return [
            ("GPU", f"{self.gpu_model} ({self.gpu_architecture})", "locks/gpu-matrix.yml"),
            (
                "NVIDIA driver",
                f"{self.driver_branch} series, {self.driver_version} (CUDA {native} native, "
                f"later {native.split('.')[0]}.x by minor-version compatibility)",
                "apt lock",
            ),  # fmt: skip
            ("Kernel", f"{self.kernel_version} (ABI {self.kernel_abi}), held with the driver", "apt lock"),
            ("System CUDA toolkit (nvcc)", f"{self.cuda_toolkit}, host compiler {self.host_compiler}", "apt lock"),
            ("torch, CPU hosts", f"{self.torch_release}+{self.cpu_build}", "service/requirements-torch-cpu.txt"),
            (
                "torch, GPU hosts",
                f"{self.torch_release}+{self.gpu_build} (CUDA {self.gpu_cuda_runtime} runtime "
                "from its nvidia-* wheels)",
                "service/requirements-torch-cu126.txt (`invoke lock --gpu`)",
            ),  # fmt: skip
        ]


def load_choices(path: Path = MATRIX_FILE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def derive(lock: AptLock, choices: dict[str, Any] | None = None) -> Matrix:
    """The matrix as the locks (and the cuda role's host compiler) make it."""
    from disposable.hosts.rolevars import role_vars

    choices = choices or load_choices()
    versions = lock.versions()
    driver = versions.get("nvidia-kernel-dkms", "")
    abi = next((e.name.removeprefix("linux-image-") for e in lock.entries if re.match(r"linux-image-\d", e.name)), "")
    return Matrix(
        gpu_model=choices["gpu"]["model"],
        gpu_architecture=choices["gpu"]["architecture"],
        driver_branch=driver.split(".")[0],
        driver_version=driver,
        kernel_version=versions.get("linux-image-amd64", ""),
        kernel_abi=abi,
        cuda_toolkit=versions.get("nvidia-cuda-toolkit", ""),
        host_compiler=str(role_vars()["cuda_host_compiler"]),
        torch_release=str(choices["torch"]["release"]),
        cpu_build=choices["torch"]["cpu_build"],
        gpu_build=choices["torch"]["gpu_build"],
        facts=choices["facts"],
    )


def problems(matrix: Matrix, cpu_lock: TorchLock | None, gpu_lock: TorchLock | None) -> list[str]:
    """Every inconsistency of the matrix with the facts and with the torch locks."""
    found: list[str] = []
    facts = matrix.facts
    native = facts["driver_native_cuda"].get(matrix.driver_branch)
    build = facts["torch_builds"].get(matrix.gpu_build)
    if native is None:
        found.append(f"driver branch {matrix.driver_branch!r} is not in the facts (driver_native_cuda)")
    if build is None:
        found.append(f"torch build {matrix.gpu_build!r} is not in the facts (torch_builds)")
    if native and build:
        runtime = _release(build["cuda"])
        if runtime[0] > _release(native)[0]:
            found.append(
                f"torch +{matrix.gpu_build} brings a CUDA {build['cuda']} runtime; driver {matrix.driver_branch} "
                f"supports CUDA {native} (minor-version compatibility stays within CUDA {_release(native)[0]}.x)"
            )
        if matrix.gpu_architecture not in build["architectures"]:
            found.append(
                f"torch +{matrix.gpu_build} ships no kernels for {matrix.gpu_architecture} ({matrix.gpu_model})"
            )
    if native and matrix.cuda_toolkit and _release(matrix.cuda_toolkit) > _release(native):
        found.append(f"system CUDA toolkit {matrix.cuda_toolkit} is newer than driver {matrix.driver_branch} supports")
    toolkit = ".".join(str(p) for p in _release(matrix.cuda_toolkit))
    max_gcc = facts.get("nvcc_max_gcc", {}).get(toolkit)
    gcc = re.findall(r"\d+", matrix.host_compiler)
    if max_gcc is not None and gcc and int(gcc[0]) > int(max_gcc):
        found.append(f"nvcc {toolkit} accepts GCC up to {max_gcc}, the host compiler is {matrix.host_compiler}")
    if cpu_lock is not None:
        found += _torch_lock_problems(cpu_lock, matrix.torch_release, matrix.cpu_build, "CPU")
    if gpu_lock is not None:
        found += _torch_lock_problems(gpu_lock, matrix.torch_release, matrix.gpu_build, "GPU")
    return found


def _torch_lock_problems(lock: TorchLock, release: str, build: str, device: str) -> list[str]:
    found = []
    want = f"{release}+{build}"
    if lock.torch != want:
        found.append(
            f"{lock.path.name}: the {device} lock pins torch=={lock.torch or '(none)'}, the matrix says {want}"
        )
    if build.startswith("cu"):
        major = build[2:4]
        nvidia = [name for name in lock.pins if name.startswith("nvidia-")]
        if not nvidia:
            found.append(f"{lock.path.name}: torch +{build} without its nvidia-* runtime wheels (installed --no-deps)")
        wrong = [name for name in nvidia if re.search(r"-cu(\d+)$", name) and not name.endswith(f"-cu{major}")]
        if wrong:
            found.append(f"{lock.path.name}: nvidia wheels of another CUDA major: {', '.join(sorted(wrong))}")
    elif any(name.startswith("nvidia-") for name in lock.pins):
        found.append(f"{lock.path.name}: a CPU lock with nvidia-* wheels")
    unhashed = lock.unhashed()
    if unhashed:
        found.append(f"{lock.path.name}: no --hash for {', '.join(unhashed)}")
    index = f"{pylocks.PYTORCH_INDEX}/{build}"
    if index not in lock.text:
        found.append(f"{lock.path.name}: does not name its index {index}")
    return found


def torch_lock(device: str) -> TorchLock | None:
    path = pylocks.DEVICE_LOCKS[device].path
    return TorchLock(path, path.read_text()) if path.exists() else None


def render(matrix: Matrix) -> str:
    lines = ["| component | version | written in |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {where} |" for name, value, where in matrix.rows()]
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- gpu-matrix:begin (generated by disposable.packages.gpu_matrix; tests check it) -->"
README_END = "<!-- gpu-matrix:end -->"


def readme_block(matrix: Matrix) -> str:
    return f"{README_BEGIN}\n{render(matrix)}{README_END}"


def write_readme(path: Path = REPO_ROOT / "roles" / "nvidia_driver" / "README.md") -> None:
    """Replace the generated block of the role README with the current matrix."""
    text = path.read_text()
    block = readme_block(derive(aptlock_committed()))
    if README_BEGIN in text:
        start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n## Compatibility matrix\n\n" + block + "\n"
    path.write_text(text)


def aptlock_committed() -> AptLock:
    from disposable.packages import supply

    return supply.committed_lock()


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write-readme"]:
        write_readme()
    else:
        current = derive(aptlock_committed())
        print(render(current))
        for problem in problems(current, torch_lock("cpu"), torch_lock("cuda")):
            print(f"PROBLEM: {problem}")
