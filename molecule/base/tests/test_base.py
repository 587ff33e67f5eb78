"""The base role's part of the host spec (the same checks `invoke verify` runs)."""

from tests.spec.conftest import hostvars, spec  # noqa: F401  (fixtures)
from tests.spec.test_host_spec import (  # noqa: F401  (collected here)
    test_extra_ca_certificates_are_trusted,
    test_login_user_is_not_root_and_has_sudo,
    test_os_is_debian_12,
    test_systemd_is_running_cleanly,
)
