"""State outside the hosts, the parts that need no LXD: the contract's feature_store field,
the inventory variable it becomes, the producer's command line and its errors, and the
local root's validations of the feature store's host and volume, EVALUATED by Terraform.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from test_gcp_validations import VariablesRoot

from disposable.engine.binary import find_engine
from disposable.errors import DisposableError
from disposable.hosts import inventory
from disposable.hosts.contract import ContractError, parse_outputs
from disposable.local import statevolume
from disposable.state import feed

STORE = {"address": "10.150.77.3", "port": 6379, "url": "redis://10.150.77.3:6379/0", "tls": False}


@pytest.fixture
def with_store(outputs: dict[str, Any]) -> dict[str, Any]:
    outputs = copy.deepcopy(outputs)
    outputs["feature_store"] = {"value": dict(STORE)}
    return outputs


def test_the_contract_reads_the_feature_store(with_store: dict[str, Any]) -> None:
    store = parse_outputs(with_store).feature_store
    assert store is not None and store.url == STORE["url"] and store.port == 6379 and store.tls is False


def test_no_feature_store_is_none(outputs: dict[str, Any]) -> None:
    assert parse_outputs(outputs).feature_store is None
    outputs["feature_store"] = {"value": None}
    assert parse_outputs(outputs).feature_store is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "http://10.150.77.3:6379"}, "url must start with redis:// or rediss://"),
        ({"url": "rediss://m.example:6378/0", "tls": False}, "contradicts its url"),
        ({"address": None, "url": None}, "must be null or an object with address and url"),
    ],
)
def test_a_bad_feature_store_is_named(with_store: dict[str, Any], change: dict[str, Any], message: str) -> None:
    with_store["feature_store"]["value"].update(change)
    with pytest.raises(ContractError, match=message):
        parse_outputs(with_store)


def test_the_inventory_gives_every_host_the_store_url(with_store: dict[str, Any], state_dir: Path) -> None:
    built = inventory.build(parse_outputs(with_store))
    assert built["all"]["vars"]["dml_feature_store_url"] == STORE["url"]
    assert (
        "dml_feature_store_url"
        not in inventory.build(parse_outputs(with_store | {"feature_store": None}))["all"]["vars"]
    )


def test_feed_needs_a_feature_store(outputs: dict[str, Any], state_dir: Path) -> None:
    with pytest.raises(DisposableError, match="has no feature store"):
        feed.feed_argv(parse_outputs(outputs), once=True)


def test_feed_names_the_missing_password_and_what_makes_it(with_store: dict[str, Any], state_dir: Path) -> None:
    with pytest.raises(DisposableError) as err:
        feed.feed_argv(parse_outputs(with_store), once=True)
    assert "feature-store-feeder" in str(err.value) and "invoke configure" in str(err.value.hint)


def test_feed_passes_the_password_as_a_file_never_as_an_argument(with_store: dict[str, Any], state_dir: Path) -> None:
    secret = feed.feeder_password_file("local")
    secret.parent.mkdir(parents=True)
    secret.write_text("s3cret-value\n")
    argv = feed.feed_argv(parse_outputs(with_store), once=True, seed=11)
    assert argv[argv.index("--password-file") + 1] == str(secret)
    assert "s3cret-value" not in " ".join(argv)
    assert argv[argv.index("--redis-url") + 1] == STORE["url"] and "--once" in argv and "11" in argv


def test_the_state_volume_is_named_per_environment() -> None:
    assert statevolume.volume_name("local") == "dml-local-features-data"
    assert statevolume.volume_name("ci2") != statevolume.volume_name("local")


# ----------------------------------------------------------- Terraform, evaluated offline


@pytest.fixture(scope="module")
def local_root(tmp_path_factory: pytest.TempPathFactory) -> VariablesRoot:
    base = {"image": "dml-debian12", "ssh_public_key": "ssh-ed25519 AAAA test"}
    return VariablesRoot("environments/local", tmp_path_factory.mktemp("local"), find_engine(), base)


@pytest.fixture(scope="module")
def hosts_module(tmp_path_factory: pytest.TempPathFactory) -> VariablesRoot:
    base = {
        "environment": "local",
        "host_count": 1,
        "image": "dml-debian12",
        "network_name": "dml-local",
        "network_cidr": "10.150.77.0/24",
        "ssh_public_key": "ssh-ed25519 AAAA test",
    }
    return VariablesRoot("modules/lxd_hosts", tmp_path_factory.mktemp("lxd_hosts"), find_engine(), base)


def test_a_feature_store_host_needs_its_state_volume(local_root: VariablesRoot) -> None:
    assert local_root.errors(features_volume="dml-local-features-data") == []
    assert local_root.errors(features_count=0) == []
    errors = local_root.errors()  # features_count = 1 by default, no volume
    assert len(errors) == 1 and "needs features_volume" in errors[0], errors


@pytest.mark.parametrize("count", [2, -1, 0.5])
def test_one_feature_store_at_most(local_root: VariablesRoot, count: float) -> None:
    assert local_root.errors(features_count=count, features_volume="v") == ["features_count must be 0 or 1."]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data_volume": "Features_Data"}, "data_volume must be empty or an LXD volume name"),
        ({"data_volume": "v", "data_volume_path": "var/lib/redis"}, "data_volume_path must be an absolute path"),
        ({"data_volume": "v", "data_volume_path": "/var/lib/../etc"}, "data_volume_path must be an absolute path"),
    ],
)
def test_the_data_volume_is_checked(hosts_module: VariablesRoot, values: dict[str, Any], message: str) -> None:
    errors = hosts_module.errors(**values)
    assert len(errors) == 1 and errors[0].startswith(message), errors
