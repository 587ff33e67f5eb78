"""State that outlives the local cloud's hosts: one LXD custom storage volume per
environment, mounted on the feature-store host at Redis' data directory.

The controller makes it (as it makes the storage pool), not Terraform: the environment's
Terraform root is disposable as a whole (`destroy` and `rebuild` remove everything in its
state), while this volume must survive both. Terraform only attaches it by name. Only
`invoke destroy --include-state` / `invoke rebuild --include-state` delete it, and say so;
the janitor that removes objects Terraform does not know never looks at volumes.
"""

from __future__ import annotations

import json

from disposable.console import say
from disposable.local.lxd import ENV_LABEL, STORAGE_POOL, lxc

STATE_LABEL = "user.disposable-ml.state"


def volume_name(env: str) -> str:
    return f"dml-{env}-features-data"


def exists(env: str, pool: str = STORAGE_POOL) -> bool:
    return lxc("storage", "volume", "show", pool, f"custom/{volume_name(env)}", check=False).returncode == 0


def used_bytes(env: str, pool: str = STORAGE_POOL) -> int | None:
    """Bytes the volume holds, where the pool driver reports it (None otherwise)."""
    proc = lxc("query", f"/1.0/storage-pools/{pool}/volumes/custom/{volume_name(env)}/state", check=False)
    if proc.returncode != 0:
        return None
    usage = (json.loads(proc.stdout) or {}).get("usage") or {}
    return int(usage["used"]) if "used" in usage else None


def describe(env: str, pool: str = STORAGE_POOL) -> str:
    used = used_bytes(env, pool)
    size = f", {used / 2**20:.1f} MiB used" if used is not None else ""
    return f"LXD volume {pool}/{volume_name(env)}{size}"


def ensure(env: str, pool: str = STORAGE_POOL) -> str:
    """Create the environment's state volume if it does not exist; return its name."""
    name = volume_name(env)
    if exists(env, pool):
        say(f"state: {describe(env, pool)} kept (the feature store's data)")
        return name
    lxc("storage", "volume", "create", pool, name, f"{ENV_LABEL}={env}", f"{STATE_LABEL}=features")
    say(f"state: created {describe(env, pool)} for the feature store's data")
    return name


def delete(env: str, pool: str = STORAGE_POOL) -> bool:
    """Delete the state volume (only on --include-state). False when there was none."""
    if not exists(env, pool):
        return False
    what = describe(env, pool)
    lxc("storage", "volume", "delete", pool, volume_name(env))
    say(f"state: deleted {what} (--include-state)")
    return True
