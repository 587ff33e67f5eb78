from __future__ import annotations

import copy
from typing import Any

import pytest

from disposable.hosts.contract import ContractError, parse_outputs


def test_parses_terraform_output_json(outputs: dict[str, Any]) -> None:
    contract = parse_outputs(outputs)
    assert contract.environment == "local"
    assert [h.name for h in contract.hosts] == ["dml-local-1", "gpu-1"]
    assert contract.hosts[1].gpu_count == 1 and contract.hosts[1].connection == "iap"


def test_accepts_plain_values(outputs: dict[str, Any]) -> None:
    plain = {k: v["value"] for k, v in outputs.items()}
    assert parse_outputs(plain) == parse_outputs(outputs)


def test_whole_floats_are_accepted_as_ints(outputs: dict[str, Any]) -> None:
    outputs["hosts"]["value"][0]["ssh_port"] = 22.0
    assert parse_outputs(outputs).hosts[0].ssh_port == 22


@pytest.mark.parametrize(
    "field",
    ["name", "address", "ssh_user", "ssh_port", "groups", "gpu_type", "gpu_count", "zone", "instance_id", "connection"],
)
def test_missing_field_is_named(outputs: dict[str, Any], field: str) -> None:
    del outputs["hosts"]["value"][1][field]
    with pytest.raises(ContractError) as err:
        parse_outputs(outputs)
    assert f"missing field {field!r}" in str(err.value)
    assert "hosts[1]" in str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("address", "not-an-ip", "not an IPv4 address"),
        ("ssh_port", "22", "must be int"),
        ("gpu_count", True, "must be int"),
        ("groups", [], "non-empty list of group names"),
        ("groups", ["Bad-Group"], "non-empty list of group names"),
        ("connection", "telnet", "must be one of"),
        ("gpu_type", "none", "gpu_type must be 'none' exactly when gpu_count is 0"),
    ],
)
def test_bad_values_are_explained(outputs: dict[str, Any], field: str, value: Any, message: str) -> None:
    outputs["hosts"]["value"][1][field] = value
    with pytest.raises(ContractError, match=message):
        parse_outputs(outputs)


@pytest.mark.parametrize("missing", ["contract_version", "environment", "hosts"])
def test_missing_output_is_named(outputs: dict[str, Any], missing: str) -> None:
    del outputs[missing]
    with pytest.raises(ContractError, match=f"lack the {missing!r} output"):
        parse_outputs(outputs)


def test_empty_outputs_say_to_provision() -> None:
    with pytest.raises(ContractError) as err:
        parse_outputs({})
    assert "invoke provision" in err.value.hint


def test_duplicate_names_rejected(outputs: dict[str, Any]) -> None:
    outputs["hosts"]["value"].append(copy.deepcopy(outputs["hosts"]["value"][0]))
    with pytest.raises(ContractError, match="Duplicate host names"):
        parse_outputs(outputs)


def test_unknown_contract_version(outputs: dict[str, Any]) -> None:
    outputs["contract_version"]["value"] = 2
    with pytest.raises(ContractError, match="version 2 is not supported"):
        parse_outputs(outputs)
