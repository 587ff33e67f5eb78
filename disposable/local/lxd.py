"""The local cloud's daemon: start it (PID 1 may not be systemd), initialise it, query it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from disposable.console import say, warn
from disposable.errors import DisposableError

STORAGE_POOL = "disposable"
# What lxc says of an object that does not exist (and only then).
NOT_FOUND = re.compile(r"^Error: (?:[A-Za-z ]+: )?(?:[A-Za-z ]+ )?not found$", re.MULTILINE)
POOL_SIZE = os.environ.get("DML_POOL_SIZE", "60GiB")  # sparse: only what is used takes disk
ENV_LABEL = "user.disposable-ml.environment"
LXD_LOG = Path("/var/log/lxd/lxd.log")


def lxc(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    if shutil.which("lxc") is None:
        raise DisposableError(
            "The `lxc` client is not installed.", "Run ./bootstrap.sh setup (installs lxd and lxd-client)."
        )
    proc = subprocess.run(["lxc", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise DisposableError(f"lxc {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def daemon_running() -> bool:
    if shutil.which("lxc") is None:
        return False
    try:
        return lxc("query", "/1.0", check=False, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def require_daemon() -> None:
    if shutil.which("lxc") is None:
        raise DisposableError(
            "LXD is not installed on this machine (no `lxc` command).",
            "Run ./bootstrap.sh setup: it installs LXD from Debian and starts it.",
        )
    if not daemon_running():
        raise DisposableError(
            "The LXD daemon is not running (or this user may not talk to it).",
            "Run ./bootstrap.sh setup to start it, or run as root / a member of the lxd group.",
        )


def start_daemon(timeout: int = 60) -> None:
    """Start lxd without systemd when nothing is serving; reuse a running daemon."""
    if daemon_running():
        say("LXD daemon: already running, reusing it")
        return
    lxd_bin = shutil.which("lxd") or "/usr/bin/lxd"
    if not os.path.exists(lxd_bin):
        raise DisposableError("LXD is not installed.", "Run ./bootstrap.sh setup.")
    if (
        _systemd_is_pid1()
        and subprocess.run(
            ["systemctl", "start", "lxd.socket", "lxd.service"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        say("LXD daemon: started with systemd")
    else:
        LXD_LOG.parent.mkdir(parents=True, exist_ok=True)
        with open(os.devnull, "rb") as devnull, open(LXD_LOG.with_suffix(".stdout"), "ab") as log:
            subprocess.Popen(
                [lxd_bin, "--group", "lxd", f"--logfile={LXD_LOG}"],
                stdin=devnull,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        say("LXD daemon: started in the background (no systemd)")
    proc = subprocess.run([lxd_bin, "waitready", f"--timeout={timeout}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise DisposableError(
            f"LXD did not become ready within {timeout}s: {proc.stderr.strip()}",
            f"Look at {LXD_LOG}; a stale /var/lib/lxd/unix.socket or another lxd may be in the way.",
        )


def _systemd_is_pid1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def btrfs_usable() -> bool:
    """Can LXD make a loop-file btrfs pool here? (kernel support + mkfs.btrfs from btrfs-progs)"""
    try:
        kernel = "btrfs" in Path("/proc/filesystems").read_text()
    except OSError:
        kernel = False
    return kernel and shutil.which("mkfs.btrfs") is not None


def ensure_storage_pool(name: str = STORAGE_POOL) -> None:
    """Create the project's own pool: btrfs on a sparse loop file where the kernel supports
    it (launching from an image is a snapshot and deleting a host is instant, where a dir pool
    unpacks and removes every file: minutes for the 8 GB GPU image), dir otherwise. An
    existing pool of that name is left as it is, whatever its driver."""
    if lxc("storage", "show", name, check=False).returncode == 0:
        driver = pool_driver(name)
        if driver != "btrfs" and btrfs_usable():
            say(
                f"LXD: storage pool {name!r} uses {driver}; btrfs would make launches and deletes instant "
                f"(with no instance on it: `lxc storage delete {name}` and rerun setup)"
            )
        return
    if btrfs_usable():
        lxc("storage", "create", name, "btrfs", f"size={POOL_SIZE}")
        say(f"LXD: created storage pool {name!r} (btrfs on a sparse {POOL_SIZE} loop file)")
        return
    lxc("storage", "create", name, "dir")
    say(f"LXD: created storage pool {name!r} (dir: no btrfs support in this kernel)")


def pool_driver(name: str = STORAGE_POOL) -> str:
    info = json.loads(lxc("query", f"/1.0/storage-pools/{name}").stdout)
    return str(info.get("driver", ""))


def image_exists(alias: str) -> bool:
    return lxc("image", "show", f"local:{alias}", check=False).returncode == 0


def import_image(meta: Path, rootfs: Path, alias: str) -> None:
    lxc("image", "import", str(meta), str(rootfs), f"--alias={alias}", timeout=600)


def list_project_images(prefix: str) -> list[str]:
    images = json.loads(lxc("image", "list", "--format=json").stdout)
    return [a["name"] for img in images for a in img.get("aliases", []) if a["name"].startswith(prefix)]


def environment_instances(env: str) -> list[str]:
    """Names of the containers labelled as belonging to `env`."""
    instances = json.loads(lxc("list", "--format=json").stdout)
    return sorted(i["name"] for i in instances if i.get("config", {}).get(ENV_LABEL) == env)


# Terraform resource type -> the `lxc` object kind it manages.
OBJECT_KINDS = {"lxd_container": "instance", "lxd_profile": "profile", "lxd_network": "network"}


def image_volume_exists(alias: str, pool: str = STORAGE_POOL) -> bool:
    """Has the image been unpacked into the pool already (a later launch is a snapshot)?"""
    fingerprint = json.loads(lxc("query", f"/1.0/images/aliases/{alias}").stdout)["target"]
    volumes = lxc("storage", "volume", "list", pool, "--format=csv", check=False).stdout
    return any(line.startswith(f"image,{fingerprint},") for line in volumes.splitlines())


def stop_instances(names: list[str], timeout: int = 60) -> None:
    """Shut instances down cleanly (systemd stops every service, which drains); already
    stopped ones are fine."""
    if names:
        lxc("stop", f"--timeout={timeout}", *names, check=False, timeout=timeout + 30)


def object_exists(kind: str, name: str) -> bool:
    """Does the LXD instance/profile/network exist? Only a definite "not found" is False:
    any other failure (daemon restarting, refused, timed out) is an error, never read as
    "deleted" (which would make the caller drop live resources from Terraform's state)."""
    args = ["info", name] if kind == "instance" else [kind, "show", name]
    try:
        proc = lxc(*args, check=False, timeout=60)
    except subprocess.TimeoutExpired:
        raise DisposableError(
            f"Cannot tell whether LXD {kind} {name} exists: `lxc {' '.join(args)}` timed out.",
            "Check the LXD daemon (`lxc list`); nothing was changed.",
        ) from None
    if proc.returncode == 0:
        return True
    message = (proc.stderr or proc.stdout).strip()
    if NOT_FOUND.search(message):
        return False
    raise DisposableError(
        f"Cannot tell whether LXD {kind} {name} exists: `lxc {' '.join(args)}` failed: {message}",
        "Check the LXD daemon (`lxc list`, ./bootstrap.sh setup starts it); nothing was changed.",
    )


def delete_environment_leftovers(env: str) -> list[str]:
    """Remove everything of `env`: labelled containers, its profile, its network."""
    return delete_unknown_objects(env, set())


def wait_for_operations(names: list[str], timeout: float = 120) -> None:
    """Until LXD has no running operation on these instances: a client killed mid-create
    (a killed `terraform apply`) leaves LXD finishing the launch on its own."""
    deadline = time.monotonic() + timeout
    wanted = {f"/1.0/instances/{name}" for name in names}
    while time.monotonic() < deadline:
        answer = lxc("query", "/1.0/operations?recursion=1", check=False)
        operations = json.loads(answer.stdout or "{}") if answer.returncode == 0 else {}
        running = [
            op
            for op in operations.get("running", []) or []
            if wanted & set((op.get("resources") or {}).get("instances", []) or [])
        ]
        if not running:
            return
        time.sleep(1)
    raise DisposableError(
        f"LXD is still working on {', '.join(names)} after {timeout:.0f}s.", "Check `lxc operation list`."
    )


def delete_unknown_objects(env: str, known: set[tuple[str, str]]) -> list[str]:
    """Remove the objects of `env` that are not in `known` ((kind, name) pairs Terraform's
    state holds): labelled containers first, then its labelled profiles, then its
    `dml-<env>` network. Only objects carrying the environment's label or its exact
    `dml-<env>` names are touched."""
    removed = []
    unknown = [name for name in environment_instances(env) if ("instance", name) not in known]
    wait_for_operations(unknown)
    for name in unknown:
        lxc("delete", "--force", name)
        removed.append(f"container {name}")
    for name in environment_profiles(env):
        if ("profile", name) not in known:
            lxc("profile", "delete", name)
            removed.append(f"profile {name}")
    network = f"dml-{env}"
    if ("network", network) not in known and object_exists("network", network):
        lxc("network", "delete", network)
        removed.append(f"network {network}")
    return removed


def environment_profiles(env: str) -> list[str]:
    """The environment's profiles: labelled, or (made before profiles were labelled) named dml-<env>."""
    profiles = json.loads(lxc("profile", "list", "--format=json").stdout)
    return sorted(p["name"] for p in profiles if p.get("config", {}).get(ENV_LABEL) == env or p["name"] == f"dml-{env}")


def instance_status(name: str) -> str:
    """Running, Stopped, Frozen... ('' when it does not exist)."""
    proc = lxc("query", f"/1.0/instances/{name}", check=False)
    return str(json.loads(proc.stdout).get("status", "")) if proc.returncode == 0 else ""


def start_stopped(names: list[str]) -> list[str]:
    """Start the named instances that exist but are not running; return those started."""
    stopped = [n for n in sorted(names) if instance_status(n) not in ("", "Running")]
    for name in stopped:
        lxc("start", name, timeout=120)
    return stopped


def wait_for_address(name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(lxc("query", f"/1.0/instances/{name}/state").stdout)
        for iface in (state.get("network") or {}).values():
            if any(a["family"] == "inet" and a["scope"] == "global" for a in iface["addresses"]):
                return
        time.sleep(1)
    raise DisposableError(f"Container {name} got no IPv4 address within {timeout:.0f}s.")


# Where LXD puts each container's cgroup (LXD >= 4.0 names it lxc.payload.<name>).
CGROUP_ROOT = Path("/sys/fs/cgroup")


def set_cpu_quota(name: str, cpus: float | None) -> bool:
    """A hard CPU cap of `cpus` CPUs for a running container (None: no cap), written to its
    cgroup (v1 cpu.cfs_quota_us, v2 cpu.max). LXD's `limits.cpu.allowance` holds either a
    soft share or a hard cap, never both; this adds the cap next to the share LXD set.
    LXD rewrites the quota whenever it applies the container's CPU limits (an `unset` of
    the allowance puts "no cap" back). False, after a warning, when the cgroup is not where
    LXD puts it: the container then runs uncapped."""
    v1, v2 = CGROUP_ROOT / "cpu" / f"lxc.payload.{name}", CGROUP_ROOT / f"lxc.payload.{name}"
    if (v1 / "cpu.cfs_quota_us").exists():
        period = int((v1 / "cpu.cfs_period_us").read_text())
        (v1 / "cpu.cfs_quota_us").write_text("-1" if cpus is None else str(int(cpus * period)))
        return True
    if (v2 / "cpu.max").exists():
        period = int((v2 / "cpu.max").read_text().split()[1])
        (v2 / "cpu.max").write_text(f"{'max' if cpus is None else int(cpus * period)} {period}")
        return True
    warn(f"no CPU cgroup for container {name} at {v1} or {v2}: it runs without the CPU cap of {cpus} CPUs")
    return False
