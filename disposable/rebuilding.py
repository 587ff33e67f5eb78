"""`invoke rebuild`: inputs -> destroy -> provision -> configure -> verify -> fingerprint, timed,
with a summary; the record (stage timings, outcome, fingerprint, tool versions) goes to the history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from disposable import configuring, provisioning
from disposable.environments import Environment
from disposable.local import bake, image
from disposable.pipeline import Stage, StageResult, run_stages, succeeded
from disposable.proof import fingerprint
from disposable.proof.toolversions import tool_versions
from disposable.proof.verify import verify


@dataclass
class RunFacts:
    """What the stages learn that the history record keeps."""

    from_image: str | None = None
    apt_lock: dict[str, Any] | None = None
    fingerprint: dict[str, Any] | None = None
    fingerprint_changes: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, env: Environment) -> dict[str, Any]:
        return {
            "from_image": self.from_image,
            "apt_lock": self.apt_lock,
            "fingerprint": self.fingerprint,
            "fingerprint_changes": self.fingerprint_changes,
            "tool_versions": tool_versions(env),
            **self.extra,
        }


def prepare_inputs(env: Environment, facts: RunFacts, frozen: bool) -> None:
    """Before anything is destroyed or created: the apt lock's packages in the store (a
    frozen run fails here when a locked version is gone), and locally the host image."""
    current = configuring.prepare_inputs(frozen)
    facts.apt_lock = current.record()
    if env.is_local:
        image.ensure_image()


def take_fingerprint(env: Environment, facts: RunFacts) -> fingerprint.Recorded:
    """Record the hosts' fingerprint and keep its hashes and differences for the history."""
    recorded = fingerprint.record(env.name, baseline=True)
    facts.fingerprint = recorded.fingerprint.summary()
    facts.fingerprint_changes = recorded.changes
    return recorded


def rebuild_stages(
    env: Environment,
    variables: Mapping[str, str],
    zones: Sequence[str],
    facts: RunFacts,
    from_image: bool = False,
    frozen: bool = False,
    include_state: bool = False,
) -> list[Stage]:
    """The stages of a rebuild; with from_image, hosts launch from the baked golden image;
    frozen: exactly the committed apt lock (or fail in the first stage); include_state:
    the feature store's data volume is deleted too (kept otherwise)."""
    chosen = dict(variables)

    def choose_image() -> None:
        if from_image:
            facts.from_image = chosen["image"] = bake.require_baked()

    return [
        ("inputs", lambda: (prepare_inputs(env, facts, frozen), choose_image())),
        ("destroy", lambda: provisioning.destroy(env, include_state=include_state)),
        ("provision", lambda: provisioning.provision(env, chosen, zones=zones)),
        ("configure", lambda: configuring.configure(env, frozen=frozen)),
        ("verify", lambda: verify(env.name)),
        ("fingerprint", lambda: take_fingerprint(env, facts)),
    ]


def rebuild(
    env: Environment,
    variables: Mapping[str, str],
    zones: Sequence[str] = (),
    from_image: bool = False,
    frozen: bool = False,
    include_state: bool = False,
) -> list[StageResult]:
    facts = RunFacts()
    stages = rebuild_stages(env, variables, zones, facts, from_image, frozen, include_state)
    return run_stages("rebuild", env.name, stages, extras=lambda: facts.record(env))


def rebuild_ok(
    env: Environment,
    variables: Mapping[str, str],
    zones: Sequence[str] = (),
    from_image: bool = False,
    frozen: bool = False,
    include_state: bool = False,
) -> bool:
    return succeeded(rebuild(env, variables, zones, from_image, frozen, include_state))
