"""`invoke load` picks its target from the output contract, never by guessing, and refuses
arguments it cannot honour before sending anything."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from disposable.errors import DisposableError
from disposable.fleet import loadtest
from disposable.hosts.contract import parse_outputs


def test_the_front_door_is_the_target_when_there_is_one(outputs: dict[str, Any]) -> None:
    outputs = copy.deepcopy(outputs)
    outputs["front_door"] = {"value": {"address": "10.150.77.2", "port": 80, "url": "http://10.150.77.2:80"}}
    chosen = loadtest.target(parse_outputs(outputs))
    assert (chosen.address, chosen.port, chosen.what) == ("10.150.77.2", 80, "front door")


def test_without_a_front_door_the_one_direct_host_is_the_target(outputs: dict[str, Any]) -> None:
    chosen = loadtest.target(parse_outputs(outputs))  # dml-local-1 direct, gpu-1 behind IAP
    assert (chosen.address, chosen.port, chosen.what) == ("10.150.77.10", 8080, "dml-local-1")


def test_no_front_door_and_two_direct_hosts_is_an_error_not_a_guess(outputs: dict[str, Any]) -> None:
    outputs = copy.deepcopy(outputs)
    outputs["hosts"]["value"][1]["connection"] = "direct"
    with pytest.raises(DisposableError, match="no front door and 2 directly reachable"):
        loadtest.target(parse_outputs(outputs))


@pytest.mark.parametrize(("rate", "seconds", "message"), [
    (0, 60, "--rate 0"), (-5, 60, "--rate -5"), (5000, 60, "at most 2000"),
    (83, 0, "--seconds 0"), (83, 7200, "at most 3600"),
])  # fmt: skip
def test_impossible_arguments_are_refused_before_any_request(rate: float, seconds: float, message: str) -> None:
    with pytest.raises(DisposableError, match=message):
        loadtest.check_arguments(rate, seconds)
