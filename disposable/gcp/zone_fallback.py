"""Zone fallback for GCP GPU hosts: when a zone has no GPU capacity, try the next zone.

GPUs run out per zone ("stockout"). The google provider prints the GCE operation's
*message*, not its code (google/services/compute/compute_operation.go, writeOperationError:
the message, then the localized message, then the help link), so a stockout reads
"The zone '...' does not have enough resources available to fulfill the request." and often
"... is currently unavailable in the us-central1-b zone. Consider trying your request in the
us-central1-a, us-central1-f zone(s) ...". Another zone usually has capacity, and GCE may
say which: those zones are tried next. A quota error (Quota 'NVIDIA_T4_GPUS' exceeded)
is different: the limit belongs to the project and region, another zone does not help, and
a person has to ask for more quota. An API rate limit or any other error stops at once.
A create that times out ("Error waiting for instance to create: timeout while waiting for
state to become 'DONE'") is treated as a zone failure, but the provider forgets the instance
(it clears the resource id when the wait fails), while GCE may still create it: it is found
by its labels and removed before the next zone is tried.

Two layers:
- `apply_with_zone_fallback(zones, apply, say)`: the loop over zones around any `apply(zone)`;
- `fallback_apply(tf, zones, hosts, say)`: the GCP provision. Each try keeps every host
  Terraform already has (any zone) and puts only the missing hosts in the zone being tried,
  checks with a plan that no running host in another zone would be destroyed, removes
  orphans after a failure, and on a final failure says what is still running and billed.
GCP cannot be reached from the tests: they drive both layers with recorded provider output
and fake terraform/gcloud objects.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from disposable.errors import DisposableError


class ApplyFailure(enum.Enum):
    CAPACITY = "zone capacity"  # this zone has no resources right now: try another zone
    NOT_IN_ZONE = "GPU type not offered in zone"  # permanent zero capacity: try another zone
    TIMEOUT = "create timed out"  # GCE did not finish in time: remove what it left, try another zone
    QUOTA = "quota"  # a project/region limit: another zone does not help
    OTHER = "other"  # anything else: a bug, permissions, a rate limit, a bad variable...


# What the provider prints (the operation's message and localized message); the codes are
# kept for text that carries them (gcloud, API JSON) but the provider does not print them.
CAPACITY_PATTERNS = (
    re.compile(r"does not have enough resources available to fulfill the request", re.IGNORECASE),
    re.compile(r"is currently unavailable in the [a-z0-9-]+ zone", re.IGNORECASE),
    re.compile(r"\bstate:STOCKOUT\b"),
    re.compile(r"ZONE_RESOURCE_POOL_EXHAUSTED(?:_WITH_DETAILS)?"),
    re.compile(r"resource pool exhausted", re.IGNORECASE),
    re.compile(r"\bstockout\b", re.IGNORECASE),
)

NOT_IN_ZONE_PATTERNS = (
    re.compile(r"acceleratorTypes/[A-Za-z0-9-]+'? was not found"),
    re.compile(r"Invalid value for field 'resource\.guestAccelerators\[\d+\]\.acceleratorType'"),
)

TIMEOUT_PATTERNS = (re.compile(r"Error waiting for instance to create: timeout while waiting for state to become"),)

# An API rate limit is named "quota" by the API but is neither quota nor capacity.
RATE_LIMIT_PATTERNS = (re.compile(r"\brateLimitExceeded\b"), re.compile(r"\bRATE_LIMIT_EXCEEDED\b"))

QUOTA_PATTERNS = (
    re.compile(r"QUOTA_EXCEEDED"),
    re.compile(r"\bquotaExceeded\b"),
    re.compile(r"Quota '[A-Za-z0-9_]+' exceeded", re.IGNORECASE),
    re.compile(r"\bquota exceeded\b", re.IGNORECASE),
)

# "Consider trying your request in the us-central1-a, us-central1-f zone(s)"
SUGGESTED_ZONES = re.compile(r"Consider trying your request in the ([a-z0-9, -]+?) zone\(s\)")
ZONES_AVAILABLE = re.compile(r"zonesAvailable:\s*'?([a-z0-9,-]+)'?")
ZONE_NAME = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")

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
    if _matches(RATE_LIMIT_PATTERNS, block):
        return ApplyFailure.OTHER
    if _matches(QUOTA_PATTERNS, block):
        return ApplyFailure.QUOTA
    if _matches(CAPACITY_PATTERNS, block):
        return ApplyFailure.CAPACITY
    if _matches(NOT_IN_ZONE_PATTERNS, block):
        return ApplyFailure.NOT_IN_ZONE
    if _matches(TIMEOUT_PATTERNS, block):
        return ApplyFailure.TIMEOUT
    return ApplyFailure.OTHER


# Failures another zone can fix.
ZONE_FAILURES = frozenset({ApplyFailure.CAPACITY, ApplyFailure.NOT_IN_ZONE, ApplyFailure.TIMEOUT})


def classify_apply_error(output: str) -> ApplyFailure:
    """A quota error anywhere wins; a zone failure only when every error is one; else OTHER."""
    kinds = {classify_block(block) for block in error_blocks(output)}
    if ApplyFailure.QUOTA in kinds:
        return ApplyFailure.QUOTA
    if not kinds or not kinds <= ZONE_FAILURES:
        return ApplyFailure.OTHER
    for kind in (ApplyFailure.CAPACITY, ApplyFailure.TIMEOUT):
        if kind in kinds:
            return kind
    return ApplyFailure.NOT_IN_ZONE


def is_zone_capacity_error(output: str) -> bool:
    return classify_apply_error(output) is ApplyFailure.CAPACITY


def suggested_zones(output: str) -> list[str]:
    """The zones a stockout message says have capacity, in its order (none when it names none)."""
    text = " ".join(_plain(output).split())  # messages may be folded over lines
    found: list[str] = []
    for match in [*SUGGESTED_ZONES.finditer(text), *ZONES_AVAILABLE.finditer(text)]:
        for zone in re.split(r"[,\s]+", match.group(1)):
            if ZONE_NAME.match(zone) and zone not in found:
                found.append(zone)
    return found


_JSON_MESSAGE = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"')


def error_summary(output: str, limit: int = 200) -> str:
    """The most telling part of the output: a GCE "message" or line naming capacity/quota, else the first `Error:`."""
    text = _plain(output)
    messages = _JSON_MESSAGE.findall(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for patterns in (RATE_LIMIT_PATTERNS, QUOTA_PATTERNS, CAPACITY_PATTERNS, NOT_IN_ZONE_PATTERNS, TIMEOUT_PATTERNS):
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


def _region(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def _follow_suggestions(
    output: str, queue: deque[str], tried: Sequence[str], allowed_regions: set[str], say: Callable[[str], None]
) -> None:
    """Move the zones GCE suggests to the front of the queue. Zones the caller did not list
    are used only in a region of the listed zones (its subnet exists there)."""
    usable = [z for z in suggested_zones(output) if z not in tried and _region(z) in allowed_regions]
    if not usable:
        return
    for zone in reversed(usable):
        if zone in queue:
            queue.remove(zone)
        queue.appendleft(zone)
    say(f"zone fallback: GCE suggests {', '.join(usable)} (capacity there now); trying them first")


def apply_with_zone_fallback(
    zones: Sequence[str],
    apply: Callable[[str], tuple[int, str]],
    say: Callable[[str], None],
    *,
    after_failure: Callable[[ZoneAttempt], None] | None = None,
    still_billed: Callable[[], str] | None = None,
) -> str:
    """Run `apply(zone)` for each zone until one succeeds; return that zone.

    `apply` returns (exit code, combined output). A zone failure (no capacity, the GPU type
    is not offered there, a create that timed out) moves on: to the zones the stockout
    message suggests first, then the next listed one. Any other failure, or running out of
    zones, raises ZoneFallbackError naming every zone tried and why it failed.
    `after_failure(attempt)` runs after every failed zone (cleanup); `still_billed()` says,
    in the final error, what is still running.
    """
    candidates = _check_zones(zones)
    queue = deque(candidates)
    regions = {_region(z) for z in candidates}
    attempts: list[ZoneAttempt] = []
    tried: list[str] = []
    while queue:
        zone = queue.popleft()
        tried.append(zone)
        say(f"zone fallback: applying in {zone} (try {len(tried)}, {len(queue)} more zone(s) queued)")
        code, output = apply(zone)
        if code == 0:
            say(f"zone fallback: {zone} worked")
            return zone
        attempt = ZoneAttempt(zone, classify_apply_error(output), error_summary(output))
        attempts.append(attempt)
        if after_failure is not None:
            after_failure(attempt)
        if attempt.failure not in ZONE_FAILURES:
            raise _stop_error(attempt, attempts, list(queue), still_billed)
        if attempt.failure is ApplyFailure.CAPACITY:
            _follow_suggestions(output, queue, tried, regions, say)
        next_step = f"trying {queue[0]} next" if queue else "no zones left to try"
        say(f"zone fallback: {zone} failed, {attempt.failure.value} ({attempt.summary}); {next_step}")
    raise ZoneFallbackError(
        f"No zone could take the hosts; all {len(attempts)} zone(s) tried failed: {_tried(attempts)}."
        + _billed(still_billed),
        "Add more zones (other regions too; each region needs a subnet), or retry later.",
        attempts,
    )


def _billed(still_billed: Callable[[], str] | None) -> str:
    return f" {still_billed()}" if still_billed is not None else ""


def _stop_error(
    attempt: ZoneAttempt,
    attempts: Sequence[ZoneAttempt],
    untried: Sequence[str],
    still_billed: Callable[[], str] | None = None,
) -> ZoneFallbackError:
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
        f" Zones tried: {_tried(attempts)}.{skipped}" + _billed(still_billed),
        hint,
        attempts,
    )


# ------------------------------------------------------------------ placements


@dataclass(frozen=True)
class Placement:
    zone: str
    numbers: tuple[int, ...]  # host <prefix>-<zone>-<n> for each n

    def hcl(self) -> str:
        count = len(self.numbers)
        if self.numbers == tuple(range(1, count + 1)):
            return f'{{ zone = "{self.zone}", count = {count} }}'
        return f'{{ zone = "{self.zone}", count = {count}, numbers = [{", ".join(map(str, self.numbers))}] }}'


def placements_hcl(placements: Iterable[Placement]) -> str:
    """TF_VAR_placements value (HCL list of objects, terraform/modules/gpu_vm)."""
    return "[" + ", ".join(p.hcl() for p in placements) + "]"


def placements_var(zone: str, count: int) -> str:
    """TF_VAR_placements value that puts `count` hosts in `zone` (HCL list of objects)."""
    if count < 1:
        raise ValueError(f"host count must be >= 1, got {count}")
    return f'[{{ zone = "{zone}", count = {count} }}]'


def parse_zones(text: str) -> list[str]:
    """'us-central1-a, us-central1-b' -> ['us-central1-a', 'us-central1-b'] (order kept)."""
    return [z.strip() for z in text.split(",") if z.strip()]


@dataclass(frozen=True)
class Instance:
    """A GPU host as Terraform's state or gcloud knows it."""

    name: str
    zone: str
    status: str  # RUNNING, STAGING, TERMINATED, ...; "" unknown
    address: str = ""  # the state address (empty for instances outside the state)

    @property
    def number(self) -> int | None:
        """n of <prefix>-<zone>-<n>, or None for a name of another shape."""
        match = re.fullmatch(rf".+-{re.escape(self.zone)}-(\d+)", self.name)
        return int(match.group(1)) if match else None

    def describe(self) -> str:
        return f"{self.name} ({self.zone}, {self.status or 'status unknown'})"


