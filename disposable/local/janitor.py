"""Remove what an interrupted run leaked: project-labelled local containers older than a
maximum age. Only containers carrying the project's environment label are considered;
nothing unlabelled is ever touched."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from disposable.console import say
from disposable.local import lxd


def expired(instances: Iterable[dict[str, Any]], max_age: timedelta, now: datetime) -> list[str]:
    """Names of labelled instances created more than `max_age` before `now` (lxc list JSON)."""
    names = []
    for instance in instances:
        if not instance.get("config", {}).get(lxd.ENV_LABEL):
            continue  # not ours
        created = datetime.fromisoformat(instance["created_at"].replace("Z", "+00:00"))
        if now - created > max_age:
            names.append(instance["name"])
    return sorted(names)


def sweep_local(max_age_hours: float) -> list[str]:
    instances = json.loads(lxd.lxc("list", "--format=json").stdout)
    victims = expired(instances, timedelta(hours=max_age_hours), datetime.now(UTC))
    for name in victims:
        lxd.lxc("delete", "--force", name)
    say(
        f"Janitor: removed {len(victims)} project container(s) older than {max_age_hours:g} h"
        + (f": {', '.join(victims)}" if victims else "")
    )
    return victims
