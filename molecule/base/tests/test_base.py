"""The base role's part of the host spec (the same checks `invoke verify` runs)."""

from tests.spec.test_host_spec import (  # noqa: F401  (collected here)
    test_apt_installs_only_from_the_package_store,
    test_extra_ca_certificates_are_exactly_the_environments,
    test_installed_packages_are_exactly_the_apt_lock,
    test_login_user_is_not_root_and_has_sudo,
    test_os_is_debian_12,
    test_ssh_refuses_root_and_passwords,
    test_systemd_is_running_cleanly,
    test_time_sync_is_enabled,
    test_unattended_upgrades_never_touch_the_gpu_stack,
)
