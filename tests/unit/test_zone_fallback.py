"""Zone fallback: which apply errors move on to the next zone, and the driver's behaviour.

The errors are real GCE/provider texts (tests/unit/data/gcp_errors/README.md says where each
comes from): the google provider prints the operation's message, not its code. GCP itself
cannot be reached from here: `apply` is replaced by recorded outcomes.
"""

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
    suggested_zones,
)

ERRORS = Path(__file__).parent / "data" / "gcp_errors"
EXPECTED_BY_PREFIX = {
    "capacity": ApplyFailure.CAPACITY,
    "not_in_zone": ApplyFailure.NOT_IN_ZONE,
    "timeout": ApplyFailure.TIMEOUT,
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


def test_every_recorded_error_names_its_source() -> None:
    readme = (ERRORS / "README.md").read_text()
    for path in RECORDED:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{path.name}` |")), "")
        assert "https://github.com/" in row, f"{path.name}: no source in tests/unit/data/gcp_errors/README.md"


def test_provider_output_carries_no_error_codes() -> None:
    # The provider prints messages; a fixture with a bare GCE code was made up.
    for path in RECORDED:
        assert "ZONE_RESOURCE_POOL_EXHAUSTED" not in path.read_text(), path.name


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_recorded_error_is_classified_by_its_file_name(path: Path) -> None:
    assert classify_apply_error(path.read_text()) is expected_for(path)


@pytest.mark.parametrize(
    ("text", "capacity"),
    [
        ("Error: ZONE_RESOURCE_POOL_EXHAUSTED", True),
        ("Error: ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", True),
        ("Error: the zone does NOT have enough resources available to fulfill the request.", True),
        (
            "Error: A n1-standard-4 VM instance with 1 nvidia-tesla-t4 accelerator(s) is currently unavailable in the "
            "us-central1-b zone.",
            True,
        ),  # fmt: skip
        ("Error: QUOTA_EXCEEDED", False),
        ("Error: Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 0.0 in region us-central1.", False),
        ("Error: googleapi: Error 403: Quota exceeded for quota metric 'Queries', rateLimitExceeded", False),
        ("Error: Error 400: Invalid value for field 'resource.machineType'", False),
        ("", False),
    ],
)
def test_bare_messages(text: str, capacity: bool) -> None:
    assert is_zone_capacity_error(text) is capacity


def test_a_rate_limit_is_not_a_quota_to_raise() -> None:
    # "Quota exceeded for quota group 'ReadGroup'" is an API rate limit: stop, but not with
    # the advice to request GPU quota.
    assert classify_apply_error(recorded("other_rate_limit_read_requests.txt")) is ApplyFailure.OTHER


def test_quota_wins_over_capacity_in_the_same_apply() -> None:
    assert classify_apply_error(recorded("quota_with_capacity.txt")) is ApplyFailure.QUOTA


def test_capacity_plus_an_unrelated_error_is_not_capacity() -> None:
    # Another zone would still hit the missing permission: stop instead of trying every zone.
    assert classify_apply_error(recorded("other_capacity_plus_permission.txt")) is ApplyFailure.OTHER


def test_the_three_part_provider_message_is_one_error() -> None:
    blocks = error_blocks(recorded("capacity_t4_suggests_zones.txt"))
    assert len(blocks) == 1
    assert "Consider trying your request in the us-central1-a, us-central1-f zone(s)" in blocks[0]
    assert blocks[0].rstrip().endswith('resource "google_compute_instance" "host" {')


def test_suggested_zones_come_from_the_localized_message() -> None:
    assert suggested_zones(recorded("capacity_t4_suggests_zones.txt")) == ["us-central1-a", "us-central1-f"]
    # The message may be folded over lines (gcloud YAML), or name no zone at all.
    folded = "Consider trying your request in the us-central1-b,\n      us-central1-a zone(s), which currently has"
    assert suggested_zones(folded) == ["us-central1-b", "us-central1-a"]
    assert suggested_zones(recorded("capacity_not_supported_in_zone.txt")) == []
    assert suggested_zones(recorded("capacity_forseti_us_west1_c.txt")) == []


def test_summary_is_the_telling_line() -> None:
    summary = error_summary(recorded("quota_cpus_per_vm_family.txt"))
    assert summary.startswith("Error: Error waiting for instance to create: Quota 'CPUS_PER_VM_FAMILY' exceeded")
    assert "│" not in error_summary(recorded("capacity_t4_suggests_zones.txt"))
    assert len(error_summary("Error: " + "x" * 500, limit=50)) == 50
    assert "timeout while waiting" in error_summary(recorded("timeout_instance_create.txt"))


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
        {"us-central1-a": "capacity_two_hosts_one_created.txt", "us-central1-c": "capacity_forseti_us_west1_c.txt"}
    )
    messages: list[str] = []
    zone = apply_with_zone_fallback(["us-central1-a", "us-central1-c", "us-central1-f"], apply, messages.append)
    assert zone == "us-central1-f"
    assert calls == ["us-central1-a", "us-central1-c", "us-central1-f"]
    failed_a = next(m for m in messages if "us-central1-a failed" in m)
    assert "does not have enough resources" in failed_a
    assert failed_a.endswith("trying us-central1-c next")


def test_the_zones_a_stockout_suggests_are_tried_first() -> None:
    # GCE said us-central1-b is out and us-central1-a / -f have capacity: -f jumps ahead of
    # -c, and -a (not listed, same region) is used as well.
    apply, calls = fake_apply(
        {"us-central1-b": "capacity_t4_suggests_zones.txt", "us-central1-a": "capacity_forseti_us_west1_c.txt"}
    )
    messages: list[str] = []
    zone = apply_with_zone_fallback(["us-central1-b", "us-central1-c", "us-central1-f"], apply, messages.append)
    assert calls == ["us-central1-b", "us-central1-a", "us-central1-f"]
    assert zone == "us-central1-f"
    assert "GCE suggests us-central1-a, us-central1-f" in "\n".join(messages)


def test_suggested_zones_of_other_regions_are_not_used() -> None:
    # Only regions of the listed zones have a subnet: a suggestion elsewhere is ignored.
    apply, calls = fake_apply({"us-central1-b": "capacity_t4_suggests_zones.txt"})
    assert apply_with_zone_fallback(["us-central1-b", "europe-west4-b"], apply, lambda _: None) == "us-central1-a"
    apply, calls = fake_apply({"europe-west4-a": "capacity_t4_suggests_zones.txt"})
    assert apply_with_zone_fallback(["europe-west4-a", "europe-west4-b"], apply, lambda _: None) == "europe-west4-b"
    assert calls == ["europe-west4-a", "europe-west4-b"]


def test_gpu_not_offered_in_zone_moves_on() -> None:
    apply, calls = fake_apply({"us-central1-d": "not_in_zone_accelerator_not_found.txt"})
    assert apply_with_zone_fallback(["us-central1-d", "us-central1-a"], apply, lambda _: None) == "us-central1-a"
    assert calls == ["us-central1-d", "us-central1-a"]


def test_a_timed_out_create_is_cleaned_up_then_the_next_zone_is_tried() -> None:
    apply, calls = fake_apply({"us-central1-c": "timeout_instance_create.txt"})
    cleaned: list[tuple[str, ApplyFailure]] = []
    zone = apply_with_zone_fallback(
        ["us-central1-c", "us-central1-a"], apply, lambda _: None, after_failure=lambda a: cleaned.append(
            (a.zone, a.failure)
        )
    )  # fmt: skip
    assert zone == "us-central1-a"
    assert cleaned == [("us-central1-c", ApplyFailure.TIMEOUT)]


def test_all_zones_without_capacity_raise_naming_every_zone_and_what_is_billed() -> None:
    failures = {
        "us-central1-a": "capacity_two_hosts_one_created.txt",
        "europe-west4-b": "capacity_forseti_us_west1_c.txt",
        "us-east1-c": "capacity_not_supported_in_zone.txt",
    }
    apply, calls = fake_apply(failures)
    messages: list[str] = []
    with pytest.raises(ZoneFallbackError) as caught:
        apply_with_zone_fallback(
            list(failures), apply, messages.append, still_billed=lambda: "Still running and billed: dml-gcp-a-1."
        )
    assert calls == list(failures)
    text = str(caught.value)
    assert all(zone in text for zone in failures)
    assert "all 3 zone(s) tried failed" in text
    assert "Still running and billed: dml-gcp-a-1." in text
    assert [a.zone for a in caught.value.attempts] == list(failures)
    assert messages[-1].endswith("no zones left to try")
    assert isinstance(caught.value, DisposableError)


@pytest.mark.parametrize("recorded_name", ["quota_cpus_per_vm_family.txt", "quota_with_capacity.txt"])
def test_quota_error_stops_without_trying_other_zones(recorded_name: str) -> None:
    apply, calls = fake_apply({"us-central1-b": "capacity_forseti_us_west1_c.txt", "us-central1-a": recorded_name})
    with pytest.raises(ZoneFallbackError) as caught:
        apply_with_zone_fallback(["us-central1-b", "us-central1-a", "us-central1-c"], apply, lambda _: None)
    assert calls == ["us-central1-b", "us-central1-a"]
    text = str(caught.value)
    assert "failed in us-central1-a (quota error" in text
    assert "us-central1-b (zone capacity" in text
    assert "Not tried: us-central1-c" in text
    assert "CPUS_PER_VM_FAMILY" in text and "request more quota" in caught.value.hint


def test_other_error_stops_at_once() -> None:
    apply, calls = fake_apply({"us-central1-a": "other_permission_zones_get.txt"})
    with pytest.raises(ZoneFallbackError, match=r"failed in us-central1-a \(other error") as caught:
        apply_with_zone_fallback(["us-central1-a", "us-central1-b"], apply, lambda _: None)
    assert calls == ["us-central1-a"]
    assert "compute.zones.get" in str(caught.value)


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
