"""The feature_store role: Redis running on the private address only, durable
configuration without passwords in clear, anonymous clients refused, the data directory
owned by Redis. (The state volume is the environment's: tests/integration.)"""

from __future__ import annotations

from tests.spec.test_feature_store import (  # noqa: F401  (collected here)
    test_anonymous_clients_are_refused,
    test_redis_is_running_on_the_private_address_only,
    test_the_configuration_is_durable_and_holds_no_password,
    test_the_data_directory_belongs_to_redis,
)
