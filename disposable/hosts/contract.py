"""The output contract: the one shape every environment's Terraform outputs take.

See docs/output-contract.md. `parse_outputs` accepts `terraform output -json` (values
wrapped in {"value": ...}) or plain values, and names exactly what is missing or wrong.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from disposable.errors import DisposableError

CONTRACT_VERSION = 1
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CONNECTIONS = ("direct", "iap")

# field -> (python types accepted, description)
HOST_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "host name"),
    "address": ((str,), "IPv4 address Ansible connects to"),
    "ssh_user": ((str,), "non-root login user"),
    "ssh_port": ((int,), "SSH port"),
    "groups": ((list,), "Ansible groups"),
    "gpu_type": ((str,), "GPU model, or 'none'"),
    "gpu_count": ((int,), "number of GPUs"),
    "zone": ((str,), "zone or 'local'"),
    "instance_id": ((str,), "changes whenever the host is re-created"),
    "connection": ((str,), "'direct' or 'iap'"),
}


class ContractError(DisposableError):
    """Terraform outputs do not follow the output contract."""


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    ssh_user: str
    ssh_port: int
    groups: tuple[str, ...]
    gpu_type: str
    gpu_count: int
    zone: str
    instance_id: str
    connection: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        return data


@dataclass(frozen=True)
class FrontDoor:
    """Where clients reach the service when a load balancer fronts the hosts."""

    address: str
    port: int
    url: str


@dataclass(frozen=True)
class FeatureStore:
    """The online feature store (Redis) the inference hosts read recent history from:
    a host of the `features` group locally, Memorystore on GCP."""

    address: str
    port: int
    url: str  # redis://host:port/db, or rediss:// with TLS
    tls: bool


@dataclass(frozen=True)
class Contract:
    environment: str
    hosts: tuple[Host, ...]
    front_door: FrontDoor | None = None
    feature_store: FeatureStore | None = None

    def in_group(self, group: str) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if group in h.groups)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise DisposableError(f"No host named {name!r} in environment {self.environment!r} (hosts: {known}).")


def _unwrap(outputs: dict[str, Any], key: str) -> Any:
    if key not in outputs:
        raise ContractError(
            f"Terraform outputs lack the {key!r} output required by the output contract.",
            "Every environment root must expose contract_version, environment and hosts (see docs/output-contract.md).",
        )
    value = outputs[key]
    if isinstance(value, dict) and "value" in value and set(value) <= {"value", "type", "sensitive"}:
        return value["value"]
    return value


def _parse_host(index: int, raw: Any) -> Host:
    if not isinstance(raw, dict):
        raise ContractError(f"hosts[{index}] must be an object, got {type(raw).__name__}.")
    label = f"hosts[{index}]" + (f" ({raw['name']!r})" if isinstance(raw.get("name"), str) else "")
    for field, (types, meaning) in HOST_FIELDS.items():
        if field not in raw:
            raise ContractError(
                f"{label} is missing field {field!r} ({meaning}).",
                "Fix the environment's outputs.tf so every host has all contract fields.",
            )
        value = raw[field]
        if isinstance(value, bool) or not isinstance(value, types):
            # Terraform emits whole numbers as floats sometimes (e.g. 22.0).
            if int in types and isinstance(value, float) and value.is_integer():
                raw = {**raw, field: int(value)}
                continue
            raise ContractError(f"{label} field {field!r} must be {types[0].__name__}, got {value!r}.")
    try:
        ipaddress.IPv4Address(raw["address"])
    except ValueError:
        raise ContractError(f"{label} field 'address' is not an IPv4 address: {raw['address']!r}.") from None
    bad_groups = [g for g in raw["groups"] if not isinstance(g, str) or not GROUP_NAME.match(g)]
    if not raw["groups"] or bad_groups:
        raise ContractError(f"{label} field 'groups' must be a non-empty list of group names, got {raw['groups']!r}.")
    if raw["connection"] not in CONNECTIONS:
        raise ContractError(f"{label} field 'connection' must be one of {CONNECTIONS}, got {raw['connection']!r}.")
    if raw["gpu_count"] < 0 or (raw["gpu_count"] == 0) != (raw["gpu_type"] == "none"):
        raise ContractError(f"{label}: gpu_type must be 'none' exactly when gpu_count is 0.")
    return Host(**{**{k: raw[k] for k in HOST_FIELDS}, "groups": tuple(raw["groups"])})


def parse_outputs(outputs: dict[str, Any]) -> Contract:
    if not isinstance(outputs, dict) or not outputs:
        raise ContractError(
            "No Terraform outputs: the environment has not been provisioned (or its state is empty).",
            "Run `invoke provision --env ENV` first.",
        )
    version = _unwrap(outputs, "contract_version")
    if version != CONTRACT_VERSION:
        raise ContractError(f"Output contract version {version!r} is not supported (expected {CONTRACT_VERSION}).")
    environment = _unwrap(outputs, "environment")
    hosts_raw = _unwrap(outputs, "hosts")
    if not isinstance(environment, str) or not environment:
        raise ContractError("Output 'environment' must be a non-empty string.")
    if not isinstance(hosts_raw, list) or not hosts_raw:
        raise ContractError("Output 'hosts' must be a non-empty list.")
    hosts = tuple(_parse_host(i, h) for i, h in enumerate(hosts_raw))
    names = [h.name for h in hosts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError(f"Duplicate host names in outputs: {', '.join(duplicates)}.")
    return Contract(
        environment=environment,
        hosts=hosts,
        front_door=_front_door(outputs),
        feature_store=_feature_store(outputs),
    )


def _endpoint(outputs: dict[str, Any], name: str, schemes: tuple[str, ...]) -> dict[str, Any] | None:
    """An optional endpoint output (`name`): null or absent -> None, else an object with an
    address and a url in one of `schemes` ("http://", ...)."""
    value = _unwrap(outputs, name) if name in outputs else None
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or "address" not in value:
        raise ContractError(f"Output '{name}' must be null or an object with address and url, got {value!r}.")
    if not value["url"].startswith(schemes):
        raise ContractError(f"{name} url must start with {' or '.join(schemes)}, got {value['url']!r}.")
    return value


def _front_door(outputs: dict[str, Any]) -> FrontDoor | None:
    """The optional `front_door` output: null or absent without a load balancer."""
    value = _endpoint(outputs, "front_door", ("http://", "https://"))
    if value is None:
        return None
    url = value["url"]
    default_port = 443 if url.startswith("https://") else 80
    return FrontDoor(address=str(value["address"]), port=int(value.get("port", default_port)), url=url.rstrip("/"))


def _feature_store(outputs: dict[str, Any]) -> FeatureStore | None:
    """The optional `feature_store` output: null or absent without one."""
    value = _endpoint(outputs, "feature_store", ("redis://", "rediss://"))
    if value is None:
        return None
    url = value["url"]
    tls = url.startswith("rediss://")
    if bool(value.get("tls", tls)) != tls:
        raise ContractError(f"feature_store tls={value.get('tls')!r} contradicts its url {url!r}.")
    return FeatureStore(address=str(value["address"]), port=int(value.get("port", 6379)), url=url, tls=tls)
