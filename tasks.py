"""invoke tasks: thin wrappers; the logic lives in the `disposable` package.

invoke --list            all tasks
invoke rebuild           destroy -> provision -> configure -> verify (local)
invoke provision --env local --var host_count=2
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from invoke import Exit, task

from disposable import checks, provisioning
from disposable.environments import get_environment
from disposable.errors import DisposableError

ENV_HELP = {"env": "environment to act on (default: local)"}


def reported(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn DisposableError into a clear message and a non-zero exit, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DisposableError as exc:
            print(f"ERROR: {exc}", file=sys.stderr, flush=True)
            raise Exit(code=1) from None

    return wrapper


def parse_vars(pairs: list[str], env: str = "local") -> dict[str, str]:
    """--var NAME=VALUE pairs, checked against the variables the environment declares."""
    from disposable.engine.tfvars import check_declared, parse_var_pairs

    values = parse_var_pairs(pairs)
    environment = get_environment(env)
    check_declared(values, environment.stack, environment.name)
    return values


def number(value, option, kind=int, minimum=None):  # type: ignore[no-untyped-def]
    from disposable.engine.tfvars import number as parse_number

    return parse_number(value, option, kind, minimum)


INCLUDE_STATE_HELP = "also delete the state that outlives the hosts (the feature store's data volume); kept otherwise"
FROZEN_HELP = (
    "install exactly the committed apt lock, or fail before anything is created (also DML_FROZEN=1); "
    "default: a lock whose versions vanished upstream is re-resolved locally and the run marked LOCK STALE"
)
ZONES_HELP = "cloud only: zones to try in order when one has no GPU capacity, e.g. us-central1-a,us-central1-b"


@task(
    help={
        **ENV_HELP,
        "var": "Terraform variable NAME=VALUE (repeatable)",
        "lock_timeout": "how long to wait for another run's state lock (e.g. 60s, 0s)",
        "zones": ZONES_HELP,
        "hosts_per_zone": "with --zones: hosts wanted in total; hosts already running in any zone are kept and count",
    },
    iterable=["var"],
)
@reported
def provision(c, env="local", var=None, lock_timeout="60s", zones="", hosts_per_zone="1"):  # type: ignore[no-untyped-def]
    """Create or update the environment's hosts (terraform init + apply), write the inventory outputs."""
    from disposable.gcp.zone_fallback import parse_zones

    provisioning.provision(
        get_environment(env),
        parse_vars(var or [], env),
        lock_timeout=lock_timeout,
        zones=parse_zones(zones),
        hosts_per_zone=int(number(hosts_per_zone, "--hosts-per-zone", int, 1)),
    )


@task(help={**ENV_HELP, "var": "Terraform variable NAME=VALUE (repeatable)"}, iterable=["var"])
@reported
def plan(c, env="local", var=None):  # type: ignore[no-untyped-def]
    """Show what provision would change (terraform plan)."""
    provisioning.plan(get_environment(env), parse_vars(var or [], env))


@task(
    help={
        **ENV_HELP,
        "check": "dry run (--check)",
        "diff": "show file diffs",
        "limit": "limit to hosts",
        "tags": "only these role tags",
        "frozen": FROZEN_HELP,
    }
)
@reported
def configure(c, env="local", check=False, diff=False, limit=None, tags=None, frozen=False):  # type: ignore[no-untyped-def]
    """Converge the hosts to the spec with Ansible (site.yml over the dynamic inventory)."""
    from disposable import configuring

    configuring.configure(get_environment(env), check=check, diff=diff, limit=limit, tags=tags, frozen=frozen)


@task(help=ENV_HELP)
@reported
def verify(c, env="local"):  # type: ignore[no-untyped-def]
    """Check every host against its spec (testinfra) and the service's health endpoint."""
    from disposable.proof.verify import verify as run_verify

    run_verify(get_environment(env).name)


@task(
    help={
        **ENV_HELP,
        "var": "Terraform variable NAME=VALUE (repeatable)",
        "zones": ZONES_HELP,
        "from_image": "launch the hosts from the golden image of `invoke bake` (configure only deploys the service)",
        "frozen": FROZEN_HELP,
        "rolling": "replace the inference hosts one at a time behind the load balancer (drain, replace, configure, "
        "verify, re-admit), the fleet serving throughout; stops at the first failure",
        "include_state": INCLUDE_STATE_HELP,
    },
    iterable=["var"],
)
@reported
def rebuild(c, env="local", var=None, zones="", from_image=False, frozen=False, rolling=False, include_state=False):  # type: ignore[no-untyped-def]
    """inputs -> destroy -> provision -> configure -> verify -> fingerprint, with per-stage timings and a summary."""
    from disposable import configuring, rebuilding
    from disposable.gcp.zone_fallback import parse_zones

    environment, variables = get_environment(env), parse_vars(var or [], env)
    frozen = configuring.frozen_requested(frozen)
    if rolling:
        from disposable.fleet.rolling import rolling_rebuild

        rolling_rebuild(environment, variables, frozen)
        return
    if not rebuilding.rebuild_ok(environment, variables, parse_zones(zones), from_image, frozen, include_state):
        raise Exit(code=1)


