"""Zone fallback for GCP GPU hosts: when a zone has no GPU capacity, try the next zone.

GPUs run out per zone ("stockout"): GCE then refuses the instance with
ZONE_RESOURCE_POOL_EXHAUSTED or "does not have enough resources available to fulfill the
request". Another zone usually has capacity, so trying the next one is the right move.
A quota error (QUOTA_EXCEEDED, "Quota 'NVIDIA_T4_GPUS' exceeded") is different: the limit
belongs to the project and region, another zone does not help, and a person has to ask
for more quota. Any error that is not capacity stops the fallback at once.

Pure Python, no GCP calls: `apply` is whatever runs `terraform apply` for one zone.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from disposable.errors import DisposableError


class ApplyFailure(enum.Enum):
    CAPACITY = "zone capacity"  # this zone has no resources right now: try another zone
    NOT_IN_ZONE = "GPU type not offered in zone"  # permanent zero capacity: try another zone
    QUOTA = "quota"  # a project/region limit: another zone does not help
    OTHER = "other"  # anything else: a bug, permissions, a bad variable...


CAPACITY_PATTERNS = (
    re.compile(r"ZONE_RESOURCE_POOL_EXHAUSTED(?:_WITH_DETAILS)?"),
    re.compile(r"does not have enough resources available to fulfill the request", re.IGNORECASE),
    re.compile(r"resource pool exhausted", re.IGNORECASE),
    re.compile(r"\bstockout\b", re.IGNORECASE),
)

NOT_IN_ZONE_PATTERNS = (
    re.compile(r"acceleratorTypes/[A-Za-z0-9-]+'? was not found"),
    re.compile(r"Invalid value for field 'resource\.guestAccelerators\[\d+\]\.acceleratorType'"),
)

QUOTA_PATTERNS = (
    re.compile(r"QUOTA_EXCEEDED"),
    re.compile(r"\bquotaExceeded\b"),
    re.compile(r"Quota '[A-Za-z0-9_]+' exceeded", re.IGNORECASE),
    re.compile(r"\bquota exceeded\b", re.IGNORECASE),
)

# Terraform prints each diagnostic as a box: lines prefixed with "│ ", "╷" / "╵" around it.
_BOX_PREFIX = re.compile(r"^[ \t]*[│╷╵|]?[ \t]?", re.MULTILINE)
_DIAGNOSTIC_START = re.compile(r"^(Error|Warning): ", re.MULTILINE)


def _plain(output: str) -> str:
    return _BOX_PREFIX.sub("", output)


def error_blocks(output: str) -> list[str]:
    """The `Error:` diagnostics of Terraform output (warnings dropped); the whole text when it has none."""
    text = _plain(output)
    starts = [m.start() for m in _DIAGNOSTIC_START.finditer(text)]
    if not starts:
        return [text] if text.strip() else []
    blocks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [b for b in blocks if b.startswith("Error: ")]


def _matches(patterns: Sequence[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def classify_block(block: str) -> ApplyFailure:
    if _matches(QUOTA_PATTERNS, block):
        return ApplyFailure.QUOTA
    if _matches(CAPACITY_PATTERNS, block):
        return ApplyFailure.CAPACITY
    if _matches(NOT_IN_ZONE_PATTERNS, block):
        return ApplyFailure.NOT_IN_ZONE
    return ApplyFailure.OTHER


# Failures another zone can fix.
ZONE_FAILURES = frozenset({ApplyFailure.CAPACITY, ApplyFailure.NOT_IN_ZONE})


def classify_apply_error(output: str) -> ApplyFailure:
    """A quota error anywhere wins; a zone failure only when every error is one; else OTHER."""
    kinds = {classify_block(block) for block in error_blocks(output)}
    if ApplyFailure.QUOTA in kinds:
        return ApplyFailure.QUOTA
    if not kinds or not kinds <= ZONE_FAILURES:
        return ApplyFailure.OTHER
    return ApplyFailure.CAPACITY if ApplyFailure.CAPACITY in kinds else ApplyFailure.NOT_IN_ZONE


def is_zone_capacity_error(output: str) -> bool:
    return classify_apply_error(output) is ApplyFailure.CAPACITY


_JSON_MESSAGE = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"')


def error_summary(output: str, limit: int = 200) -> str:
    """The most telling part of the output: a GCE "message" or line naming capacity/quota, else the first `Error:`."""
    text = _plain(output)
    messages = _JSON_MESSAGE.findall(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for patterns in (QUOTA_PATTERNS, CAPACITY_PATTERNS, NOT_IN_ZONE_PATTERNS):
        for candidate in [*messages, *lines]:
            if _matches(patterns, candidate):
                return _shorten(candidate, limit)
    first_error = next((line for line in lines if line.startswith("Error: ")), lines[0] if lines else "no output")
    return _shorten(first_error, limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ZoneAttempt:
    zone: str
    failure: ApplyFailure
    summary: str

    def describe(self) -> str:
        return f"{self.zone} ({self.failure.value}: {self.summary})"


class ZoneFallbackError(DisposableError):
    """Every zone failed for lack of capacity, or one failed for another reason."""

    def __init__(self, message: str, hint: str, attempts: Sequence[ZoneAttempt]) -> None:
        super().__init__(message, hint)
        self.attempts = list(attempts)


def _check_zones(zones: Sequence[str]) -> list[str]:
    cleaned = [z.strip() for z in zones]
    if not cleaned or any(not z for z in cleaned):
        raise ValueError(f"zone fallback needs a non-empty list of zone names, got {list(zones)!r}")
    duplicates = sorted({z for z in cleaned if cleaned.count(z) > 1})
    if duplicates:
        raise ValueError(f"zone fallback got duplicate zones: {', '.join(duplicates)}")
    return cleaned


def _tried(attempts: Sequence[ZoneAttempt]) -> str:
    return "; ".join(a.describe() for a in attempts)


def apply_with_zone_fallback(
    zones: Sequence[str],
    apply: Callable[[str], tuple[int, str]],
    say: Callable[[str], None],
) -> str:
    """Run `apply(zone)` for each zone in order until one succeeds; return that zone.

    `apply` returns (exit code, combined output). A zone failure (no capacity, or the GPU
    type is not offered there) moves on to the next zone; any other failure, or running
    out of zones, raises ZoneFallbackError naming every zone tried and why it failed.
    """
    candidates = _check_zones(zones)
    attempts: list[ZoneAttempt] = []
    for index, zone in enumerate(candidates):
        say(f"zone fallback: applying in {zone} (zone {index + 1} of {len(candidates)})")
        code, output = apply(zone)
        if code == 0:
            say(f"zone fallback: {zone} worked")
            return zone
        attempt = ZoneAttempt(zone, classify_apply_error(output), error_summary(output))
        attempts.append(attempt)
        if attempt.failure not in ZONE_FAILURES:
            raise _stop_error(attempt, attempts, candidates[index + 1 :])
        following = candidates[index + 1 : index + 2]
        next_step = f"trying {following[0]} next" if following else "no zones left to try"
        say(f"zone fallback: {zone} failed, {attempt.failure.value} ({attempt.summary}); {next_step}")
    raise ZoneFallbackError(
        f"No zone could take the hosts; all {len(attempts)} zone(s) tried failed: {_tried(attempts)}.",
        "Add more zones (other regions too; each region needs a subnet), or retry later.",
        attempts,
    )


def _stop_error(attempt: ZoneAttempt, attempts: Sequence[ZoneAttempt], untried: Sequence[str]) -> ZoneFallbackError:
    hint = (
        "This is a quota limit of the project and region, not a stockout: request more quota "
        "(IAM & Admin > Quotas, e.g. NVIDIA_T4_GPUS and GPUS_ALL_REGIONS) and rerun."
        if attempt.failure is ApplyFailure.QUOTA
        else "This is not a capacity problem, so other zones would fail the same way; fix the cause shown above."
    )
    skipped = f" Not tried: {', '.join(untried)}." if untried else ""
    return ZoneFallbackError(
        f"terraform apply failed in {attempt.zone} ({attempt.failure.value} error, which another zone cannot fix);"
        " stopping the zone fallback."
        f" Zones tried: {_tried(attempts)}.{skipped}",
        hint,
        attempts,
    )


def placements_var(zone: str, count: int) -> str:
    """TF_VAR_placements value that puts `count` hosts in `zone` (HCL list of objects)."""
    if count < 1:
        raise ValueError(f"host count must be >= 1, got {count}")
    return f'[{{ zone = "{zone}", count = {count} }}]'


def parse_zones(text: str) -> list[str]:
    """'us-central1-a, us-central1-b' -> ['us-central1-a', 'us-central1-b'] (order kept)."""
    return [z.strip() for z in text.split(",") if z.strip()]
