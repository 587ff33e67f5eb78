"""`invoke bench-rebuild [--runs N]`: the rebuild loop measured with its spread.

Each run: `rebuild` (from scratch), `bake` once before the first image rebuild, `rebuild
--from-image`, a no-change `configure`, `verify` and `drift`. Per operation and per stage:
min / median / max over the runs, and the sample count. Results (with the commit, the
tool versions and the CPU) go to .state/<env>/bench-rebuild/: results.json, a table
(table.md) and stages.png (bars at the median, whiskers from min to max).

Terraform variables (`--var`) choose the layout measured, for both rebuilds of every run:
the default is the local cloud as `./bootstrap.sh rebuild` builds it (inference, HAProxy
and feature-store hosts); `--var lb_count=0 --var features_count=0` is the single inference
host that issue 15's targets were set on. A layout other than the default writes to its
own directory (bench-rebuild-lb_count=0,features_count=0/), and results.json names the
variables and the hosts measured.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disposable import configuring, rebuilding
from disposable.console import fmt_seconds, say, table
from disposable.environments import Environment
from disposable.errors import DisposableError
from disposable.hosts.inventory import load_contract
from disposable.local import bake
from disposable.paths import state_dir
from disposable.pipeline import StageResult, succeeded
from disposable.proof import drift
from disposable.proof.fingerprint import code_version
from disposable.proof.toolversions import tool_versions
from disposable.proof.verify import verify


@dataclass
class Samples:
    """Seconds per (operation, stage) over the runs."""

    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, operation: str, stage: str, value: float) -> None:
        self.seconds.setdefault((operation, stage), []).append(value)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for (operation, stage), values in self.seconds.items():
            rows.append(
                {
                    "operation": operation,
                    "stage": stage,
                    "n": len(values),
                    "min_s": round(min(values), 1),
                    "median_s": round(statistics.median(values), 1),
                    "max_s": round(max(values), 1),
                }
            )
        return rows


def _timed(samples: Samples, operation: str, step: Callable[[], object]) -> None:
    start = time.monotonic()
    step()
    samples.add(operation, "total", time.monotonic() - start)


def _rebuild(samples: Samples, operation: str, results: list[StageResult]) -> None:
    if not succeeded(results):
        failed = next(r for r in results if r.status == "failed")
        raise DisposableError(f"{operation} failed at {failed.name}: {failed.detail}")
    for result in results:
        samples.add(operation, result.name, result.seconds)
    samples.add(operation, "total", sum(r.seconds for r in results))


def _drift_clean(env: Environment) -> None:
    if not drift.detect(env).clean:
        raise DisposableError("drift after a rebuild: the measured loop must be clean")


def results_dir(env: Environment, variables: Mapping[str, str]) -> Path:
    """bench-rebuild/ for the default layout; bench-rebuild-NAME=VALUE,.../ for another."""
    suffix = ",".join(f"{name}={value}" for name, value in sorted(variables.items()))
    return state_dir(env.name) / ("bench-rebuild" + (f"-{suffix}" if suffix else ""))


def measured_hosts(env: Environment) -> list[dict[str, Any]]:
    """The hosts the last rebuild made (name and groups), for the record."""
    return [{"name": host.name, "groups": list(host.groups)} for host in load_contract(env.name).hosts]


def run(env: Environment, runs: int, variables: Mapping[str, str] | None = None, out: Path | None = None) -> Path:
    if not env.is_local:
        raise DisposableError("bench-rebuild measures the local cloud (it rebuilds repeatedly).")
    chosen = dict(variables or {})
    samples = Samples()
    for index in range(1, runs + 1):
        say(f"\n##### bench-rebuild run {index}/{runs} #####")
        _rebuild(samples, "rebuild", rebuilding.rebuild(env, chosen))
        if index == 1:
            _timed(samples, "bake (once)", lambda: bake.bake(env, ""))
        _rebuild(samples, "rebuild --from-image", rebuilding.rebuild(env, chosen, from_image=True))
        _timed(samples, "configure (no change)", lambda: configuring.configure(env))
        _timed(samples, "verify", lambda: verify(env.name))
        _timed(samples, "drift", lambda: _drift_clean(env))
    layout = {"variables": chosen, "hosts": measured_hosts(env)}
    return write(env, runs, samples, out or results_dir(env, chosen), layout)


def write(env: Environment, runs: int, samples: Samples, out: Path, layout: dict[str, Any] | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows = samples.rows()
    layout = layout or {"variables": {}, "hosts": []}
    record = {
        "runs": runs,
        "layout": layout,
        "commit": code_version(),
        "tool_versions": tool_versions(env),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(record, indent=2))
    headers = ["operation", "stage", "n", "min", "median", "max"]
    cells = [[r["operation"], r["stage"], str(r["n"]), fmt_seconds(r["min_s"]), fmt_seconds(r["median_s"]),
              fmt_seconds(r["max_s"])] for r in rows]  # fmt: skip
    text = table(headers, cells)
    hosts = ", ".join(f"{h['name']} ({'/'.join(h['groups'])})" for h in layout["hosts"]) or "not recorded"
    variables = " ".join(f"--var {k}={v}" for k, v in sorted(layout["variables"].items())) or "the default layout"
    (out / "table.md").write_text(
        f"Rebuild loop, {runs} run(s), commit {record['commit']}, {record['cpu']} x{record['cpus']}\n"
        f"Layout: {variables}; hosts: {hosts}\n\n"
        + "| " + " | ".join(headers) + " |\n|" + "---|" * len(headers) + "\n"
        + "\n".join("| " + " | ".join(c) + " |" for c in cells) + "\n"
    )  # fmt: skip
    chart(rows, out / "stages.png", runs)
    say(f"Rebuild loop ({runs} run(s)):\n{text}\nResults: {out}/results.json, table.md, stages.png")
    return out


def chart(rows: list[dict[str, Any]], path: Path, runs: int) -> None:
    """Stage bars at the median, whiskers from min to max."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [f"{r['operation']}: {r['stage']}" for r in rows]
    medians = [r["median_s"] for r in rows]
    low = [r["median_s"] - r["min_s"] for r in rows]
    high = [r["max_s"] - r["median_s"] for r in rows]
    figure = Figure(figsize=(9, 0.32 * len(rows) + 1.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.barh(range(len(rows)), medians, xerr=[low, high], capsize=3, color="#4c72b0")
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(f"seconds (median; whiskers: min..max over {runs} run(s))")
    figure.savefig(path, dpi=110)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
