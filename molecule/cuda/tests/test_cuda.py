"""The cuda role's part of the host spec."""

from tests.spec.test_gpu_stack import (  # noqa: F401  (collected here)
    test_cuda_device_query,
    test_cuda_toolkit_pinned_and_held,
    test_nvcc_compiles_with_the_configured_host_compiler,
    test_nvcc_reports_the_pinned_release,
)
