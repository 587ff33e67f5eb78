"""`invoke rebuild`: destroy -> provision -> configure -> verify, timed, with a summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from disposable import configuring, provisioning
from disposable.environments import Environment
from disposable.pipeline import StageResult, run_stages, succeeded
from disposable.verify import verify


def rebuild_stages(env: Environment, variables: Mapping[str, str], zones: Sequence[str] = ()) -> list[StageResult]:
    return run_stages(
        "rebuild",
        env.name,
        [
            ("destroy", lambda: provisioning.destroy(env)),
            ("provision", lambda: provisioning.provision(env, variables, zones=zones)),
            ("configure", lambda: configuring.configure(env)),
            ("verify", lambda: verify(env.name)),
        ],
    )


def rebuild(env: Environment, variables: Mapping[str, str], zones: Sequence[str] = ()) -> bool:
    return succeeded(rebuild_stages(env, variables, zones))
