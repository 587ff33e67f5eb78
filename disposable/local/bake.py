"""`invoke bake`: publish a configured host's slow layers as a golden image.

The slow layers are what the roles base, nvidia_driver, cuda and python_runtime install
(the driver's DKMS build alone takes minutes). The image is named after the hash of those
roles' inputs (their files, the group_vars, the service's locked requirements, the host
image recipe and the apt lock the hosts install): `dml-gpu-<hash>`. Change any input and
the name changes, so a stale image is never used by mistake; `rebuild --from-image` then says to bake again.

Local cloud: the environment's first host is copied (LXD copy, the host keeps running; a
snapshot on the btrfs pool), the
copy is generalised while stopped - the service release, its unit and config, SSH host
keys, machine-id, authorized_keys and logs are removed - and published as an LXD image.
A container launched from it regenerates its host keys and machine-id at first boot
(images/debian12/files/ssh-hostkeys.service), and `configure` only has to deploy the
service. GCP: see docs/gcp.md ("Golden image"); `gcp_commands` prints the gcloud steps.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from disposable.console import fmt_seconds, say
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.hosts.inventory import load_contract
from disposable.hosts.rolevars import inputs_hash, role_vars
from disposable.local import image, lxd
from disposable.packages import supply
from disposable.packages.pylocks import DEVICE_LOCKS
from disposable.paths import IMAGE_RECIPE_DIR, INVENTORY_DIR, REPO_ROOT

BAKED_ROLES = ["base", "nvidia_driver", "cuda", "python_runtime"]
ALIAS_PREFIX = "dml-gpu-"


def bake_inputs() -> list[Path]:
    group_vars = sorted((INVENTORY_DIR / "group_vars").glob("*.yml"))
    recipe = sorted(p for p in IMAGE_RECIPE_DIR.rglob("*") if p.is_file())
    return [*group_vars, *recipe, REPO_ROOT / "service" / "requirements.txt", DEVICE_LOCKS["cpu"].path]


def baked_alias() -> str:
    """dml-gpu-<hash of the baked roles' inputs and of the apt lock in use>."""
    roles = inputs_hash(BAKED_ROLES, bake_inputs())
    return ALIAS_PREFIX + hashlib.sha256(f"{roles}\n{supply.effective().lock.hash}\n".encode()).hexdigest()[:12]


def generalise_paths() -> list[str]:
    """What is removed from the copy before it is published (paths inside the rootfs)."""
    v = role_vars()
    name = v["inference_service_name"]
    return [
        v["inference_service_releases_dir"],
        v["inference_service_app_dir"],
        v["inference_service_model_dir"],
        v["inference_service_config_dir"],
        f"/etc/systemd/system/{name}.service",
        f"/etc/systemd/system/multi-user.target.wants/{name}.service",
        "/etc/ssh/ssh_host_*",
        "/var/lib/dbus/machine-id",
        "/home/*/.ssh/authorized_keys",
        "/var/log/journal/*",
    ]


def _generalise(rootfs: Path) -> None:
    import shutil

    for pattern in generalise_paths():
        relative = pattern.lstrip("/")
        # glob() skips dangling symlinks (the app link once its release is gone): plain paths directly
        matches = rootfs.glob(relative) if "*" in relative else [rootfs / relative]
        for path in matches:
            if not path.is_symlink() and not path.exists():
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    (rootfs / "etc" / "machine-id").write_text("")  # empty: systemd generates one at first boot


def instance_rootfs(name: str) -> Path:
    """Where a stopped instance's files are on the controller (dir and btrfs pools alike)."""
    return Path("/var/lib/lxd/storage-pools") / lxd.STORAGE_POOL / "containers" / name / "rootfs"


def bake(env: Environment, host_name: str = "") -> str:
    """Publish the slow layers of `host_name` (default: the first host); return the alias."""
    if not env.is_local:
        raise DisposableError(
            "`invoke bake` runs on the local cloud; for GCP the steps are in docs/gcp.md (Golden image).",
            "Print them with: python -m disposable.local.bake gcp-commands PROJECT ZONE INSTANCE",
        )
    lxd.require_daemon()
    alias = baked_alias()
    if lxd.image_exists(alias):
        say(f"Bake: {alias} already exists (the roles' inputs have not changed)")
        _unpack_into_pool(alias)
        return alias
    contract = load_contract(env.name)
    host = contract.host(host_name) if host_name else contract.hosts[0]
    copy = f"dml-bake-{alias.removeprefix(ALIAS_PREFIX)}"
    started = time.monotonic()
    lxd.lxc("delete", "--force", copy, check=False)
    say(f"Bake: copying {host.name} to {copy} (it keeps running)")
    lxd.lxc("copy", host.name, copy, "--instance-only", timeout=1800)
    try:
        lxd.lxc("config", "unset", copy, lxd.ENV_LABEL)  # not an environment host: no janitor/destroy target
        say(f"Bake: generalising {copy} (service, host keys, machine-id, logs removed)")
        _generalise(instance_rootfs(copy))
        say(f"Bake: publishing {copy} as {alias} (uncompressed: it is only unpacked locally)")
        lxd.lxc(
            "publish", copy, "--alias", alias, "--compression", "none",
            f"description=disposable-ml golden image: {', '.join(BAKED_ROLES)} on {image.image_alias()}",
            timeout=1800,
        )  # fmt: skip
    finally:
        lxd.lxc("delete", "--force", copy, check=False)
    _unpack_into_pool(alias)
    say(f"Bake: {alias} published in {fmt_seconds(time.monotonic() - started)}")
    for stale in lxd.list_project_images(ALIAS_PREFIX):
        if stale != alias:
            lxd.lxc("image", "delete", stale, check=False)
            say(f"Bake: removed the superseded image {stale}")
    return alias


def _unpack_into_pool(alias: str) -> None:
    """On btrfs the first launch of an image unpacks it into the pool (minutes for this one)
    and every later launch is a snapshot: pay the unpacking at bake time, once."""
    if lxd.pool_driver() != "btrfs" or lxd.image_volume_exists(alias):
        return
    say(f"Bake: unpacking {alias} into the btrfs pool once (later launches are snapshots)")
    scratch = f"dml-bake-unpack-{alias.removeprefix(ALIAS_PREFIX)}"
    lxd.lxc("init", alias, scratch, "--storage", lxd.STORAGE_POOL, timeout=1800)
    lxd.lxc("delete", "--force", scratch, check=False)


def require_baked() -> str:
    alias = baked_alias()
    if not lxd.image_exists(alias):
        raise DisposableError(
            f"No golden image {alias} for the current roles (never baked, or the roles' inputs changed).",
            "Run `invoke rebuild` then `invoke bake`, and use `invoke rebuild --from-image` afterwards.",
        )
    return alias


def gcp_commands(project: str, zone: str, instance: str) -> list[str]:
    """The GCP bake: an image from the configured VM's boot disk, in the `dml-gpu` family."""
    image_name = baked_alias()
    return [
        f"gcloud compute instances stop {instance} --project {project} --zone {zone}",
        f"gcloud compute images create {image_name} --project {project} --source-disk {instance} "
        f"--source-disk-zone {zone} --family dml-gpu --labels app=disposable-ml,managed-by=invoke-bake",
        f"gcloud compute instances start {instance} --project {project} --zone {zone}",
    ]


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 5 and sys.argv[1] == "gcp-commands":
        print("\n".join(gcp_commands(*sys.argv[2:5])))
    else:
        print("usage: python -m disposable.local.bake gcp-commands PROJECT ZONE INSTANCE", file=sys.stderr)
        sys.exit(2)
