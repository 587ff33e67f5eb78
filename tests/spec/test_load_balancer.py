"""What a load-balancer host must be (testinfra_hosts: the environment's `lb` group)."""

from __future__ import annotations

from typing import Any

from tests.spec.conftest import hosts_in

testinfra_hosts = hosts_in("lb")

RUNTIME = "/run/haproxy/admin.sock"


def _runtime(host: Any, command: str) -> str:
    return host.check_output(
        f"python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{RUNTIME}'); "
        f"s.sendall(b'{command}\\n'); print(b''.join(iter(lambda: s.recv(65536), b'')).decode())\""
    )


def test_haproxy_configuration_is_valid_and_checks_readiness_with_get(host: Any, spec: dict[str, Any]) -> None:
    assert host.run("haproxy -c -q -f /etc/haproxy/haproxy.cfg").rc == 0
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert f"http-check send meth GET uri {spec['load_balancer_health_path']}" in config
    assert "option redispatch" in config and f"retry-on {spec['load_balancer_retry_on']}" in config
    assert f"slowstart {spec['load_balancer_slowstart_s']}s" in config
    assert f"maxconn {spec['load_balancer_server_maxconn']}" in config


def test_haproxy_is_running_and_serves_the_front_door(host: Any, spec: dict[str, Any]) -> None:
    assert host.service("haproxy").is_enabled and host.service("haproxy").is_running
    assert host.socket(f"tcp://0.0.0.0:{spec['load_balancer_port']}").is_listening


def test_runtime_api_answers_at_admin_level(host: Any) -> None:
    socket_file = host.file(RUNTIME)
    assert socket_file.is_socket and socket_file.mode == 0o600
    assert "Name: HAProxy" in _runtime(host, "show info")
    # An admin-level command is accepted (a read-only socket would refuse it).
    assert "Permission denied" not in _runtime(host, "show servers state")


def test_metrics_and_stats_are_exported(host: Any, spec: dict[str, Any], hostvars: dict[str, Any]) -> None:
    url = f"http://{hostvars['ansible_host']}:{spec['load_balancer_stats_port']}/metrics"
    body = host.check_output(f"python3 -c \"import urllib.request as u; print(u.urlopen('{url}').read().decode())\"")
    assert "haproxy_process_" in body and "haproxy_backend_" in body
