"""`invoke nightly`: the destroy-and-rebuild proof, run on a schedule.

rebuild with --frozen (inputs -> destroy -> provision -> configure -> verify), a drift check that must be clean, the
fingerprint compared with the previous run (the same commit must give identical hosts),
then, whatever happened, destroy and the janitor (local containers or GCP instances/disks
older than the maximum age, project-labelled only). The record goes to
.state/<env>/history.jsonl (via the stage runner) and .state/<env>/reports/ (Markdown, HTML,
PNG) summarises the recent runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from disposable import provisioning
from disposable.console import say
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.gcp import janitor as gcp_janitor
from disposable.gcp import project as gcp_project
from disposable.local import janitor
from disposable.pipeline import Stage, run_stages, succeeded
from disposable.proof import drift, report
from disposable.rebuilding import RunFacts, rebuild_stages, take_fingerprint

REPORT_RUNS = 14


def check_drift(env: Environment, facts: RunFacts) -> None:
    """Right after a rebuild nothing may drift: a second converge or plan that would change
    something means the code does not describe the host (or a task is not idempotent)."""
    report = drift.detect(env)
    facts.extra["drift"] = {"clean": report.clean, "items": report.items()}
    if not report.clean:
        raise DisposableError(
            "Drift right after a rebuild:\n  " + "\n  ".join(report.items()),
            "A task that changes on every run, or a resource Terraform cannot converge: fix the code.",
        )


def compare_fingerprint(env: Environment, facts: RunFacts) -> None:
    """Record the fingerprint; the same commit must give the same hosts as last time."""
    recorded = take_fingerprint(env, facts)
    if recorded.changes and recorded.same_code:
        raise DisposableError(
            f"The same commit built different hosts ({len(recorded.changes)} difference(s), listed above).",
            "Something is not pinned: an unpinned package or file came out differently this time.",
        )


def janitor_stage(
    env: Environment, variables: Mapping[str, str], max_age_hours: float, remembered: Mapping[str, str] | None = None
) -> Stage:
    """The janitor after the final destroy. On GCP its project is looked up when it runs
    (disposable.gcp.project: outputs, terraform.tfvars, --var, provision-vars.json,
    TF_VAR_project_id), falling back to `remembered`, the project seen just before the
    destroy removed outputs.json and provision-vars.json."""
    if env.is_local:
        return ("janitor", lambda: janitor.sweep_local(max_age_hours))

    def sweep() -> None:
        project = gcp_project.project_for(env.name, variables) or (remembered or {}).get("project_id", "")
        if not project:
            raise DisposableError(
                f"The GCP janitor does not know the project of {env.name}: no project_id in its outputs, "
                "terraform.tfvars, --var, provision variables or TF_VAR_project_id.",
                f"Set project_id in terraform/environments/{env.name}/terraform.tfvars or TF_VAR_project_id.",
            )
        gcp_janitor.sweep_gcp(project, env.name, max_age_hours)

    return ("janitor", sweep)


def nightly(
    env: Environment, variables: Mapping[str, str], zones: Sequence[str] = (), janitor_max_age_hours: float = 12
) -> bool:
    facts = RunFacts()
    if not env.is_local:
        # Zone fallback in the GCP nightly: --zones, else $DML_GCP_ZONES (the workflow sets it).
        zones = gcp_project.nightly_zones(zones)
        say(f"Nightly zones: {', '.join(zones)}" if zones else "Nightly zones: none given, no zone fallback")
    # The nightly proves reproducibility: exactly the committed apt lock, or it fails first.
    stages = rebuild_stages(env, variables, zones, facts, frozen=True)
    # The stages after verify: drift must be clean, the fingerprint compared with the last run.
    stages = [s for s in stages if s[0] != "fingerprint"] + [
        ("drift", lambda: check_drift(env, facts)),
        ("fingerprint", lambda: compare_fingerprint(env, facts)),
    ]
    remembered: dict[str, str] = {}

    def destroy_always() -> None:
        if not env.is_local:  # destroy removes outputs.json and provision-vars.json
            remembered["project_id"] = gcp_project.project_for(env.name, variables)
        provisioning.destroy(env)

    always: list[Stage] = [
        ("destroy (always)", destroy_always),
        janitor_stage(env, variables, janitor_max_age_hours, remembered),
    ]
    results = run_stages("nightly", env.name, stages, always, extras=lambda: facts.record(env))
    say(f"Report: {write_report(env.name)}")
    return succeeded(results)


def write_report(env: str) -> Path:
    """The run report (disposable.proof.report: Markdown, HTML, chart). Its Markdown is also kept
    as reports/nightly.md, the name earlier reports and links used; returns that path."""
    markdown = report.write_report(env, REPORT_RUNS).markdown
    nightly_md = markdown.with_name("nightly.md")
    shutil.copyfile(markdown, nightly_md)
    return nightly_md
