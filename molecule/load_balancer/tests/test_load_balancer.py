"""The load_balancer role: HAProxy's configuration valid, the service running, health
checks that send GET /readyz, the runtime API at admin level, metrics exported.
(The scenario host is its own only backend, with no service: the server is DOWN, which
shows the checks run; traffic through a real fleet is tested in tests/integration.)"""

from __future__ import annotations

import json
from typing import Any

from tests.spec.test_load_balancer import (  # noqa: F401  (collected here)
    test_haproxy_configuration_is_valid_and_checks_readiness_with_get,
    test_haproxy_is_running_and_serves_the_front_door,
    test_metrics_and_stats_are_exported,
    test_runtime_api_answers_at_admin_level,
)


def test_the_only_backend_without_a_service_is_down(host: Any) -> None:
    out = host.check_output(
        "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); "
        "s.sendall(b'show stat json\\n'); print(b''.join(iter(lambda: s.recv(65536), b'')).decode())\""
    )
    rows = [field for entry in json.loads(out) for field in entry if field["field"]["name"] == "status"]
    statuses = {row["value"]["value"] for row in rows}
    assert "DOWN" in statuses, statuses