@task(help=ENV_HELP)
@reported
def drift(c, env="local"):  # type: ignore[no-untyped-def]
    """Read-only: terraform plan + ansible --check --diff, naming what changed. Exit 0 clean, 2 drift, 1 error."""
    from disposable.proof.drift import detect

    if not detect(get_environment(env)).clean:
        raise Exit(code=2)


@task(help=ENV_HELP)
@reported
def fingerprint(c, env="local"):  # type: ignore[no-untyped-def]
    """Record each host's canonical fingerprint and compare it with the previous one."""
    from disposable.proof.fingerprint import record

    record(get_environment(env).name)


@task(help={**ENV_HELP, "runs": "how many recent runs to show"})
@reported
def report(c, env="local", runs="20"):  # type: ignore[no-untyped-def]
    """Render the rebuild/nightly history as Markdown, HTML and a PNG of stage durations."""
    from disposable.proof.report import write_report

    write_report(get_environment(env).name, int(number(runs, "--runs", int, 1)))


@task(help={**ENV_HELP, "host": "host to bake from (default: the first host)"})
@reported
def bake(c, env="local", host=""):  # type: ignore[no-untyped-def]
    """Publish a configured host's slow layers (driver, CUDA, Python runtime) as a golden image."""
    environment = get_environment(env)
    if environment.is_local:
        from disposable.local.bake import bake as run_bake

        run_bake(environment, host)
    else:
        from disposable.gcp.bake import bake as run_gcp_bake

        run_gcp_bake(environment.name, host)


@task(
    help={
        **ENV_HELP,
        "var": "Terraform variable NAME=VALUE (repeatable)",
        "zones": ZONES_HELP + " (GCP nightly: defaults to $DML_GCP_ZONES)",
        "janitor_max_age_hours": "local: remove project containers older than this",
    },
    iterable=["var"],
)
@reported
def nightly(c, env="local", var=None, zones="", janitor_max_age_hours="12"):  # type: ignore[no-untyped-def]
    """rebuild, then destroy and the janitor whatever happened; history + Markdown report."""
    from disposable.gcp.zone_fallback import parse_zones
    from disposable.proof import nightly as nightly_mod

    ok = nightly_mod.nightly(
        get_environment(env),
        parse_vars(var or [], env),
        parse_zones(zones),
        number(janitor_max_age_hours, "--janitor-max-age-hours", float, 0),
    )
    if not ok:
        raise Exit(code=1)


@task(help={**ENV_HELP, "frozen": FROZEN_HELP})
@reported
def scale(c, count, env="local", frozen=False):  # type: ignore[no-untyped-def]
    """Grow or shrink the inference hosts behind the load balancer: new hosts enter rotation once ready,
    removed ones are drained first."""
    from disposable import configuring
    from disposable.fleet.rolling import scale as run_scale

    run_scale(get_environment(env), int(number(count, "COUNT", int, 1)), configuring.frozen_requested(frozen))


@task(
    help={
        **ENV_HELP,
        "lock_timeout": "how long to wait for another run's state lock",
        "include_state": INCLUDE_STATE_HELP,
    }
)
@reported
def destroy(c, env="local", lock_timeout="60s", include_state=False):  # type: ignore[no-untyped-def]
    """Destroy everything the environment created (and leftovers of a half-destroyed one); its state is kept."""
    provisioning.destroy(get_environment(env), lock_timeout=lock_timeout, include_state=include_state)


@task(help={**ENV_HELP, "lock_id": "the lock ID Terraform printed"})
@reported
def unlock(c, env="local", lock_id=""):  # type: ignore[no-untyped-def]
    """Release a stale Terraform state lock (only when no other run is alive)."""
    provisioning.unlock(get_environment(env), lock_id)


@task(help={**ENV_HELP, "host": "host name (default: the first host)"})
@reported
def ssh(c, host="", env="local"):  # type: ignore[no-untyped-def]
    """Open an SSH session on a host, with the environment's key and known_hosts. Extra args after --."""
    from disposable.hosts import status as status_mod

    status_mod.ssh_into(get_environment(env).name, host, list(c.config.get("remainder", []) or []))


@task(
    help={
        **ENV_HELP,
        "once": "write the current 15-minute interval and exit (configure does this after every converge)",
        "seed": "simulation seed: the same seed and interval give the same features",
    }
)
@reported
def feed(c, env="local", once=False, seed="7"):  # type: ignore[no-untyped-def]
    """Run the feature store's producer (recent rides per zone, weather) against the environment, every 15 min."""
    from disposable.hosts.inventory import load_contract
    from disposable.state.feed import feed as run_feed

    run_feed(load_contract(get_environment(env).name), once=once, seed=int(number(seed, "--seed", int, 0)))


@task(help=ENV_HELP)
@reported
def models(c, env="local"):  # type: ignore[no-untyped-def]
    """The model store's published versions, and which one the environment serves."""
    from disposable.state import deploy

    deploy.show(get_environment(env))


