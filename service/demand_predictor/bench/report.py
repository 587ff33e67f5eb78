"""Benchmark output: printed rows, figures over repetitions, markdown tables, the plot.

``aggregate`` turns the phases of results.json into figures: each one a list of
per-repetition values with min / median / max and, where it is a latency, the
sample count of each run. ``markdown`` writes them as the README's tables
(tables.md). ``python -m demand_predictor.bench.report RESULTS_JSON`` rebuilds
tables.md and the plot from a results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

HEADER = (
    f"{'rep':>3} {'scenario':<8} {'target':<16} {'phase':<10} {'offered':>8} {'ok/s':>8} "
    f"{'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'rejected':>9} {'errors':>7} "
    f"{'gen lag p99':>12}  batches"
)
LIKE = ("service", "naive", "litserve", "floor", "floor_fastapi")
ABLATION = ("no_batching", "plain_model", "pydantic_only", "no_early_refusal")
SWITCHES = {
    "no_batching": "DP_BATCHING=false",
    "plain_model": "DP_FUSED_MODEL=false",
    "pydantic_only": "DP_FAST_VALIDATOR=false",
    "no_early_refusal": "DP_EARLY_REFUSAL=false",
}


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def print_row(s: dict[str, Any]) -> None:
    batches = s.get("batch_histogram")
    flag = " (generator late)" if s.get("generator_lagged") else ""
    print(
        f"{s.get('rep', '-'):>3} {s.get('scenario', '-'):<8} {s['target']:<16} {s['phase']:<10} "
        f"{s['offered_rate']:>8.1f} {s['achieved_ok_rps']:>8.1f} {s.get('latency_samples', 0):>6} "
        f"{_fmt(s['p50_ms']):>8} {_fmt(s['p99_ms']):>8} {_fmt(s['p999_ms']):>9} "
        f"{s['rejection_rate']:>9.2%} {s['error_rate']:>7.2%} "
        f"{_fmt(s['generator_lag_p99_ms']):>12}{flag}  {batches if batches else ''}",
        flush=True,
    )


# -- figures over repetitions ----------------------------------------------------------


def stats(values: list[Any], samples: list[Any] | None = None) -> dict[str, Any] | None:
    """min / median / max of the per-repetition values that exist (None: none do)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    out: dict[str, Any] = {
        "values": present,
        "n": len(present),
        "min": min(present),
        "median": statistics.median(present),
        "max": max(present),
    }
    if samples is not None:
        out["samples"] = [int(s) for s in samples if s is not None]
    return out