def state_instances(resources: Iterable[Mapping[str, Any]]) -> list[Instance]:
    """The google_compute_instance resources of `terraform show -json` (Terraform.state_resources)."""
    found = []
    for res in resources:
        if res.get("type") != "google_compute_instance":
            continue
        values = res.get("values") or {}
        zone = str(values.get("zone") or "").rstrip("/").rsplit("/", 1)[-1]
        found.append(
            Instance(str(values.get("name", "")), zone, str(values.get("current_status") or ""), res["address"])
        )
    return found


def placements_for(existing: Sequence[Instance], zone: str, hosts: int) -> list[Placement]:
    """Placements for a try in `zone`: every host the state has stays where it is (any zone,
    any status: the fallback never removes a host), and the hosts missing from `hosts`
    RUNNING ones are added in `zone` with the lowest free numbers."""
    if hosts < 1:
        raise ValueError(f"host count must be >= 1, got {hosts}")
    unnamed = [i.name for i in existing if i.number is None]
    if unnamed:
        raise DisposableError(
            f"The state has hosts the zone fallback cannot keep by placement: {', '.join(unnamed)}.",
            "They are not named <prefix>-<zone>-<n>; rename nothing by hand: run `invoke provision` without --zones.",
        )
    numbers: dict[str, set[int]] = {}
    for inst in existing:
        numbers.setdefault(inst.zone, set()).add(inst.number or 0)
    running = sum(1 for i in existing if i.status == "RUNNING")
    here = numbers.setdefault(zone, set())
    candidate = 1
    for _ in range(max(0, hosts - running)):
        while candidate in here:
            candidate += 1
        here.add(candidate)
    return [Placement(z, tuple(sorted(n))) for z, n in sorted(numbers.items()) if n]


