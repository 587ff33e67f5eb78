"""`invoke nightly`: the destroy-and-rebuild proof, run on a schedule.

rebuild (destroy -> provision -> configure -> verify), then, whatever happened, destroy
and the janitor; the record goes to .state/<env>/history.jsonl (via the stage runner) and
.state/<env>/reports/nightly.md summarises the recent runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from disposable import configuring, janitor, provisioning
from disposable.console import fmt_seconds, say
from disposable.environments import Environment
from disposable.paths import state_dir
from disposable.pipeline import Stage, run_stages, succeeded
from disposable.verify import verify

REPORT_RUNS = 14


def nightly(
    env: Environment, variables: Mapping[str, str], zones: Sequence[str] = (), janitor_max_age_hours: float = 12
) -> bool:
    stages: list[Stage] = [
        ("destroy", lambda: provisioning.destroy(env)),
        ("provision", lambda: provisioning.provision(env, variables, zones=zones)),
        ("configure", lambda: configuring.configure(env)),
        ("verify", lambda: verify(env.name)),
    ]
    always: list[Stage] = [("destroy (always)", lambda: provisioning.destroy(env))]
    if env.is_local:
        always.append(("janitor", lambda: janitor.sweep_local(janitor_max_age_hours)))
    results = run_stages("nightly", env.name, stages, always)
    report = write_report(env.name)
    say(f"Report: {report}")
    return succeeded(results)


def write_report(env: str) -> Path:
    """A Markdown table of the recent nightly runs and their stage times."""
    history = state_dir(env) / "history.jsonl"
    records = (
        [json.loads(line) for line in history.read_text().splitlines() if line.strip()] if history.exists() else []
    )
    runs = [r for r in records if r.get("title") == "nightly"][-REPORT_RUNS:]
    stage_names = list(dict.fromkeys(s["name"] for r in runs for s in r["stages"]))
    lines = [
        f"# Nightly rebuilds: {env}",
        "",
        "| finished (UTC) | result | total | " + " | ".join(stage_names) + " |",
        "|---" * (3 + len(stage_names)) + "|",
    ]
    for run in reversed(runs):
        by_name = {s["name"]: s for s in run["stages"]}
        cells = [
            f"{fmt_seconds(by_name[n]['seconds'])} {by_name[n]['status']}" if n in by_name else "-" for n in stage_names
        ]
        result = "ok" if run["succeeded"] else "**FAILED**"
        lines.append(
            f"| {run['finished_at']} | {result} | {fmt_seconds(run['total_seconds'])} | " + " | ".join(cells) + " |"
        )
    reports = state_dir(env) / "reports"
    reports.mkdir(exist_ok=True)
    path = reports / "nightly.md"
    path.write_text("\n".join(lines) + "\n")
    return path
