"""The inference_service role's part of the host spec."""

from tests.spec.test_inference_service import (  # noqa: F401  (collected here)
    test_service_code_matches_the_repository,
    test_service_device_follows_the_hosts_gpu,
    test_service_is_enabled_active_and_not_root,
    test_service_is_ready_from_the_host,
    test_service_listens_on_its_port,
    test_service_unit_is_valid_and_sandboxed,
    test_service_user_is_unprivileged,
    test_the_served_model_is_the_environments_version_from_the_store,
)