def terraform_state(tf: Any) -> list[dict[str, Any]]:
    """The managed resources in the environment's state, [{address, type, values}].

    Terraform.state_resources() reads only a local state file; the GCP roots keep their state
    in GCS, so for them this asks `terraform show -json`, which reads any backend. (Fakes in
    the tests, and local environments, answer state_resources() themselves.)"""
    from disposable.engine.terraform import Terraform

    if not isinstance(tf, Terraform) or tf.environment.is_local:
        return list(tf.state_resources())
    from disposable.console import run

    argv = [*tf.engine.argv, f"-chdir={tf.environment.stack}", "show", "-json", "-no-color"]
    result = run(argv, label="tf show", env=tf.env(), echo=False)
    if result.returncode != 0:
        raise DisposableError(f"terraform show failed (exit {result.returncode}):\n{result.output[-2000:]}")
    text = result.output
    values = (json.loads(text[text.index("{") :]) if "{" in text else {}).get("values") or {}
    found: list[dict[str, Any]] = []

    def walk(module: Mapping[str, Any]) -> None:
        for res in module.get("resources", []):
            if res.get("mode") == "managed":
                found.append({"address": res["address"], "type": res["type"], "values": res.get("values", {})})
        for child in module.get("child_modules", []):
            walk(child)

    walk(values.get("root_module") or {})
    return found


