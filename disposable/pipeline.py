"""Named stages with timings: what `rebuild` runs, and the summary it prints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from disposable.console import fmt_seconds, say, table
from disposable.errors import DisposableError
from disposable.paths import state_dir


@dataclass
class StageResult:
    name: str
    status: str  # ok, failed, skipped
    seconds: float
    detail: str = ""


Stage = tuple[str, Callable[[], object]]


def run_stages(
    title: str,
    env: str,
    stages: Sequence[Stage],
    always: Sequence[Stage] = (),
    extras: Callable[[], dict[str, Any]] | None = None,
) -> list[StageResult]:
    """Run `stages` in order; after a failure the rest are skipped, but `always` stages run
    in any case (clean-up). Prints a summary table, writes .state/<env>/last-<title>.json and
    appends the record (plus what `extras()` returns: fingerprint, tool versions...) to
    .state/<env>/history.jsonl. Returns the results (see `succeeded`)."""
    results: list[StageResult] = []
    failed = False
    started = time.monotonic()
    regular = len(stages)
    for index, (name, stage) in enumerate([*stages, *always], start=1):
        if failed and index <= regular:
            results.append(StageResult(name, "skipped", 0.0))
            continue
        say(f"\n=== [{index}/{regular + len(always)}] {title}: {name} ===")
        start = time.monotonic()
        try:
            stage()
            results.append(StageResult(name, "ok", time.monotonic() - start))
            say(f"=== {name}: ok in {fmt_seconds(time.monotonic() - start)} ===")
        except DisposableError as exc:
            failed = True
            results.append(StageResult(name, "failed", time.monotonic() - start, str(exc)))
            say(f"=== {name}: FAILED after {fmt_seconds(time.monotonic() - start)} ===\n{exc}")
    total = time.monotonic() - started
    rows = [[r.name, r.status, fmt_seconds(r.seconds)] for r in results]
    rows.append(["total", "ok" if not failed else "failed", fmt_seconds(total)])
    say(f"\n{title} summary ({env}):\n" + table(["stage", "status", "time"], rows))
    record = {
        "title": title,
        "environment": env,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "succeeded": not failed,
        "total_seconds": round(total, 1),
        "stages": [asdict(r) | {"seconds": round(r.seconds, 1)} for r in results],
        **(extras() if extras else {}),
    }
    (state_dir(env) / f"last-{title}.json").write_text(json.dumps(record, indent=2))
    with (state_dir(env) / "history.jsonl").open("a") as history:
        history.write(json.dumps(record, sort_keys=True) + "\n")
    return results


def succeeded(results: Sequence[StageResult]) -> bool:
    return all(r.status == "ok" for r in results)
