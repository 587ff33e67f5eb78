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
    in any case (clean-up), whatever the failure was: the project's own errors, any other
    exception (a timeout, a JSON error, a full disk) or Ctrl-C/SIGTERM (KeyboardInterrupt,
    SystemExit: re-raised once the always stages ran and the record is written). Prints a
    summary table, writes .state/<env>/last-<title>.json and appends the record (plus what
    `extras()` returns: fingerprint, tool versions...) to .state/<env>/history.jsonl.
    Returns the results (see `succeeded`)."""
    results: list[StageResult] = []
    failed = False
    interrupted: BaseException | None = None
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
        except BaseException as exc:  # noqa: BLE001 - clean-up must run after any failure; reported below
            failed = True
            detail = str(exc) if isinstance(exc, DisposableError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                interrupted = interrupted or exc
                detail = f"interrupted ({type(exc).__name__})"
            results.append(StageResult(name, "failed", time.monotonic() - start, detail))
            say(f"=== {name}: FAILED after {fmt_seconds(time.monotonic() - start)} ===\n{detail}")
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
        **_extras(extras),
    }
    (state_dir(env) / f"last-{title}.json").write_text(json.dumps(record, indent=2))
    with (state_dir(env) / "history.jsonl").open("a") as history:
        history.write(json.dumps(record, sort_keys=True) + "\n")
    if interrupted is not None:
        raise interrupted
    return results


def _extras(extras: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
    """The caller's extra facts; a failure to gather them is recorded, never loses the record."""
    if extras is None:
        return {}
    try:
        return extras()
    except Exception as exc:  # noqa: BLE001 - the history record must be written anyway
        return {"extras_error": f"{type(exc).__name__}: {exc}"}


def succeeded(results: Sequence[StageResult]) -> bool:
    return all(r.status == "ok" for r in results)