def destroyed_elsewhere(changes: Iterable[str], existing: Sequence[Instance], zone: str) -> list[Instance]:
    """Running hosts outside `zone` that a plan (Terraform.planned_changes lines,
    'ADDRESS: ACTIONS') would delete."""
    by_address = {i.address: i for i in existing if i.address}
    doomed = []
    for line in changes:
        address, _, actions = line.rpartition(": ")
        inst = by_address.get(address)
        if inst and inst.zone != zone and inst.status == "RUNNING" and actions == "delete":
            doomed.append(inst)
    return doomed


# ------------------------------------------------------------------ the GCP provision


class FallbackTerraform(Protocol):
    """What fallback_apply needs of disposable.engine.terraform.Terraform (a dataclass:
    each try is a copy with other variables)."""

    variables: Mapping[str, str]

    def apply_unchecked(self) -> Any: ...  # CommandResult: returncode, output

    def state_resources(self) -> list[dict[str, Any]]: ...

    def planned_changes(self) -> list[str]: ...


Gcloud = Callable[[Sequence[str]], str]  # gcloud ARGS -> stdout; raises DisposableError


def _default_gcloud(args: Sequence[str]) -> str:
    from disposable.gcp import janitor

    return janitor.gcloud(args)


def labelled_instances(gcloud: Gcloud, project: str, env: str) -> list[Instance]:
    """The project's instances labelled app=disposable-ml, environment=<env> (gcloud list)."""
    from disposable.gcp import janitor

    listing = json.loads(gcloud(janitor.list_command("instances", project, env)) or "[]")
    return [
        Instance(str(item.get("name", "")), janitor.zone_of(item) or "", str(item.get("status") or ""))
        for item in listing
        if isinstance(item, dict) and janitor.labels_of(item).get("app") == janitor.APP_LABEL
    ]


