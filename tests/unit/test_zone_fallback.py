"""Zone fallback: which apply errors move on to the next zone, and the driver's behaviour."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from disposable.errors import DisposableError
from disposable.gcp.zone_fallback import (
    ApplyFailure,
    ZoneFallbackError,
    apply_with_zone_fallback,
    classify_apply_error,
    error_blocks,
    error_summary,
    is_zone_capacity_error,
    parse_zones,
    placements_var,
)

ERRORS = Path(__file__).parent / "data" / "gcp_errors"
EXPECTED_BY_PREFIX = {
    "capacity": ApplyFailure.CAPACITY,
    "not_in_zone": ApplyFailure.NOT_IN_ZONE,
    "quota": ApplyFailure.QUOTA,
    "other": ApplyFailure.OTHER,
}
RECORDED = sorted(ERRORS.glob("*.txt"))


def recorded(name: str) -> str:
    return (ERRORS / name).read_text()


def expected_for(path: Path) -> ApplyFailure:
    prefix = next(p for p in sorted(EXPECTED_BY_PREFIX, key=len, reverse=True) if path.stem.startswith(p + "_"))
    return EXPECTED_BY_PREFIX[prefix]


def test_every_class_has_recorded_examples() -> None:
    assert {expected_for(p) for p in RECORDED} == set(ApplyFailure)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_recorded_error_is_classified_by_its_file_name(path: Path) -> None:
    assert classify_apply_error(path.read_text()) is expected_for(path)


@pytest.mark.parametrize(
    ("text", "capacity"),
    [
        ("Error: ZONE_RESOURCE_POOL_EXHAUSTED", True),
        ("Error: ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", True),
        ("Error: the zone does NOT have enough resources available to fulfill the request.", True),
        ("Error: Resource pool exhausted", True),
        ("Error: QUOTA_EXCEEDED", False),
        ("Error: Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 0.0 in region us-central1.", False),
        ("Error: googleapi: Error 403: Quota exceeded for quota metric 'Queries', rateLimitExceeded", False),
        ("Error: Error 400: Invalid value for field 'resource.machineType'", False),
        ("", False),
    ],
)
def test_bare_messages(text: str, capacity: bool) -> None:
    assert is_zone_capacity_error(text) is capacity


def test_quota_wins_over_capacity_in_the_same_apply() -> None:
    assert classify_apply_error(recorded("quota_with_capacity.txt")) is ApplyFailure.QUOTA


def test_capacity_plus_an_unrelated_error_is_not_capacity() -> None:
    # Another zone would still hit the disabled API: stop instead of trying every zone.
    assert classify_apply_error(recorded("other_capacity_plus_api_disabled.txt")) is ApplyFailure.OTHER


def test_warnings_are_not_errors() -> None:
    blocks = error_blocks(recorded("capacity_stockout_two_hosts.txt"))
    assert len(blocks) == 2
    assert all(b.startswith("Error: ") for b in blocks)


def test_summary_is_the_telling_line() -> None:
    summary = error_summary(recorded("quota_t4_gpus.txt"))
    assert summary.startswith("Error: Error waiting for instance to create: Quota 'NVIDIA_T4_GPUS' exceeded")
    assert "│" not in summary
    assert len(error_summary("Error: " + "x" * 500, limit=50)) == 50


def test_summary_prefers_the_json_message() -> None:
    summary = error_summary(recorded("capacity_pool_exhausted_with_details.txt"))
    assert summary == (
        "The zone 'projects/my-dml-project/zones/us-east1-c' does not have enough resources available to fulfill "
        "the request.  '(resource type:compute)'."
    )


def fake_apply(results: dict[str, str]) -> tuple[Callable[[str], tuple[int, str]], list[str]]:
    """An apply() that fails with results[zone] (a recorded file name) or succeeds for zones not in it."""
    calls: list[str] = []

    def apply(zone: str) -> tuple[int, str]:
        calls.append(zone)
        return (1, recorded(results[zone])) if zone in results else (0, "Apply complete! Resources: 5 added.")

    return apply, calls


def test_first_zone_that_works_is_returned() -> None:
    apply, calls = fake_apply({})
    messages: list[str] = []
    assert apply_with_zone_fallback(["us-central1-a", "us-central1-b"], apply, messages.append) == "us-central1-a"
    assert calls == ["us-central1-a"]
    assert messages[-1] == "zone fallback: us-central1-a worked"


def test_capacity_failure_moves_to_the_next_zone_and_says_why() -> None:
    apply, calls = fake_apply(
        {"us-central1-a": "capacity_not_enough_resources.txt", "us-central1-b": "capacity_pool_exhausted_json.txt"}
    )
    messages: list[str] = []
    zone = apply_with_zone_fallback(["us-central1-a", "us-central1-b", "us-central1-c"], apply, messages.append)
    assert zone == "us-central1-c"
    assert calls == ["us-central1-a", "us-central1-b", "us-central1-c"]
    failed_a = next(m for m in messages if "us-central1-a failed" in m)
    assert "does not have enough resources" in failed_a
    assert failed_a.endswith("trying us-central1-b next")


def test_gpu_not_offered_in_zone_moves_on() -> None:
    apply, calls = fake_apply({"us-central1-d": "not_in_zone_accelerator_type.txt"})
    assert apply_with_zone_fallback(["us-central1-d", "us-central1-a"], apply, lambda _: None) == "us-central1-a"
    assert calls == ["us-central1-d", "us-central1-a"]


def test_all_zones_without_capacity_raise_naming_every_zone() -> None:
    failures = {
        "us-central1-a": "capacity_not_enough_resources.txt",
        "europe-west4-b": "capacity_pool_exhausted_json.txt",
        "us-east1-c": "capacity_pool_exhausted_with_details.txt",
    }
    apply, calls = fake_apply(failures)
    messages: list[str] = []
    with pytest.raises(ZoneFallbackError) as caught:
        apply_with_zone_fallback(list(failures), apply, messages.append)
    assert calls == list(failures)
    text = str(caught.value)
    assert all(zone in text for zone in failures)
    assert "all 3 zone(s) tried failed" in text
    assert [a.zone for a in caught.value.attempts] == list(failures)
    assert messages[-1].endswith("no zones left to try")
    assert isinstance(caught.value, DisposableError)


@pytest.mark.parametrize("recorded_name", ["quota_t4_gpus.txt", "quota_with_capacity.txt"])
def test_quota_error_stops_without_trying_other_zones(recorded_name: str) -> None:
    apply, calls = fake_apply({"us-central1-b": "capacity_not_enough_resources.txt", "us-central1-a": recorded_name})
    with pytest.raises(ZoneFallbackError) as caught:
        apply_with_zone_fallback(["us-central1-b", "us-central1-a", "us-central1-c"], apply, lambda _: None)
    assert calls == ["us-central1-b", "us-central1-a"]
    text = str(caught.value)
    assert "failed in us-central1-a (quota error" in text
    assert "us-central1-b (zone capacity" in text
    assert "Not tried: us-central1-c" in text
    assert "NVIDIA_T4_GPUS" in text and "request more quota" in caught.value.hint


def test_other_error_stops_at_once() -> None:
    apply, calls = fake_apply({"us-central1-a": "other_permission_denied.txt"})
    with pytest.raises(ZoneFallbackError, match=r"failed in us-central1-a \(other error") as caught:
        apply_with_zone_fallback(["us-central1-a", "us-central1-b"], apply, lambda _: None)
    assert calls == ["us-central1-a"]
    assert "iam.serviceAccounts.create" in str(caught.value)


@pytest.mark.parametrize("zones", [[], [""], ["us-central1-a", " "], ["us-central1-a", "us-central1-a"]])
def test_bad_zone_lists_are_refused_before_any_apply(zones: list[str]) -> None:
    apply, calls = fake_apply({})
    with pytest.raises(ValueError):
        apply_with_zone_fallback(zones, apply, lambda _: None)
    assert calls == []


def test_placements_var_and_parse_zones() -> None:
    assert placements_var("us-central1-b", 2) == '[{ zone = "us-central1-b", count = 2 }]'
    with pytest.raises(ValueError):
        placements_var("us-central1-b", 0)
    assert parse_zones(" us-central1-a, ,us-central1-b ") == ["us-central1-a", "us-central1-b"]
