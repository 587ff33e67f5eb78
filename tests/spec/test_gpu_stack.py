"""The GPU stack: NVIDIA driver and CUDA at their pinned versions, held, the module built.

Without a GPU (the local cloud, CI) the packages, holds, the DKMS build and nvcc are still
asserted; what only a GPU can show (nvidia-smi, a CUDA device query) is marked `gpu` and
skipped with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.conftest import hosts_in

testinfra_hosts = hosts_in("inference")

NO_GPU = "host has no GPU in the output contract (gpu_count=0): the driver cannot talk to a device"


def _require_stack(gpu_stack: bool) -> None:
    if not gpu_stack:
        pytest.skip("GPU stack not part of this host's spec (no GPU, nvidia_driver_force_install false)")


def _version(host: Any, package: str) -> str:
    return host.check_output(f"dpkg-query -W -f='${{Version}}' {package}")


def _held(host: Any) -> set[str]:
    return set(host.check_output("apt-mark showhold").split())


def test_driver_packages_pinned_and_held(
    host: Any, spec: dict[str, Any], apt_versions: dict[str, str], gpu_stack: bool
) -> None:
    _require_stack(gpu_stack)
    held = _held(host)
    for package in spec["nvidia_driver_os_packages"]:
        assert _version(host, package) == apt_versions[package], package
        assert package in held, f"{package} is not held"


def test_kernel_packages_pinned_and_held(
    host: Any, kernel_flavour: str, apt_versions: dict[str, str], gpu_stack: bool
) -> None:
    _require_stack(gpu_stack)
    held = _held(host)
    for template in ("linux-image-{}", "linux-headers-{}"):
        package = template.format(kernel_flavour)
        assert _version(host, package) == apt_versions[package], package
        assert package in held, f"{package} is not held"


def test_driver_kernel_module_built_by_dkms_for_the_target_kernel(
    host: Any, spec: dict[str, Any], kernel_flavour: str, apt_versions: dict[str, str], gpu_stack: bool
) -> None:
    _require_stack(gpu_stack)
    depends = host.check_output(f"dpkg-query -W -f='${{Depends}}' linux-headers-{kernel_flavour}")
    kernel = depends.split("linux-headers-", 1)[1].split()[0].rstrip(",")
    status = host.check_output(f"dkms status -m {spec['nvidia_driver_dkms_module']} -k {kernel}")
    assert "installed" in status, status
    branch_version = apt_versions["nvidia-kernel-dkms"].split("-")[0]
    assert branch_version in status
    # Debian renames the module after its DKMS package (nvidia-current.ko), Ubuntu keeps nvidia.ko.
    module_name = spec["nvidia_driver_dkms_module"]
    module = host.run(f"find /lib/modules/{kernel} -name '{module_name}.ko*'")
    assert module.stdout.strip(), f"no {module_name}.ko under /lib/modules/{kernel}"


def test_nouveau_is_blacklisted(host: Any, gpu_stack: bool) -> None:
    _require_stack(gpu_stack)
    config = host.check_output("cat /etc/modprobe.d/*.conf")
    assert "blacklist nouveau" in config


def test_a_container_does_not_try_to_load_kernel_modules_at_boot(host: Any, gpu_stack: bool) -> None:
    """The driver asks for nvidia modules at boot; in a container that fails every boot
    (found by booting a host from the baked image), so the role turns it off there."""
    _require_stack(gpu_stack)
    if host.run("systemd-detect-virt --container").rc != 0:
        pytest.skip("not a container: the host loads its own kernel modules")
    drop_in = host.file("/etc/systemd/system/systemd-modules-load.service.d/disposable-container.conf")
    assert drop_in.contains("ConditionVirtualization=!container")


def test_cuda_toolkit_pinned_and_held(
    host: Any, spec: dict[str, Any], apt_versions: dict[str, str], gpu_stack: bool
) -> None:
    _require_stack(gpu_stack)
    assert _version(host, spec["cuda_os_toolkit_package"]) == apt_versions[spec["cuda_os_toolkit_package"]]
    assert spec["cuda_os_toolkit_package"] in _held(host)


def test_nvcc_reports_the_pinned_release(
    host: Any, spec: dict[str, Any], apt_versions: dict[str, str], gpu_stack: bool
) -> None:
    _require_stack(gpu_stack)
    out = host.check_output("nvcc --version")
    toolkit = apt_versions[spec["cuda_os_toolkit_package"]].split("~")[0]  # 11.8.89
    assert f"release {'.'.join(toolkit.split('.')[:2])}," in out
    assert "V" + toolkit in out


CUDA_PROGRAM = r"""
#include <cstdio>
__global__ void add(int *x) { *x += 1; }
int main() {
  int n = 0; cudaError_t e = cudaGetDeviceCount(&n);
  printf("%s %d\n", cudaGetErrorString(e), n);
  return e == cudaSuccess && n > 0 ? 0 : 3;
}
"""


def _compile(host: Any) -> None:
    result = host.run(
        f"mkdir -p /tmp/dml-cuda && printf '%s' '{CUDA_PROGRAM}' > /tmp/dml-cuda/query.cu "
        "&& nvcc -o /tmp/dml-cuda/query /tmp/dml-cuda/query.cu"
    )
    assert result.rc == 0, result.stderr


def test_nvcc_compiles_with_the_configured_host_compiler(host: Any, gpu_stack: bool) -> None:
    _require_stack(gpu_stack)
    _compile(host)
    assert host.file("/tmp/dml-cuda/query").exists


@pytest.mark.gpu
def test_gpu_visible_to_nvidia_smi(host: Any, hostvars: dict[str, Any], has_gpu: bool) -> None:
    if not has_gpu:
        pytest.skip(NO_GPU)
    out = host.check_output("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader")
    assert len(out.splitlines()) == int(hostvars["dml_gpu_count"])


@pytest.mark.gpu
def test_cuda_device_query(host: Any, has_gpu: bool) -> None:
    if not has_gpu:
        pytest.skip(NO_GPU)
    _compile(host)
    result = host.run("/tmp/dml-cuda/query")
    assert result.rc == 0 and result.stdout.startswith("no error"), result.stdout
