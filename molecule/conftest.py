"""Fixtures of the host spec (tests/spec/conftest.py), for every scenario's testinfra tests:
the scenarios verify the same spec `invoke verify` checks, role by role."""

from tests.spec.conftest import (  # noqa: F401  (pytest fixtures)
    apt_lock,
    apt_versions,
    gpu_stack,
    has_gpu,
    hostvars,
    kernel_flavour,
    locked_requirements,
    spec,
)
