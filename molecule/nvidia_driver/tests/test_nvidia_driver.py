"""The nvidia_driver role's part of the host spec."""

from tests.spec.test_gpu_stack import (  # noqa: F401  (collected here)
    test_driver_kernel_module_built_by_dkms_for_the_target_kernel,
    test_driver_packages_pinned_and_held,
    test_gpu_visible_to_nvidia_smi,
    test_kernel_packages_pinned_and_held,
    test_nouveau_is_blacklisted,
)
