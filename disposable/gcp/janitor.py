"""Remove what an interrupted GCP run leaked: project-labelled instances and disks older
than a maximum age (the GCP counterpart of `disposable.local.janitor`).

Selection is by labels that `terraform/modules/gpu_vm` puts on every instance and boot
disk: `app=disposable-ml`, `environment=<env>` (both also in the gcloud list filter) and
`created=YYYYMMDD-hhmmss` (UTC). A resource without `app=disposable-ml` or without a
parseable `created` label is never touched, whatever its age or name.

Networks, subnetworks, routers, Cloud NAT and firewall rules (`terraform/modules/network`,
`terraform/modules/firewall`) cannot carry labels in GCP, so this janitor does not touch
them: `terraform destroy` (`invoke destroy --env gcp`, always run by the nightly) owns them.
Neither does it touch the service account or the OS Login key.

Instances are swept before disks: deleting an instance deletes its boot disk
(auto_delete), so the disks are listed only afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from disposable.console import say
from disposable.errors import DisposableError

APP_LABEL = "disposable-ml"
CREATED_FORMAT = "%Y%m%d-%H%M%S"
# gcloud's `kind` field -> the `gcloud compute <group>` that lists and deletes it.
GROUPS = {"compute#instance": "instances", "compute#disk": "disks"}
GCLOUD_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class GcpResource:
    group: str  # "instances" or "disks" (the gcloud compute command group)
    name: str
    zone: str
    created: datetime


# --- selection (pure) ------------------------------------------------------------------


def created_at(labels: dict[str, str]) -> datetime | None:
    """The `created` label as a UTC datetime; None when absent or not YYYYMMDD-hhmmss."""
    try:
        return datetime.strptime(labels["created"], CREATED_FORMAT).replace(tzinfo=UTC)
    except (KeyError, TypeError, ValueError):
        return None


def zone_of(resource: dict[str, Any]) -> str | None:
    """The zone name: the last segment of the resource's `zone` URL (None for regional ones)."""
    zone = resource.get("zone")
    return zone.rstrip("/").rsplit("/", 1)[-1] if isinstance(zone, str) and zone else None


def labels_of(resource: dict[str, Any]) -> dict[str, str]:
    labels = resource.get("labels")
    return labels if isinstance(labels, dict) else {}


def candidate(resource: dict[str, Any]) -> GcpResource | None:
    """The resource as a GcpResource when it is ours and fully identified, else None."""
    labels = labels_of(resource)
    if labels.get("app") != APP_LABEL:
        return None  # not ours
    created = created_at(labels)
    group = GROUPS.get(resource.get("kind", ""))
    zone = zone_of(resource)
    name = resource.get("name")
    if created is None or group is None or zone is None or not isinstance(name, str):
        return None
    return GcpResource(group, name, zone, created)


def expired_gcp(resources: Iterable[dict[str, Any]], max_age: timedelta, now: datetime) -> list[GcpResource]:
    """Project-labelled resources (gcloud list JSON) created more than `max_age` before `now`."""
    found = [c for c in (candidate(r) for r in resources) if c is not None]
    return sorted((c for c in found if now - c.created > max_age), key=lambda c: (c.group, c.zone, c.name))


def unidentifiable(resources: Iterable[dict[str, Any]]) -> list[str]:
    """Names of resources labelled app=disposable-ml that the janitor cannot judge (no or a bad
    `created` label, no zone): worth a warning, since they are never removed."""
    return sorted(
        str(r.get("name")) for r in resources if labels_of(r).get("app") == APP_LABEL and candidate(r) is None
    )


# --- gcloud ----------------------------------------------------------------------------


def gcloud(args: Sequence[str]) -> str:
    """Run `gcloud ARGS`; its stdout. A missing binary or a failure is a DisposableError."""
    if shutil.which("gcloud") is None:
        raise DisposableError(
            "The GCP janitor needs the `gcloud` CLI, which is not installed here.",
            "Install the Google Cloud SDK (https://cloud.google.com/sdk/docs/install) and log in, "
            "or run the janitor from the nightly workflow, which has it.",
        )
    proc = subprocess.run(
        ["gcloud", *args], capture_output=True, text=True, timeout=GCLOUD_TIMEOUT_SECONDS, check=False
    )
    if proc.returncode != 0:
        raise DisposableError(
            f"gcloud {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def list_command(group: str, project: str, env: str) -> list[str]:
    return [
        "compute",
        group,
        "list",
        "--project",
        project,
        f"--filter=labels.app={APP_LABEL} AND labels.environment={env}",
        "--format=json",
    ]


def delete_command(resource: GcpResource, project: str) -> list[str]:
    return [
        "compute",
        resource.group,
        "delete",
        resource.name,
        "--project",
        project,
        "--zone",
        resource.zone,
        "--quiet",
    ]


def list_resources(group: str, project: str, env: str) -> list[dict[str, Any]]:
    output = gcloud(list_command(group, project, env))
    try:
        resources = json.loads(output or "[]")
    except json.JSONDecodeError as exc:
        raise DisposableError(f"gcloud compute {group} list did not print JSON: {exc}") from exc
    if not isinstance(resources, list):
        raise DisposableError(f"gcloud compute {group} list printed {type(resources).__name__}, not a JSON list")
    return resources


def sweep_group(
    group: str, project: str, env: str, max_age: timedelta, now: datetime, dry_run: bool
) -> tuple[list[GcpResource], list[str]]:
    """List one group and delete its expired resources; (selected, failure messages)."""
    resources = list_resources(group, project, env)
    for name in unidentifiable(resources):
        say(f"Janitor: WARNING: {group[:-1]} {name} is labelled app={APP_LABEL} but has no usable created label/zone")
    victims = expired_gcp(resources, max_age, now)
    failures: list[str] = []
    for victim in victims:
        if dry_run:
            say(f"Janitor (dry run): would run: gcloud {' '.join(delete_command(victim, project))}")
            continue
        try:
            gcloud(delete_command(victim, project))
        except DisposableError as exc:
            failures.append(str(exc))
    return victims, failures


def sweep_gcp(
    project: str, env: str, max_age_hours: float, dry_run: bool = False, now: datetime | None = None
) -> list[GcpResource]:
    """Delete `env`'s project-labelled instances, then disks, older than `max_age_hours` in
    `project` (only print the commands with `dry_run`); `now` defaults to the current time.
    Returns what was selected; raises a DisposableError naming every deletion that failed,
    after trying them all."""
    max_age = timedelta(hours=max_age_hours)
    now = now or datetime.now(UTC)
    selected: list[GcpResource] = []
    failures: list[str] = []
    for group in ("instances", "disks"):
        victims, failed = sweep_group(group, project, env, max_age, now, dry_run)
        selected += victims
        failures += failed
    names = ", ".join(f"{v.group[:-1]} {v.zone}/{v.name}" for v in selected)
    verb = "would remove" if dry_run else "removed"
    say(
        f"Janitor ({project}, {env}): {verb} {len(selected) - len(failures)} resource(s) older than "
        f"{max_age_hours:g} h" + (f": {names}" if names else "")
    )
    if failures:
        raise DisposableError(
            f"The GCP janitor could not delete {len(failures)} resource(s):\n" + "\n".join(failures),
            "Check them in the console (Compute Engine); a disk still attached to an instance cannot be deleted.",
        )
    return selected
