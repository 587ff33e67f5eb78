"""Device policy: which torch device the service runs on, why, and what it is.

``DP_DEVICE``:

* ``cpu``  - the CPU; CUDA is not even probed.
* ``cuda`` - a working CUDA device or nothing: when torch sees no usable device the
  service refuses to become ready (``/readyz`` 503 with the reason, the same reason
  logged at ERROR). It never serves on the CPU instead.
* ``auto`` - CUDA when a working device is there, else the CPU; the choice and its
  reason are logged (at WARNING when a CUDA build of torch finds no device: on a GPU
  host that is a broken driver, not a CPU host).

``decide`` is a pure function of the facts (``CudaFacts``) and the CPU name, so the
policy is unit-tested on a CPU machine with made-up facts; ``probe_cuda`` gathers the
real facts from torch, including a small computation on the device (a visible device
that cannot compute is not a working device).
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("demand_predictor.device")


@dataclass(frozen=True)
class CudaFacts:
    """What torch reports about CUDA on this machine."""

    torch_version: str
    cuda_runtime: str | None  # torch.version.cuda; None for a CPU-only build of torch
    available: bool  # torch.cuda.is_available()
    index: int = 0
    name: str = ""
    capability: tuple[int, int] | None = None
    driver: str = ""  # see cuda_driver_version for what this is
    error: str = ""  # the device is visible but failed the probe

    @property
    def usable(self) -> bool:
        return self.available and not self.error


@dataclass(frozen=True)
class DeviceChoice:
    requested: str  # auto | cpu | cuda
    device: str  # "cpu" | "cuda"; "" when refused
    reason: str  # why this device, or why none
    level: int = logging.INFO  # how loudly the choice is logged
    index: int = 0
    name: str = ""
    capability: str = ""  # "7.5"; "" on the CPU
    driver: str = ""  # "" on the CPU

    @property
    def refused(self) -> bool:
        return not self.device

    def torch_device(self) -> torch.device:
        if self.refused:
            raise RuntimeError(self.reason)
        return torch.device("cuda", self.index) if self.device == "cuda" else torch.device("cpu")

    def labels(self) -> dict[str, str]:
        """Labels of the ``dp_device_info`` gauge."""
        return {
            "device": self.device,
            "name": self.name,
            "capability": self.capability,
            "driver": self.driver,
        }

    def to_json(self) -> dict[str, Any]:
        return {"requested": self.requested, **self.labels(), "reason": self.reason}


def unavailable_reason(cuda: CudaFacts) -> str:
    """Why there is no working CUDA device, in operator terms."""
    if cuda.available:
        return f"the CUDA device failed its probe: {cuda.error}"
    if cuda.cuda_runtime is None:
        return (
            f"torch.cuda.is_available() is False (torch {cuda.torch_version} built without "
            "CUDA / no driver)"
        )
    return (
        f"torch.cuda.is_available() is False (torch {cuda.torch_version} built for CUDA "
        f"{cuda.cuda_runtime}, but no usable NVIDIA driver or device: check nvidia-smi)"
    )


def _format_capability(capability: tuple[int, int] | None) -> str:
    return f"{capability[0]}.{capability[1]}" if capability else ""


def decide(requested: str, cuda: CudaFacts | None, cpu_name: str) -> DeviceChoice:
    """The device policy (pure). ``cuda`` may be None only when ``requested`` is cpu."""
    if requested == "cpu":
        return DeviceChoice("cpu", "cpu", "DP_DEVICE=cpu", name=cpu_name)
    if requested not in ("auto", "cuda"):
        raise ValueError(f"unknown device {requested!r}")
    assert cuda is not None
    if cuda.usable:
        capability = _format_capability(cuda.capability)
        what = f"{cuda.name} (compute capability {capability}, driver {cuda.driver or '?'})"
        reason = (
            f"DP_DEVICE=cuda: {what}"
            if requested == "cuda"
            else f"DP_DEVICE=auto: CUDA device available, using it: {what}"
        )
        return DeviceChoice(
            requested,
            "cuda",
            reason,
            index=cuda.index,
            name=cuda.name,
            capability=capability,
            driver=cuda.driver,
        )
    why = unavailable_reason(cuda)
    if requested == "cuda":
        return DeviceChoice("cuda", "", f"device cuda requested but {why}", level=logging.ERROR)
    # auto: a CPU-only build of torch on a CPU host is the normal case; a CUDA build
    # without a device (or a device that fails) is what a broken GPU host looks like.
    suspicious = cuda.cuda_runtime is not None or cuda.available
    return DeviceChoice(
        "auto",
        "cpu",
        f"DP_DEVICE=auto: {why}; serving on the CPU",
        level=logging.WARNING if suspicious else logging.INFO,
        name=cpu_name,
    )


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model ("model name" in /proc/cpuinfo), else what platform knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model name", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cuda_driver_version() -> str:
    """The most specific driver version available, prefixed by what it is:

    * ``"550.54.15"``: the NVIDIA driver version, from NVML (only if ``pynvml`` is
      importable; it is not a dependency of the service);
    * ``"cuda-driver-api:12.4"``: the CUDA version the installed driver supports
      (cudaDriverGetVersion, via ``torch._C._cuda_getDriverVersion``);
    * ``"cuda-runtime:12.1"``: neither was available: the CUDA runtime torch was built
      with (``torch.version.cuda``), which says nothing about the driver itself.
    """
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception as exc:  # noqa: BLE001 - not installed, or NVML unusable: next source
        log.debug("NVML driver version unavailable: %s", exc)
    get_driver = getattr(torch._C, "_cuda_getDriverVersion", None)
    if get_driver is not None:
        try:
            number = int(get_driver())
            if number > 0:
                return f"cuda-driver-api:{number // 1000}.{number % 1000 // 10}"
        except Exception as exc:  # noqa: BLE001
            log.debug("CUDA driver API version unavailable: %s", exc)
    return f"cuda-runtime:{torch.version.cuda}" if torch.version.cuda else ""


def probe_cuda() -> CudaFacts:
    """The real facts: availability, then name, capability, driver and a tiny matmul."""
    version, runtime = torch.__version__, torch.version.cuda
    try:
        available = bool(torch.cuda.is_available())
    except Exception as exc:  # noqa: BLE001 - a broken driver can raise here
        return CudaFacts(version, runtime, False, error=f"{type(exc).__name__}: {exc}")
    if not available:
        return CudaFacts(version, runtime, False)
    facts: dict[str, Any] = {}
    try:
        index = torch.cuda.current_device()
        facts = {
            "index": index,
            "name": torch.cuda.get_device_name(index),
            "capability": tuple(torch.cuda.get_device_capability(index)),
            "driver": cuda_driver_version(),
        }
        probe = torch.ones(16, 16, device=torch.device("cuda", index))
        value = float((probe @ probe).sum().item())
        torch.cuda.synchronize(index)
        if value != 16.0**3:
            raise RuntimeError(f"a 16x16 matmul of ones summed to {value}, not 4096")
    except Exception as exc:  # noqa: BLE001 - reported as the refusal reason
        return CudaFacts(version, runtime, True, **facts, error=f"{type(exc).__name__}: {exc}")
    return CudaFacts(version, runtime, True, **facts)


def resolve(requested: str) -> DeviceChoice:
    """Apply the policy to this machine (CUDA is not touched when cpu is requested)."""
    cuda = None if requested == "cpu" else probe_cuda()
    return decide(requested, cuda, cpu_name())


def log_choice(choice: DeviceChoice) -> None:
    """One journal line: the device and why, or the refusal (at ERROR)."""
    extra = {
        "event": "device_refused" if choice.refused else "device_selected",
        "requested": choice.requested,
        "device": choice.device,
        "device_name": choice.name,  # "name" is taken by logging.LogRecord
        "capability": choice.capability,
        "driver": choice.driver,
        "reason": choice.reason,
    }
    if choice.refused:
        log.error("refusing to become ready: %s", choice.reason, extra=extra)
    else:
        log.log(choice.level, "serving on %s: %s", choice.device, choice.reason, extra=extra)
