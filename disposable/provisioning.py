"""provision / plan / destroy for one environment, and the repairs they need.

Repairs (each reported as it happens):
- a container (or profile, network) deleted outside Terraform: the lxd provider fails refresh
  with "Instance not found", so its address is removed from state before plan/apply and
  Terraform re-creates it;
- a half-destroyed environment (state gone, containers/profile/network left): the labelled
  leftovers are removed before a fresh apply, and after destroy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from disposable.console import say, warn
from disposable.engine import runlock
from disposable.engine.terraform import Terraform
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.gcp.zone_fallback import fallback_apply
from disposable.hosts import ssh
from disposable.hosts.contract import Contract, parse_outputs
from disposable.local import image, lxd, statevolume
from disposable.packages.store import PackageStore
from disposable.paths import outputs_file, state_dir
from disposable.state import models

DERIVED_VARIABLES = (
    "ssh_public_key",
    "environment",
    "apt_store_dir",
    "base_image",
    "features_volume",
    "model_store_dir",
)


def last_variables_file(env: str) -> Path:
    return state_dir(env) / "provision-vars.json"


def last_variables(env: str) -> dict[str, str]:
    """The Terraform variables of the last successful provision (what plan/drift compare with)."""
    path = last_variables_file(env)
    return dict(json.loads(path.read_text())) if path.exists() else {}


def terraform_for(
    env: Environment,
    variables: Mapping[str, str] | None = None,
    lock_timeout: str = "60s",
    need_image: bool = True,
    reuse_last: bool = False,
) -> Terraform:
    """Terraform for `env` with the derived variables (key, image, ...) set. reuse_last: start
    from the last provision's variables, so `provision --var host_count=2` stays at two hosts
    and plan/drift compare against what was applied; destroy forgets them."""
    values: dict[str, str] = {"ssh_public_key": ssh.public_key(env.name), "environment": env.name}
    if env.is_local:
        lxd.require_daemon()
        values["image"] = image.require_image() if need_image else image.image_alias()
        values["base_image"] = values["image"]  # other hosts (the load balancer): always the host image
        values["apt_store_dir"] = str(PackageStore().public_dir)
        values["features_volume"] = statevolume.volume_name(env.name)
        values["model_store_dir"] = str(models.store_dir())
    values.update(last_variables(env.name) if reuse_last else {})
    values.update(variables or {})
    return Terraform(env, values, lock_timeout=lock_timeout)


def deleted_out_of_band(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LXD objects Terraform's state holds that no longer exist (local cloud)."""
    return [
        res
        for res in resources
        if res["type"] in lxd.OBJECT_KINDS
        and not lxd.object_exists(lxd.OBJECT_KINDS[res["type"]], res["values"]["name"])
    ]


def reconcile(tf: Terraform, start_stopped: bool = True) -> None:
    """Bring state and reality back in line before Terraform plans, applies or destroys
    (local cloud only), saying what it did:
    - an object in state but deleted outside Terraform: dropped from state (re-created);
    - an object of the environment that Terraform does not know (a provision killed while
      it created it, a half-destroyed environment): removed, since hosts are disposable
      by construction and an unknown one would make every later apply/destroy fail;
    - a host in state that was stopped outside Terraform: started again."""
    if not tf.environment.is_local:
        return
    resources = tf.state_resources()
    for res in deleted_out_of_band(resources):
        kind, name = lxd.OBJECT_KINDS[res["type"]], res["values"]["name"]
        warn(
            f"LXD {kind} {name} was deleted outside Terraform; dropping {res['address']} from state so it is re-created"
        )
        tf.state_rm(res["address"])
    known = {(lxd.OBJECT_KINDS[r["type"]], r["values"]["name"]) for r in resources if r["type"] in lxd.OBJECT_KINDS}
    unknown = lxd.delete_unknown_objects(tf.environment.name, known)
    if unknown:
        what = "leftovers of a half-destroyed" if not resources else "objects Terraform does not know in the"
        warn(f"removed {what} {tf.environment.name} environment: {', '.join(unknown)}")
    started = lxd.start_stopped([name for kind, name in known if kind == "instance"]) if start_stopped else []
    if started:
        warn(f"started host(s) stopped outside Terraform: {', '.join(started)}")


def write_outputs(env: str, outputs: dict[str, object]) -> None:
    path = outputs_file(env)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(outputs, indent=2, sort_keys=True))
    os.replace(tmp, path)