@task(help={**ENV_HELP, "version": "a published version (`invoke models`)"})
@reported
def deploy_model(c, version, env="local"):  # type: ignore[no-untyped-def]
    """Move every inference host to a model version, one host at a time, each a hot swap (no request refused)."""
    from disposable.state import deploy

    deploy.deploy_model(get_environment(env), version)


@task(help=ENV_HELP)
@reported
def rollback_model(c, env="local"):  # type: ignore[no-untyped-def]
    """Return every inference host to the model version the last deploy-model replaced."""
    from disposable.state import deploy

    deploy.rollback_model(get_environment(env))


@task(help=ENV_HELP)
@reported
def status(c, env="local"):  # type: ignore[no-untyped-def]
    """Show the environment's hosts, their reachability and service health."""
    from disposable.hosts import status as status_mod

    status_mod.show(get_environment(env))


@task(help={**ENV_HELP, "source": "cache, live or auto"})
@reported
def inventory(c, env="local", source="auto"):  # type: ignore[no-untyped-def]
    """Print the dynamic inventory as JSON (what Ansible sees)."""
    import json

    from disposable.hosts.inventory import build, load_contract

    print(json.dumps(build(load_contract(get_environment(env).name, source)), indent=2))


@task
@reported
def setup(c):  # type: ignore[no-untyped-def]
    """Start LXD, build the host image, prepare Terraform (what ./bootstrap.sh setup does after apt and venv)."""
    from disposable.bootstrap import setup as run_setup

    run_setup()


@task
@reported
def lint(c):  # type: ignore[no-untyped-def]
    """ruff, yamllint, ansible-lint, terraform fmt -check and validate."""
    checks.lint()


@task
@reported
def unit(c):  # type: ignore[no-untyped-def]
    """Unit tests (no containers)."""
    checks.unit()


@task
@reported
def integration(c):  # type: ignore[no-untyped-def]
    """Integration tests: real LXD containers, real Terraform, real Ansible (minutes)."""
    checks.integration()


@task(help={"scenario": "one scenario (default: every role's)"})
@reported
def molecule(c, scenario=""):  # type: ignore[no-untyped-def]
    """Molecule: converge, idempotence and verify of each role on a real LXD container."""
    checks.molecule(scenario)


@task
@reported
def test(c):  # type: ignore[no-untyped-def]
    """Everything CI runs: lint, unit tests, Molecule scenarios, then the integration tests (a real rebuild)."""
    checks.test_all()


@task(
    help={
        "quick": "shorter phases (~25 minutes on 2 cores) instead of ~45",
        "targets": "comma-separated subset of the contenders (default: all, see service/README.md)",
        "scenarios": "comma-separated subset of one_row,mix (default: both)",
        "reps": "repetitions, each contender started afresh in each (default 3; the tables need >= 3)",
    }
)
@reported
def bench(c, quick=False, targets="", scenarios="", reps="3"):  # type: ignore[no-untyped-def]
    """Open-loop benchmark: the service like-for-like against naive FastAPI, LitServe and two HTTP floors,
    its ablations, a wrk cross-check; tables with min/median/max over repetitions."""
    checks.bench(quick=quick, targets=targets, scenarios=scenarios, reps=int(number(reps, "--reps", int, 1)))


@task(
    help={
        **ENV_HELP,
        "rate": "requests per second, open loop (default 83: the article's 5,000/minute peak)",
        "seconds": "how long (default 60)",
    }
)
@reported
def load(c, env="local", rate="83", seconds="60"):  # type: ignore[no-untyped-def]
    """Open-loop load on the environment's front door (or its one host): requests, failures, p50/p99, who served."""
    from disposable.fleet import loadtest

    loadtest.run(get_environment(env).name, number(rate, "--rate", float), number(seconds, "--seconds", float))


@task(
    help={
        **ENV_HELP,
        "runs": "how many times to run the loop (each figure: min/median/max over the runs)",
        "var": "Terraform variable NAME=VALUE for both rebuilds (repeatable): the layout measured, e.g. "
        "--var lb_count=0 --var features_count=0 for the single inference host",
    },
    iterable=["var"],
)
@reported
def bench_rebuild(c, env="local", runs="3", var=None):  # type: ignore[no-untyped-def]
    """Measure the rebuild loop: rebuild, rebuild --from-image, no-change configure, verify, drift; with spread."""
    from disposable.proof.benchrebuild import run

    run(get_environment(env), int(number(runs, "--runs", int, 1)), parse_vars(var or [], env))


@task(
    help={
        "apt": "only the apt lock (locks/apt/): resolve the roles' packages inside the pinned series, print the diff",
        "gpu": "only the GPU hosts' torch lock (needs PyTorch's CUDA index; checked against the GPU matrix)",
    }
)
@reported
def lock(c, apt=False, gpu=False):  # type: ignore[no-untyped-def]
    """Regenerate a lock: the Python locks (default), the apt lock (--apt) or the GPU torch lock (--gpu)."""
    if apt:
        from disposable.packages.supply import regenerate

        regenerate()
    if gpu:
        checks.lock_gpu()
    if not (apt or gpu):
        checks.lock()
