"""Benchmark output: printed rows and table, target checks, latency-vs-rate plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEADER = (
    f"{'target':<9} {'phase':<12} {'offered':>8} {'ok/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'p99.9 ms':>9} {'rejected':>9} {'errors':>7} {'gen lag p99':>12}  batches"
)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def print_row(s: dict[str, Any]) -> None:
    batches = s.get("batch_histogram")
    print(
        f"{s['target']:<9} {s['phase']:<12} {s['offered_rate']:>8.1f} {s['achieved_ok_rps']:>8.1f} "
        f"{_fmt(s['p50_ms']):>8} {_fmt(s['p99_ms']):>8} {_fmt(s['p999_ms']):>9} "
        f"{s['rejection_rate']:>9.2%} {s['error_rate']:>7.2%} "
        f"{_fmt(s['generator_lag_p99_ms']):>12}  {batches if batches else ''}",
        flush=True,
    )


def check_targets(phases: list[dict[str, Any]], max_rates: dict[str, float]) -> dict[str, Any]:
    def find(target: str, phase: str) -> dict[str, Any] | None:
        rows = [
            p
            for p in phases
            if p["target"] == target and p["phase"] == phase and not p.get("superseded")
        ]
        return rows[-1] if rows else None

    checks: dict[str, Any] = {}
    spike = find("service", "spike")
    if spike:
        checks["spike_83rps_p99_ms"] = {
            "value": spike["p99_ms"],
            "target": "<= 15",
            "met": spike["p99_ms"] is not None and spike["p99_ms"] <= 15,
        }
    service = max_rates.get("service", 0.0)
    for other, factor, label in (("naive", 2.0, ">= 2x naive"), ("constant", 0.5, ">= 50% floor")):
        if other in max_rates:
            checks[f"max_rate_vs_{other}"] = {
                "value": f"{service:.0f} vs {max_rates[other]:.0f} req/s",
                "target": label,
                "met": service >= factor * max_rates[other],
            }
    overload = find("service", "overload_3x")
    if overload:
        checks["overload_3x_p99_accepted_ms"] = {
            "value": overload["p99_ms"],
            "target": "<= 100",
            "met": overload["p99_ms"] is not None and overload["p99_ms"] <= 100,
            "rejection_rate": overload["rejection_rate"],
            "error_rate": overload["error_rate"],
        }
    return checks


def plot(phases: list[dict[str, Any]], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"plot skipped: matplotlib not installed ({exc})"
    fig, ax = plt.subplots(figsize=(8, 5))
    for target in sorted({p["target"] for p in phases}):
        rows = sorted(
            (p for p in phases if p["target"] == target and p["phase"] in ("spike", "ramp")
             and p["p99_ms"] is not None and not p.get("superseded")),
            key=lambda p: p["offered_rate"],
        )  # fmt: skip
        if not rows:
            continue
        rates = [p["offered_rate"] for p in rows]
        line = ax.plot(rates, [p["p99_ms"] for p in rows], marker="o", label=f"{target} p99")[0]
        ax.plot(rates, [p["p50_ms"] for p in rows], ls="--", color=line.get_color(), alpha=0.6,
                label=f"{target} p50")  # fmt: skip
        for p in phases:
            if p["target"] == target and p["phase"] == "overload_3x" and p["p99_ms"]:
                ax.scatter([p["offered_rate"]], [p["p99_ms"]], marker="x", s=80,
                           color=line.get_color(), label=f"{target} 3x overload (accepted)")  # fmt: skip
    ax.axhline(50, color="grey", lw=0.8, ls=":", label="50 ms SLO")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (req/s, open loop)")
    ax.set_ylabel("latency of 200 responses (ms)")
    ax.set_title("demand-predictor: latency vs offered rate (loopback, 1 core per side)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"


def print_summary(results: dict[str, Any], plot_message: str) -> None:
    print()
    print(HEADER)
    for phase in results["phases"]:
        if phase["phase"] != "warmup" and not phase.get("superseded"):
            print_row(phase)
    print()
    print("max rate with p99 <= 50 ms and < 0.1 % non-200:")
    for target, rate in results["max_rate_at_slo"].items():
        print(f"  {target:<9} {rate:>8.0f} req/s")
    print("targets:")
    for name, check in results["targets_check"].items():
        status = "MET" if check["met"] else "NOT MET"
        print(f"  {name:<30} {check['value']!s:<24} target {check['target']:<14} {status}")
    for note in results["notes"]:
        print("note:", note)
    print(plot_message)
    print(f"wall time {results['wall_s']} s; results in results.json")
