from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from demand_predictor.config import ConfigError, Settings, load_settings

from conftest import SERVICE_DIR


def test_defaults_are_loopback_and_documented_values() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.drain_timeout_s == 20.0


def test_environment_overrides() -> None:
    settings = load_settings(
        {
            "DP_PORT": "9000",
            "DP_MAX_BATCH": "32",
            "DP_LATENCY_BUDGET_MS": "25.5",
            "DP_LOG_LEVEL": "debug",
            "DP_ACCESS_LOG": "off",
            "DP_MODEL_DIR": "/srv/model",
        }
    )
    assert settings.port == 9000
    assert settings.max_batch == 32
    assert settings.latency_budget_s == pytest.approx(0.0255)
    assert settings.log_level == "DEBUG"
    assert settings.access_log is False
    assert settings.model_dir == Path("/srv/model")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("DP_PORT", "eighty", "DP_PORT"),
        ("DP_PORT", "70000", "between 0 and 65535"),
        ("DP_MAX_BATCH", "0", "between 1"),
        ("DP_LATENCY_BUDGET_MS", "nan", "between"),
        ("DP_LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("DP_DEVICE", "tpu", "one of auto"),
        ("DP_ACCESS_LOG", "maybe", "true/false"),
        ("DP_EXPECTED_SHA256", "abc", "64 hexadecimal"),
        (
            "DP_FEATURE_STORE_URL",
            "redis://u:secret@127.0.0.1:6379/0",
            "must not contain credentials",
        ),
        (
            "DP_FEATURE_STORE_URL",
            "unix:///run/redis.sock?password=x",
            "must not contain credentials",
        ),
        ("DP_FEATURE_STORE_URL", "http://127.0.0.1:6379", "redis://"),
        ("DP_FEATURE_STORE_TIMEOUT_MS", "0", "between 1"),
        ("DP_FEATURE_STORE_PASSWORD_FILE", "relative/pass", "absolute path"),
        ("DP_MODEL_VERSION", "../1.0", "letters, digits"),
        ("DP_MODEL_NAME", "", "1-64 characters"),
        ("DP_MODEL_STORE_URL", "ftp://controller/models", "http(s)://"),
        ("DP_ADMIN_SOCKET", "admin.sock", "absolute path"),
        ("DP_SHED_STATUS", "500", "one of 429, 503"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({name: value})
    assert name in str(err.value)
    assert fragment in str(err.value)


def test_unknown_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="DP_MAX_BACTH"):
        load_settings({"DP_MAX_BACTH": "8"})


def test_toml_file_with_env_precedence(tmp_path: Path) -> None:
    path = tmp_path / "dp.toml"
    path.write_text('port = 9100\nmax_batch = 16\nhost = "0.0.0.0"\n')
    settings = load_settings({"DP_CONFIG_FILE": str(path), "DP_PORT": "9200"})
    assert (settings.port, settings.max_batch, settings.host) == (9200, 16, "0.0.0.0")


def test_json_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "dp.json"
    good.write_text(json.dumps({"queue_limit": 10, "access_log": False}))
    settings = load_settings({"DP_CONFIG_FILE": str(good)})
    assert settings.queue_limit == 10 and settings.access_log is False

    bad_key = tmp_path / "bad.json"
    bad_key.write_text(json.dumps({"queue_limt": 10}))
    with pytest.raises(ConfigError, match="unknown key.*queue_limt"):
        load_settings({"DP_CONFIG_FILE": str(bad_key)})

    broken = tmp_path / "broken.toml"
    broken.write_text("port = ")
    with pytest.raises(ConfigError, match="not valid toml"):
        load_settings({"DP_CONFIG_FILE": str(broken)})

    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"DP_CONFIG_FILE": str(tmp_path / "missing.json")})


def test_cli_reports_bad_config_and_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demand_predictor", "serve"],
        env={"PYTHONPATH": str(SERVICE_DIR), "DP_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "DP_PORT" in result.stderr


def test_feature_store_and_model_versions_settings() -> None:
    settings = load_settings(
        {
            "DP_FEATURE_STORE_URL": "redis://10.0.0.5:6379/0",
            "DP_FEATURE_STORE_USERNAME": "predictor",
            "DP_FEATURE_STORE_PASSWORD_FILE": "/etc/demand-predictor/redis.pass",
            "DP_FEATURE_STORE_MAX_AGE_S": "900",
            "DP_MODEL_DIR": "/var/lib/demand-predictor/models",
            "DP_MODEL_VERSION": "1.1.0",
            "DP_MODEL_STORE_URL": "http://10.0.0.2:8000/models/",
            "DP_ADMIN_SOCKET": "/run/demand-predictor/admin.sock",
        }
    )
    assert settings.versioned and settings.model_version == "1.1.0"
    assert settings.feature_store_max_age_s == 900.0
    from demand_predictor.modelstore import resolve_model_dir

    assert resolve_model_dir(settings) == Path(
        "/var/lib/demand-predictor/models/demand-predictor/1.1.0"
    )
    assert not load_settings({}).versioned
    assert resolve_model_dir(load_settings({"DP_MODEL_DIR": "/srv/m"})) == Path("/srv/m")
