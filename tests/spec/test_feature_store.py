"""What a feature-store host must be (testinfra_hosts: the environment's `features` group):
Redis from the lock, on the private address only, no anonymous access, named users that
log in, the append-only file on, and (in an environment) its data on the state volume."""

from __future__ import annotations

import base64
from typing import Any

from tests.spec.conftest import hosts_in

testinfra_hosts = hosts_in("features")

CONFIG = "/etc/redis/redis.conf"


def _ask(host: Any, address: str, port: int, *words: str) -> str:
    """One Redis command over a plain socket, from the host itself (RESP, first reply). The
    command travels base64-encoded, so no quoting or escaping stands between it and Redis."""
    packed = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    encoded = base64.b64encode(packed.encode()).decode()
    return host.check_output(
        f"python3 -c \"import base64,socket; s=socket.create_connection(('{address}', {port}), 5); "
        f"s.sendall(base64.b64decode('{encoded}')); print(s.recv(256).decode().strip())\""
    )


def test_redis_is_running_on_the_private_address_only(
    host: Any, spec: dict[str, Any], hostvars: dict[str, Any]
) -> None:
    assert host.service("redis-server").is_enabled and host.service("redis-server").is_running
    port = spec["feature_store_port"]
    assert host.socket(f"tcp://{hostvars['ansible_host']}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://127.0.0.1:{port}").is_listening


def test_the_configuration_is_durable_and_holds_no_password(host: Any, spec: dict[str, Any]) -> None:
    config = host.file(CONFIG)
    assert config.user == "redis" and config.mode == 0o640
    text = config.content_string
    assert "appendonly yes" in text and f"appendfsync {spec['feature_store_appendfsync']}" in text
    assert f"dir {spec['feature_store_data_dir']}" in text
    assert "user default off" in text
    for user in ("predictor", "feeder"):
        line = next(line for line in text.splitlines() if line.startswith(f"user {user} on "))
        assert " #" in line and ">" not in line, "passwords only as sha256 (#...), never in clear (>...)"


def test_anonymous_clients_are_refused(host: Any, spec: dict[str, Any], hostvars: dict[str, Any]) -> None:
    assert _ask(host, hostvars["ansible_host"], spec["feature_store_port"], "PING").startswith("-NOAUTH")


def test_the_data_directory_belongs_to_redis(host: Any, spec: dict[str, Any]) -> None:
    data = host.file(spec["feature_store_data_dir"])
    assert data.is_directory and data.user == "redis" and data.mode == 0o750


def test_the_data_lives_on_the_state_volume(host: Any, spec: dict[str, Any]) -> None:
    """The environment's LXD volume is mounted at the data directory: rebuilding this host
    keeps the features. (Not collected by Molecule, whose plain container has no volume.)"""
    mounts = host.check_output(f"findmnt -n -o TARGET --target {spec['feature_store_data_dir']}")
    assert mounts == spec["feature_store_data_dir"], mounts
