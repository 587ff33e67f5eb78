"""The GCP golden image: `invoke bake --env gcp` (once wired, see docs/gcp.md).

An image is made from a configured GCP host's boot disk, named like the local bake after the
hash of the baked roles' inputs (`dml-gpu-<hash>`, disposable.local.bake.baked_alias) and
published in the image family `dml-gpu`, which the fleet root resolves to the newest image
*name* (terraform/environments/gcp_fleet). The host is stopped for a consistent disk and
started again whatever happens. An image of that name that already exists is reused: the
roles' inputs have not changed.

gcloud is injected (`gcloud(args) -> stdout`, raising DisposableError), so the unit tests run
it against a fake; no GCP is reachable from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from disposable.errors import DisposableError
from disposable.hosts.contract import Contract

FAMILY = "dml-gpu"
Gcloud = Callable[[Sequence[str]], str]


def image_exists(gcloud: Gcloud, project: str, name: str) -> bool:
    try:
        return bool(gcloud(["compute", "images", "describe", name, "--project", project, "--format=value(name)"]))
    except DisposableError:
        return False


def bake_commands(project: str, zone: str, instance: str, image: str) -> list[list[str]]:
    """stop, create the image in the family, start (gcloud argv without `gcloud`)."""
    where = ["--project", project, "--zone", zone]
    return [
        ["compute", "instances", "stop", instance, *where],
        [
            "compute",
            "images",
            "create",
            image,
            "--project",
            project,
            "--source-disk",
            instance,
            "--source-disk-zone",
            zone,
            "--family",
            FAMILY,
            "--labels",
            "app=disposable-ml,managed-by=invoke-bake",
        ],
        ["compute", "instances", "start", instance, *where],
    ]


def bake_gcp(
    contract: Contract,
    project: str,
    image: str,
    gcloud: Gcloud,
    say: Callable[[str], None],
    host_name: str = "",
) -> str:
    """Publish `image` in family dml-gpu from a host's boot disk (default: the first host);
    return the image name. The host is started again even when the image fails."""
    if not project:
        raise DisposableError(
            f"The GCP bake does not know the project of {contract.environment}.",
            "Provision first (its outputs name the project), or set project_id in terraform.tfvars.",
        )
    host = contract.host(host_name) if host_name else contract.hosts[0]
    if host.zone == "local":
        raise DisposableError(f"{host.name} is not a GCP host; `invoke bake --env local` bakes the local cloud.")
    if image_exists(gcloud, project, image):
        say(f"Bake: {image} already exists in {project} (the roles' inputs have not changed)")
        return image
    stop, create, start = bake_commands(project, host.zone, host.name, image)
    say(f"Bake: stopping {host.name} ({host.zone}) for a consistent boot disk")
    gcloud(stop)
    try:
        say(f"Bake: creating {image} in family {FAMILY} from {host.name}'s boot disk")
        gcloud(create)
    finally:
        say(f"Bake: starting {host.name} again")
        gcloud(start)
    say(f"Bake: {image} published; the fleet root picks it up at its next plan (family {FAMILY})")
    return image


def bake(env_name: str, host_name: str = "", gcloud: Gcloud | None = None) -> str:
    """`invoke bake --env gcp`: the environment's contract, project and the bake hash."""
    from disposable.console import say
    from disposable.gcp import janitor
    from disposable.gcp.project import project_for
    from disposable.hosts.inventory import load_contract
    from disposable.local.bake import baked_alias

    contract = load_contract(env_name)
    return bake_gcp(contract, project_for(env_name), baked_alias(), gcloud or janitor.gcloud, say, host_name)