HOST_RESOURCE_TYPES = ("lxd_container", "google_compute_instance")


def host_address(tf: Terraform, host: str) -> str:
    """The Terraform address of a host's instance (for -replace)."""
    for res in tf.state_resources():
        if res["type"] in HOST_RESOURCE_TYPES and res["values"].get("name") == host:
            return str(res["address"])
    raise DisposableError(f"No host named {host} in the environment's Terraform state.")


def apply(tf: Terraform, zones: Sequence[str] = (), hosts_per_zone: int = 1, replace: Sequence[str] = ()) -> None:
    """terraform apply; with `zones`, place the hosts in the first zone that has capacity;
    `replace`: hosts to destroy and create again (a rolling rebuild, one at a time)."""
    if not zones:
        tf.apply(*(f"-replace={host_address(tf, name)}" for name in replace))
        return
    if tf.environment.is_local:
        raise DisposableError("--zones is for cloud environments; the local cloud has a single zone.")

    # Hosts already running in any zone are kept; a retry never plans to destroy them.
    fallback_apply(tf, zones, hosts_per_zone, say)


def provision(
    env: Environment,
    variables: Mapping[str, str] | None = None,
    lock_timeout: str = "60s",
    zones: Sequence[str] = (),
    hosts_per_zone: int = 1,
    replace: Sequence[str] = (),
) -> Contract:
    """Create or update the hosts; `replace`: these hosts are destroyed and created again."""
    tf = terraform_for(env, variables, lock_timeout, reuse_last=True)
    say(f"Terraform engine: {tf.engine.describe()}")
    with runlock.holding(env.name, "provision", lock_timeout):
        tf.init()
        reconcile(tf)
        if env.is_local and tf.variables.get("features_count", "1") != "0":
            statevolume.ensure(env.name)  # before the host that mounts it
        apply(tf, zones, hosts_per_zone, replace)
        outputs = tf.outputs()
    contract = parse_outputs(outputs)
    write_outputs(env.name, outputs)
    chosen = {k: v for k, v in tf.variables.items() if k not in DERIVED_VARIABLES}
    last_variables_file(env.name).write_text(json.dumps(chosen, indent=2, sort_keys=True))
    ssh.wait_for_ssh(env.name, contract.hosts, project=tf.variables.get("project_id", ""))  # new keys via the API
    say(f"Provisioned {len(contract.hosts)} host(s): " + ", ".join(f"{h.name}={h.address}" for h in contract.hosts))
    return contract


def plan(env: Environment, variables: Mapping[str, str] | None = None, detailed_exitcode: bool = False) -> int:
    tf = terraform_for(env, variables, reuse_last=True)
    with runlock.holding(env.name, "plan", tf.lock_timeout):
        tf.init()
        reconcile(tf, start_stopped=False)
        return tf.plan(detailed_exitcode=detailed_exitcode)


def destroy(env: Environment, lock_timeout: str = "60s", include_state: bool = False) -> None:
    """Everything the environment's Terraform made; the state that outlives hosts (the
    feature store's data volume) only with include_state, and the output says which."""
    tf = terraform_for(env, lock_timeout=lock_timeout, need_image=False)
    with runlock.holding(env.name, "destroy", lock_timeout):
        tf.init()
        reconcile(tf, start_stopped=False)
        if env.is_local:
            # A clean shutdown first (the service drains); the provider's own stop polls in 10 s steps.
            lxd.stop_instances(lxd.environment_instances(env.name))
        tf.destroy()
        if env.is_local:
            leftovers = lxd.delete_environment_leftovers(env.name)
            if leftovers:
                warn(f"removed resources Terraform did not know about: {', '.join(leftovers)}")
    outputs_file(env.name).unlink(missing_ok=True)
    last_variables_file(env.name).unlink(missing_ok=True)
    ssh.known_hosts(env.name).unlink(missing_ok=True)
    say(f"Environment {env.name} destroyed.")
    if include_state and models.serving_file(env.name).exists():
        models.serving_file(env.name).unlink()
        say("state: forgot the model version the environment served (--include-state); the next one serves the newest")
    if env.is_local:
        if include_state:
            statevolume.delete(env.name)
        elif statevolume.exists(env.name):
            say(f"state: {statevolume.describe(env.name)} kept; `--include-state` deletes it")


def unlock(env: Environment, lock_id: str) -> None:
    tf = terraform_for(env, need_image=False)
    tf.init()
    tf.force_unlock(lock_id)