def _phases(results: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [
        p for p in results["phases"] if all(p.get(k) == v for k, v in match.items())
    ]  # fmt: skip


def _reps(results: dict[str, Any]) -> list[int]:
    return list(range(1, int(results.get("repetitions", 1)) + 1))


def _per_rep_ratio(
    results: dict[str, Any], scenario: str, top: str, bottom: str
) -> dict[str, Any] | None:
    """``top`` / ``bottom`` max rate, per repetition, then min / median / max."""
    rates = {(r["target"], r["rep"]): r["max_rate"] for r in results["max_rates"]
             if r["scenario"] == scenario}  # fmt: skip
    values = []
    for rep in _reps(results):
        a, b = rates.get((top, rep)), rates.get((bottom, rep))
        values.append(a / b if a is not None and b else None)
    return stats(values)


def aggregate(results: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "max_rate": {}, "rows_per_s": {}, "spike_p99_ms": {}, "spike_p50_ms": {},
        "service_over": {}, "ablation_over_service": {}, "overload": {}, "crosscheck": {},
    }  # fmt: skip
    scenarios = sorted({r["scenario"] for r in results["max_rates"]} | {
        p["scenario"] for p in results["phases"]})  # fmt: skip
    targets = sorted({p["target"] for p in results["phases"]})
    for scenario in scenarios:
        for target in targets:
            rows = [r for r in results["max_rates"]
                    if r["target"] == target and r["scenario"] == scenario]  # fmt: skip
            if rows:
                figures["max_rate"].setdefault(scenario, {})[target] = stats(
                    [r["max_rate"] for r in rows], [r.get("latency_samples") for r in rows]
                )
                figures["rows_per_s"].setdefault(scenario, {})[target] = stats(
                    [r.get("rows_per_s") for r in rows]
                )
            spikes = _phases(results, target=target, scenario=scenario, phase="spike")
            if spikes:
                samples = [p["latency_samples"] for p in spikes]
                figures["spike_p99_ms"].setdefault(scenario, {})[target] = stats(
                    [p["p99_ms"] for p in spikes], samples
                )
                figures["spike_p50_ms"].setdefault(scenario, {})[target] = stats(
                    [p["p50_ms"] for p in spikes], samples
                )
            if target != "service":
                ratio = _per_rep_ratio(results, scenario, "service", target)
                if ratio is not None:
                    if target in ABLATION:
                        ablated = _per_rep_ratio(results, scenario, target, "service")
                        figures["ablation_over_service"].setdefault(scenario, {})[target] = ablated
                    else:
                        figures["service_over"].setdefault(scenario, {})[target] = ratio
    for target in targets:
        runs = [
            p for p in _phases(results, target=target, phase="overload") if not p.get("discarded")
        ]
        if runs:
            # A phase the generator could not send on schedule measured the generator: its
            # latency is left out (counted as generator-bound), its counts stay.
            timely = [p for p in runs if not p.get("generator_lagged")]
            figures["overload"][target] = {
                "offered": stats([p["offered_rate"] for p in runs]),
                "ok_per_s": stats([p["achieved_ok_rps"] for p in runs]),
                "p99_ms": stats(
                    [p["p99_ms"] for p in timely], [p["latency_samples"] for p in timely]
                ),
                "generator_bound": len(runs) - len(timely),
                "generator_lag_p99_ms": stats([p.get("generator_lag_p99_ms") for p in runs]),
                "rejection_rate": stats([p["rejection_rate"] for p in runs]),
                "error_rate": stats([p["error_rate"] for p in runs]),
            }
    for target in sorted({c["target"] for c in results.get("crosschecks", [])}):
        runs = [c for c in results["crosschecks"] if c["target"] == target]
        figures["crosscheck"][target] = {
            "wrk_per_s": stats([c["wrk"]["requests_per_s"] for c in runs]),
            "wrk_ok_per_s": stats([c["wrk"]["ok_per_s"] for c in runs]),
            "generator_ok_per_s": stats([c["generator_ok_per_s"] for c in runs]),
            "generator_over_wrk": stats(
                [
                    c["generator_ok_per_s"] / c["wrk"]["ok_per_s"] if c["wrk"]["ok_per_s"] else None
                    for c in runs
                ]
            ),
            "generator_max_rate": figures["max_rate"].get("one_row", {}).get(target),
            "command": runs[0]["command"],
        }
    wrk_rates = {
        (c["target"], c["rep"]): c["wrk"]["ok_per_s"] for c in results.get("crosschecks", [])
    }
    if any(t == "service" for t, _ in wrk_rates) and any(t == "floor" for t, _ in wrk_rates):
        figures["crosscheck_service_over_floor"] = {
            "wrk": stats(
                [
                    wrk_rates[("service", rep)] / wrk_rates[("floor", rep)]
                    if wrk_rates.get(("service", rep)) and wrk_rates.get(("floor", rep))
                    else None
                    for rep in _reps(results)
                ]
            ),
            "generator_at_slo": figures["service_over"].get("one_row", {}).get("floor"),
        }
    figures["phases"] = len(results["phases"])
    figures["generator_lagged_phases"] = sum(
        1 for p in results["phases"] if p.get("generator_lagged")
    )
    return figures


def check_targets(figures: dict[str, Any]) -> dict[str, Any]:
    """The service's targets, each judged on the median over repetitions."""
    checks: dict[str, Any] = {}
    spike = figures["spike_p99_ms"].get("one_row", {}).get("service")
    if spike:
        checks["spike_83rps_p99_ms"] = {
            "value": _cell(spike, "{:.1f}"),
            "target": "<= 15",
            "met": spike["median"] <= 15,
        }
    over = figures["service_over"].get("one_row", {})
    for other, factor, label in (
        ("naive", 2.0, ">= 2x naive"),
        ("floor", 0.5, ">= 50% of floor (own stack)"),
    ):
        ratio = over.get(other)
        if ratio:
            checks[f"max_rate_vs_{other}"] = {
                "value": _cell(ratio, "{:.2f}x"),
                "target": label,
                "met": ratio["median"] >= factor,
            }
    # The floor's maximum at the SLO can be the generator's (the floor answers faster than one
    # core can send): wrk's saturation throughput judges the same target without that limit.
    by_wrk = (figures.get("crosscheck_service_over_floor") or {}).get("wrk")
    if by_wrk:
        checks["saturation_vs_floor_by_wrk"] = {
            "value": _cell(by_wrk, "{:.2f}x"),
            "target": ">= 50% of floor (own stack), wrk",
            "met": by_wrk["median"] >= 0.5,
        }
    overload = figures["overload"].get("service")
    if overload and overload["p99_ms"]:
        checks["overload_p99_accepted_ms"] = {
            "value": _cell(overload["p99_ms"], "{:.0f}"),
            "target": "<= 100",
            "met": overload["p99_ms"]["median"] <= 100,
        }
    elif overload:  # every overload phase was generator-bound: no server figure to judge
        checks["overload_p99_accepted_ms"] = {"value": "not measured (generator-bound)", "target": "<= 100",
                                              "met": None}  # fmt: skip
    return checks


# -- markdown --------------------------------------------------------------------------


def _cell(figure: dict[str, Any] | None, pattern: str = "{:,.0f}") -> str:
    """'median (min-max)' over the repetitions; '-' when there is no value."""
    if not figure:
        return "-"
    med, low, high = (pattern.format(figure[k]) for k in ("median", "min", "max"))
    spread = f" ({low}-{high})" if figure["n"] > 1 else ""
    return f"{med}{spread}"


def _samples(figure: dict[str, Any] | None) -> str:
    if not figure or not figure.get("samples"):
        return "-"
    low, high = min(figure["samples"]), max(figure["samples"])
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _percent(figure: dict[str, Any] | None) -> str:
    if not figure:
        return "-"
    return _cell({**figure, **{k: 100 * figure[k] for k in ("median", "min", "max")}}, "{:.1f} %")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(results: dict[str, Any]) -> str:
    figures = results.get("figures") or aggregate(results)
    facts = results["machine"]
    contenders = results["contenders"]
    versions = facts["versions"]
    reps = results["repetitions"]
    rule = results["percentile_rule"]
    pin = facts["pinning"]
    lines = [
        "<!-- generated by `python -m demand_predictor.bench` (bench/report.py); do not edit -->",
        "",
        f"Run {results['when']} ({results['mode']} mode, {results['wall_s']:.0f} s), commit "
        f"`{facts['commit'][:12]}`"
        + (" with uncommitted changes" if facts["dirty"] else "")
        + f"; {facts['cpu_model']}, {facts['logical_cpus']} logical CPUs; generator and wrk on "
        f"CPU {pin['generator']}, each server on CPU {pin['servers']} ({pin['how']}); "
        f"Python {facts['python']}, torch {versions['torch']}, FastAPI {versions['fastapi']}, "
        f"uvicorn {versions['uvicorn']}, LitServe {versions['litserve']}, {versions['wrk']}.",
        "",
        (
            f"Each cell: median (min-max) over {reps} repetitions, each contender started afresh "
            "in each. Max rate: the highest offered rate (open loop, Poisson) with p99 <= "
            f"{results['slo']['p99_ms']:.0f} ms and < {results['slo']['max_not_ok_rate']:.1%} non-200 "
            f"(ramp x{results['plan']['ramp_factor']} then one bisection step). A p99 is reported "
            f"only from >= {rule['p99_min_samples']:,} latency samples; 'samples' is the count "
            "per run (at the maximum's step for rates). Phases in this run: "
            f"{figures['phases']}, of which the generator sent late (send-lag p99 > "
            f"{results['generator_lag_flag_ms']:.0f} ms) in {figures['generator_lagged_phases']}."
        ),
    ]
    if results.get("smoke"):
        lines += ["", "**Smoke settings: not a measurement.**"]
    for scenario, load in results["scenarios"].items():
        rates = figures["max_rate"].get(scenario, {})
        rows_ps = figures["rows_per_s"].get(scenario, {})
        spikes = figures["spike_p99_ms"].get(scenario, {})
        over = figures["service_over"].get(scenario, {})
        table = []
        for name in LIKE:
            if name not in rates and name not in spikes:
                continue
            row = [contenders[name]["label"], contenders[name]["model"], _cell(rates.get(name))]
            if scenario != "one_row":
                row.append(_cell(rows_ps.get(name)))
            ratio = "1" if name == "service" else _cell(over.get(name), "{:.2f}")
            row += [ratio, _samples(rates.get(name)), _cell(spikes.get(name), "{:.1f}"),
                    _samples(spikes.get(name))]  # fmt: skip
            table.append(row)
        if not table:
            continue
        header = ["contender", "model", "max req/s at SLO"]
        if scenario != "one_row":
            header.append("rows/s there")
        header += ["service ÷ contender", "samples", "spike 83 req/s p99 ms", "samples"]
        lines += ["", f"### Like-for-like: {scenario}", "", f"Requests: {load['description']}.", ""]
        lines += _table(header, table)
    ablation = []
    for name in ABLATION:
        if name not in contenders or name == "no_early_refusal":
            continue
        row = [contenders[name]["label"], f"`{SWITCHES[name]}`"]
        for scenario in ("one_row", "mix"):
            rate = figures["max_rate"].get(scenario, {}).get(name)
            ratio = figures["ablation_over_service"].get(scenario, {}).get(name)
            row += [_cell(rate), _cell(ratio, "{:.2f}")]
        ablation.append(row)
    service_rates = [figures["max_rate"].get(s, {}).get("service") for s in ("one_row", "mix")]
    if ablation:
        lines += ["", "### Ablation: the service with one mechanism off", ""]
        lines += _table(
            ["variant", "switch", "one_row max req/s", "÷ service", "mix max req/s", "÷ service"],
            [["service", "(defaults)", _cell(service_rates[0]), "1", _cell(service_rates[1]), "1"]]
            + ablation,
        )
    overload = figures["overload"]
    if overload:
        factor = results["overload_factor"]
        lines += [
            "",
            (
                f"Overload (one_row, {factor:g}x the service's one_row maximum of the same "
                "repetition; the early refusal's effect):"
            ),
            "",
        ]
        rows = []
        for name in ("service", "no_early_refusal"):
            run = overload.get(name)
            if run:
                switch = f"`{SWITCHES[name]}`" if name in SWITCHES else "(defaults)"
                rows.append([contenders[name]["label"], switch, _cell(run["offered"]),
                             _cell(run["ok_per_s"]), _cell(run["p99_ms"], "{:.0f}"),
                             _samples(run["p99_ms"]), _percent(run["rejection_rate"]),
                             _percent(run["error_rate"]), _cell(run["generator_lag_p99_ms"], "{:.1f}"),
                             str(run["generator_bound"])])  # fmt: skip
        lines += _table(
            [
                "variant",
                "switch",
                "offered req/s",
                "200/s",
                "p99 of 200s ms",
                "samples",
                "refused (429/503)",
                "errors",
                "generator send-lag p99 ms",
                "generator-bound runs (no p99)",
            ],
            rows,
        )
    if figures["crosscheck"]:
        lines += [
            "",
            "### Cross-check with wrk (saturation throughput, one_row body)",
            "",
            (
                "wrk runs closed loop with the connections below for the same time as the "
                "project's generator, which then offers 1.5x wrk's rate with the same "
                "connection limit (so both saturate the server); throughput only, no latency."
            ),
            "",
        ]
        rows = []
        for name, check in figures["crosscheck"].items():
            rows.append([contenders[name]["label"], _cell(check["wrk_per_s"]),
                         _cell(check["wrk_ok_per_s"]), _cell(check["generator_ok_per_s"]),
                         _cell(check["generator_over_wrk"], "{:.2f}"),
                         _cell(check.get("generator_max_rate"))])  # fmt: skip
        lines += _table(
            [
                "target",
                "wrk req/s",
                "wrk 2xx/s",
                "generator 200/s at saturation",
                "generator ÷ wrk",
                "generator max req/s at SLO",
            ],
            rows,
        )
        ratio = figures.get("crosscheck_service_over_floor")
        if ratio:
            lines += [
                "",
                (
                    f"Service ÷ floor (service stack): {_cell(ratio['wrk'], '{:.2f}')} by wrk's "
                    f"saturation throughput, {_cell(ratio['generator_at_slo'], '{:.2f}')} by the "
                    "generator's max rate at SLO."
                ),
            ]
        command = next(iter(figures["crosscheck"].values()))["command"]
        lines += [
            "",
            (
                f"wrk command: `{command}`, with `wrk_post.lua` (written next to results.json) "
                "sending the first one_row body as a POST."
            ),
        ]
    lines += ["", "### Settings of each contender", ""]
    for name, described in contenders.items():
        parts = [f"model {described['model']}", described["server"]]
        if "env" in described:
            parts.append(" ".join(f"{k}={v}" for k, v in described["env"].items()))
        if "litserve" in described:
            parts.append(", ".join(f"{k}={v}" for k, v in described["litserve"].items()))
        lines.append(f"* **{name}** ({described['label']}): " + "; ".join(parts))
    checks = results.get("targets_check") or {}
    if checks:
        lines += ["", "Targets (median over repetitions):", ""]
        lines += _table(
            ["target", "value", "goal", "met"],
            [
                [
                    k,
                    str(c["value"]),
                    c["target"],
                    "-" if c["met"] is None else "yes" if c["met"] else "**no**",
                ]
                for k, c in checks.items()
            ],
        )
    if results.get("notes"):
        lines += [""] + [f"Note: {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


# -- plot ------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"plot skipped: matplotlib not installed ({exc})"
    phases = results["phases"]
    scenarios = [s for s in results["scenarios"] if any(p["scenario"] == s for p in phases)]
    if not scenarios:
        return "plot skipped: no phases"
    fig, axes = plt.subplots(1, len(scenarios), figsize=(8 * len(scenarios), 5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    targets = sorted({p["target"] for p in phases})
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        for index, target in enumerate(targets):
            colour = colours[index % len(colours)]
            labelled = False
            for rep in _reps(results):
                rows = sorted(
                    (p for p in phases if p["target"] == target and p["scenario"] == scenario
                     and p["rep"] == rep and p["phase"] in ("spike", "ramp")
                     and p["p99_ms"] is not None),
                    key=lambda p: p["offered_rate"],
                )  # fmt: skip
                if not rows:
                    continue
                ax.plot([p["offered_rate"] for p in rows], [p["p99_ms"] for p in rows],
                        marker="o", ms=3, color=colour, alpha=0.7,
                        label=None if labelled else f"{target} p99")  # fmt: skip
                labelled = True
            for p in phases:
                if (p["target"], p["scenario"], p["phase"]) == (target, scenario, "overload") and (
                    p["p99_ms"]
                ):
                    ax.scatter([p["offered_rate"]], [p["p99_ms"]], marker="x", s=60, color=colour)
        ax.axhline(results["slo"]["p99_ms"], color="grey", lw=0.8, ls=":", label="SLO")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (req/s, open loop)")
        ax.set_ylabel("p99 latency of 200 responses (ms)")
        ax.set_title(f"{scenario}: one line per repetition; x = overload")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot written to {path}"


def print_summary(results: dict[str, Any], tables: str, plot_message: str) -> None:
    print()
    print(HEADER)
    for phase in results["phases"]:
        print_row(phase)
    print()
    print(tables)
    print(plot_message)
    print(f"wall time {results['wall_s']} s; results.json and tables.md written")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demand_predictor.bench.report",
        description="Rebuild tables.md and latency_vs_rate.png from a results.json.",
    )
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, help="directory (default: the results' own)")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    out = args.out or args.results.parent
    results["figures"] = aggregate(results)
    results["targets_check"] = check_targets(results["figures"])
    (out / "tables.md").write_text(markdown(results))
    print(plot(results, out / "latency_vs_rate.png"))
    print(f"tables written to {out / 'tables.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