def delete_instance_command(inst: Instance, project: str) -> list[str]:
    return ["compute", "instances", "delete", inst.name, "--project", project, "--zone", inst.zone, "--quiet"]


@dataclass
class _Run:
    tf: Any
    hosts: int
    say: Callable[[str], None]
    gcloud: Gcloud
    project: str

    @property
    def env(self) -> str:
        return str(self.tf.environment.name)

    def existing(self) -> list[Instance]:
        return state_instances(terraform_state(self.tf))

    def apply(self, zone: str) -> tuple[int, str]:
        existing = self.existing()
        placements = placements_for(existing, zone, self.hosts)
        value = placements_hcl(placements)
        attempt = dataclasses.replace(self.tf, variables={**self.tf.variables, "placements": value})
        kept = [i.name for i in existing]
        self.say(f"zone fallback: placements {value}" + (f" (keeping {', '.join(kept)})" if kept else ""))
        doomed = destroyed_elsewhere(attempt.planned_changes(), existing, zone)
        if doomed:
            raise DisposableError(
                f"Applying in {zone} would destroy running host(s) in other zones: "
                f"{', '.join(i.describe() for i in doomed)}. Nothing was applied.",
                "The zone fallback only adds hosts; look at `invoke plan --env " + self.env + "` to see why.",
            )
        result = attempt.apply_unchecked()
        return result.returncode, result.output

    def orphans(self, zone: str | None = None) -> list[Instance]:
        """Labelled instances of this environment that the state does not know."""
        known = {i.name for i in self.existing()}
        listed = labelled_instances(self.gcloud, self.project, self.env)
        return [i for i in listed if i.name not in known and (zone is None or i.zone == zone)]

    def after_failure(self, attempt: ZoneAttempt) -> None:
        """A failed create can leave an instance outside the state (a timed-out create that
        GCE finishes later): find it by its labels in that zone and delete it."""
        if not self.project:
            self.say(f"zone fallback: project unknown, cannot look for instances left in {attempt.zone}")
            return
        try:
            leftovers = self.orphans(attempt.zone)
        except (DisposableError, ValueError) as exc:
            self.say(f"zone fallback: could not list instances in {attempt.zone} ({exc}); check for leftovers")
            return
        for inst in leftovers:
            self.say(f"zone fallback: removing {inst.describe()}, created outside the state by the failed apply")
            try:
                self.gcloud(delete_instance_command(inst, self.project))
            except DisposableError as exc:
                self.say(f"zone fallback: could not delete {inst.name}: {exc}")

    def still_billed(self) -> str:
        lines = [i.describe() for i in self.existing()]
        note = ""
        if self.project:
            try:
                lines += [f"{i.describe()} NOT in the Terraform state" for i in self.orphans()]
            except (DisposableError, ValueError) as exc:
                note = f" (gcloud could not list the project's instances: {exc})"
        else:
            note = " (project unknown: only the Terraform state was consulted)"
        running = f"Still running and billed: {'; '.join(lines)}." if lines else "No GPU host is left running."
        return (
            f"{running}{note} The network's Cloud Router and NAT stay billed as well until "
            f"`invoke destroy --env {self.env}`."
        )


def fallback_apply(
    tf: Any,
    zones: Sequence[str],
    hosts: int,
    say: Callable[[str], None],
    gcloud: Gcloud | None = None,
    project: str | None = None,
) -> str:
    """Provision `hosts` GCP hosts, trying `zones` in order (and the zones a stockout
    suggests); return the zone that worked. Hosts Terraform already has stay where they are
    and count towards `hosts` (never destroyed by a retry, checked with a plan before each
    apply); instances a failed create left outside the state are removed; the final error
    says what is still running and billed."""
    if project is None:
        from disposable.gcp.project import project_for

        project = project_for(tf.environment.name, tf.variables)
    run = _Run(tf, hosts, say, gcloud or _default_gcloud, project)
    return apply_with_zone_fallback(
        zones, run.apply, say, after_failure=run.after_failure, still_billed=run.still_billed
    )
