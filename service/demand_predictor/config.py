"""Service configuration: environment variables (prefix ``DP_``) over an optional file.

Precedence (highest first): ``DP_*`` environment variables, the file named by
``DP_CONFIG_FILE`` (JSON or TOML, keys are the lower-case names without prefix),
built-in defaults. Every value is validated; a bad value raises ``ConfigError``
with a message naming the variable, the value and what is allowed.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "DP_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """Raised for an invalid setting; the message is meant for the operator."""


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path("model")
    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 64
    max_rows: int = 256
    queue_limit: int = 2048
    max_inflight: int = 256
    latency_budget_ms: float = 50.0
    loop_lag_limit_ms: float = 20.0
    torch_threads: int = 1
    device: str = "auto"
    half: bool = False
    drain_timeout_s: float = 20.0
    drain_grace_s: float = 1.0
    # After SIGTERM, keep serving predictions this long while /readyz already says 503,
    # so a load balancer's health checks take the host out before it refuses anything.
    drain_serve_s: float = 0.0
    # The status of a request shed under overload (queue full, latency budget): 429, or 503
    # behind a load balancer, which retries a 503 on another server (HAProxy's retry-on
    # cannot name 429) - an overloaded host then costs latency, not a failed request.
    shed_status: int = 429
    # While this file exists, /readyz says 503 (predictions are still served): operators
    # take a host out of rotation with `touch` and put it back with `rm`.
    not_ready_file: str = ""
    max_body_bytes: int = 262_144
    warmup_rounds: int = 3
    expected_sha256: str = ""
    log_level: str = "INFO"
    access_log: bool = True
    # Versioned models (modelstore.py). With model_version set, model_dir is the local
    # store root and the artifact is model_dir/model_name/model_version.
    model_name: str = "demand-predictor"
    model_version: str = ""
    model_store_url: str = ""  # http(s)://, file:// or a path: where missing versions come from
    model_store_timeout_s: float = 30.0
    admin_socket: str = ""  # unix socket for the admin endpoints; empty: no admin endpoints
    # Online feature store (feature_store.py); empty URL: every request carries its features.
    feature_store_url: str = ""
    feature_store_username: str = ""
    feature_store_password_file: str = ""
    feature_store_timeout_ms: float = 25.0
    feature_store_max_age_s: float = 1200.0
    feature_store_retry_s: float = 1.0
    feature_store_city: str = "default"
    # Ablation switches (the benchmark's ablation table, bench/): each turns off one of
    # the service's own mechanisms so its effect has its own number. The defaults are
    # the service as deployed; turning one off never changes a response's content.
    batching: bool = True  # false: the inference worker runs one request per batch
    fused_model: bool = True  # false: the eager network + to_rides (model.PlainRides)
    fast_validator: bool = True  # false: every body is validated by the pydantic models
    early_refusal: bool = True  # false: no header-time refusal in the HTTP protocol

    @property
    def latency_budget_s(self) -> float:
        return self.latency_budget_ms / 1000.0

    @property
    def versioned(self) -> bool:
        return bool(self.model_version)


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError("expected an integer")
        number = int(value) if isinstance(value, int) else int(str(value).strip(), 10)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return check


def _float_range(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise TypeError("expected a number")
        number = float(value)
        if not low <= number <= high:  # also rejects NaN
            raise ValueError(f"must be between {low} and {high}")
        return number

    return check


def _choice(options: tuple[str, ...], upper: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return check


def _status_choice(options: tuple[int, ...]) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        text = str(value).strip()
        if not text.isdigit() or int(text) not in options:
            raise ValueError(f"must be one of {', '.join(map(str, options))}")
        return int(text)

    return check


def _sha256(value: Any) -> str:
    text = str(value).strip().lower()
    if text and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise ValueError("must be empty or 64 hexadecimal characters")
    return text


def _host(value: Any) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("must be a non-empty host name or IP address")
    return text


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")


def _identifier(allow_empty: bool) -> Callable[[Any], str]:
    """Model names, versions, city ids: they become path components and Redis keys."""

    def check(value: Any) -> str:
        text = str(value).strip()
        if not text and allow_empty:
            return text
        if (
            not 0 < len(text) <= 64
            or not set(text) <= _NAME_CHARS
            or text[0] in ".-+"
            or ".." in text
        ):
            raise ValueError(
                "must be 1-64 characters of letters, digits and ._+- (not starting with . - +)"
            )
        return text

    return check


def _redis_url(value: Any) -> str:
    text = str(value).strip()
    if not text:
        return text
    parsed = urlsplit(text)
    if parsed.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be redis://host:port/db, rediss://host:port/db or unix:///path")
    if parsed.password is not None or parsed.username is not None or "password" in parsed.query:
        raise ValueError(
            "must not contain credentials: use DP_FEATURE_STORE_USERNAME and "
            "DP_FEATURE_STORE_PASSWORD_FILE"
        )
    return text


def _store_url(value: Any) -> str:
    text = str(value).strip()
    if not text:
        return text
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https", "file", ""):
        raise ValueError("must be an http(s):// or file:// URL, or a directory path")
    if parsed.password is not None:
        raise ValueError("must not contain a password")
    return text


def _path_or_empty(value: Any) -> str:
    text = str(value).strip()
    if text and not text.startswith("/"):
        raise ValueError("must be empty or an absolute path")
    return text


def _boolean(value: Any) -> bool:
    return value if isinstance(value, bool) else _parse_bool(str(value))


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "model_dir": lambda v: Path(str(v)),
    "host": _host,
    "port": _int_range(0, 65535),
    "max_batch": _int_range(1, 4096),
    "max_rows": _int_range(1, 10_000),
    "queue_limit": _int_range(1, 1_000_000),
    "max_inflight": _int_range(1, 100_000),
    "latency_budget_ms": _float_range(1.0, 60_000.0),
    "loop_lag_limit_ms": _float_range(1.0, 60_000.0),
    "torch_threads": _int_range(1, 256),
    "device": _choice(DEVICES),
    "half": _boolean,
    "drain_timeout_s": _float_range(0.5, 3600.0),
    "drain_grace_s": _float_range(0.0, 600.0),
    "drain_serve_s": _float_range(0.0, 600.0),
    "shed_status": _status_choice((429, 503)),
    "not_ready_file": _path_or_empty,
    "max_body_bytes": _int_range(1024, 64 * 1024 * 1024),
    "warmup_rounds": _int_range(1, 1_000_000),
    "expected_sha256": _sha256,
    "log_level": _choice(LOG_LEVELS, upper=True),
    "access_log": _boolean,
    "model_name": _identifier(allow_empty=False),
    "model_version": _identifier(allow_empty=True),
    "model_store_url": _store_url,
    "model_store_timeout_s": _float_range(0.1, 3600.0),
    "admin_socket": _path_or_empty,
    "feature_store_url": _redis_url,
    "feature_store_username": lambda v: str(v).strip(),
    "feature_store_password_file": _path_or_empty,
    "feature_store_timeout_ms": _float_range(1.0, 10_000.0),
    "feature_store_max_age_s": _float_range(1.0, 7 * 86_400.0),
    "feature_store_retry_s": _float_range(0.05, 600.0),
    "feature_store_city": _identifier(allow_empty=False),
    "batching": _boolean,
    "fused_model": _boolean,
    "fast_validator": _boolean,
    "early_refusal": _boolean,
}


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"DP_CONFIG_FILE={path}: cannot read: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(raw.decode("utf-8"))
        elif path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            raise ConfigError(f"DP_CONFIG_FILE={path}: file name must end in .json or .toml")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"DP_CONFIG_FILE={path}: not valid {path.suffix[1:]}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"DP_CONFIG_FILE={path}: top level must be a table/object")
    unknown = sorted(set(data) - set(_PARSERS))
    if unknown:
        raise ConfigError(
            f"DP_CONFIG_FILE={path}: unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(_PARSERS))}"
        )
    return data


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated settings from the environment (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    unknown_env = sorted(
        name
        for name in env
        if name.startswith(ENV_PREFIX)
        and name != "DP_CONFIG_FILE"
        and name[len(ENV_PREFIX) :].lower() not in _PARSERS
    )
    if unknown_env:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown_env)}; known: "
            + ", ".join(env_name(k) for k in sorted(_PARSERS))
        )
    values: dict[str, Any] = {}
    config_file = env.get("DP_CONFIG_FILE", "").strip()
    if config_file:
        for key, raw in _read_file(Path(config_file)).items():
            values[key] = _convert(key, raw, f"{key} in {config_file}")
    for key in _PARSERS:
        name = env_name(key)
        if name in env:
            values[key] = _convert(key, env[name], name)
    settings = Settings(**values)
    if settings.half and not settings.fused_model:
        raise ConfigError(
            "invalid DP_HALF=true with DP_FUSED_MODEL=false: float16 runs only through the "
            "fused model; set DP_FUSED_MODEL=true or DP_HALF=false"
        )
    return settings


def _convert(key: str, raw: Any, where: str) -> Any:
    try:
        return _PARSERS[key](raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid {where}={raw!r}: {exc}") from exc


def describe() -> list[tuple[str, str]]:
    """(environment variable, default) pairs, for documentation and --help."""
    defaults = Settings()
    return [(env_name(f.name), str(getattr(defaults, f.name))) for f in fields(Settings)]
