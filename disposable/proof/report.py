"""The run report: what the recent rebuilds and nightlies took, stage by stage.

Reads .state/<env>/history.jsonl (one JSON record per line, appended by the stage runner)
and writes, under .state/<env>/reports/:

- report.md: a table of the recent `rebuild` and `nightly` runs (newest first): finished
  time, kind, result, total, each stage's time and status, the host fingerprint and
  whether it changed; then the tool versions of the latest run and each stage's
  median/max over the runs shown;
- report.html: the same tables as one self-contained page (inline style, no external
  assets) that shows the chart through a relative <img>;
- stage-durations.png: stacked bars of the stage durations per run, failed runs marked.

Records written before the fingerprint, tool versions, image and drift keys existed are
shown with "-" in those places. Lines that are not valid records are skipped with a
warning and counted in the report.
"""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from disposable.console import fmt_seconds, say
from disposable.errors import DisposableError
from disposable.paths import state_dir

KINDS = ("rebuild", "nightly")
FINGERPRINT_CHARS = 12
CHART_NAME = "stage-durations.png"


@dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    html: Path
    chart: Path


@dataclass(frozen=True)
class StageTime:
    name: str
    status: str  # ok, failed, skipped
    seconds: float


@dataclass(frozen=True)
class Run:
    """One history record, with the optional keys normalised (absent -> None / empty)."""

    kind: str
    finished: datetime
    succeeded: bool
    total_seconds: float
    stages: tuple[StageTime, ...]
    fingerprint: str | None = None
    tool_versions: dict[str, str] | None = None
    from_image: str | None = None
    drift_clean: bool | None = None  # None: drift not checked
    drift_items: tuple[str, ...] = ()
    apt_lock: str | None = None  # the apt lock's short hash
    lock_stale: tuple[str, ...] = ()  # packages a LOCK STALE run moved (empty: the committed lock)


@dataclass(frozen=True)
class History:
    runs: list[Run]
    skipped_lines: int


# --- reading ---------------------------------------------------------------------------


def parse_run(record: Any) -> Run:
    """A Run from one decoded history record; ValueError/KeyError/TypeError when malformed."""
    if not isinstance(record, dict):
        raise TypeError("not a JSON object")
    finished = datetime.fromisoformat(record["finished_at"])
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    stages = tuple(StageTime(str(s["name"]), str(s["status"]), float(s["seconds"])) for s in record["stages"])
    return Run(
        kind=str(record["title"]),
        finished=finished.astimezone(UTC),
        succeeded=bool(record["succeeded"]),
        total_seconds=float(record["total_seconds"]),
        stages=stages,
        fingerprint=_fingerprint(record.get("fingerprint")),
        tool_versions=_tool_versions(record.get("tool_versions")),
        from_image=record.get("from_image") if isinstance(record.get("from_image"), str) else None,
        drift_clean=_drift_clean(record.get("drift")),
        drift_items=_drift_items(record.get("drift")),
        apt_lock=_apt_lock(record.get("apt_lock")),
        lock_stale=_lock_stale(record.get("apt_lock")),
    )


def _apt_lock(value: Any) -> str | None:
    return str(value["hash"]) if isinstance(value, dict) and value.get("hash") else None


def _lock_stale(value: Any) -> tuple[str, ...]:
    if not isinstance(value, dict) or not value.get("stale"):
        return ()
    return tuple(str(m) for m in value.get("moved") or ["(packages not recorded)"])


def _fingerprint(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("hash"), str) and value["hash"]:
        return str(value["hash"])
    return None


def _tool_versions(value: Any) -> dict[str, str] | None:
    return {str(tool): str(version) for tool, version in value.items()} if isinstance(value, dict) else None


def _drift_clean(value: Any) -> bool | None:
    return bool(value.get("clean")) if isinstance(value, dict) else None


def _drift_items(value: Any) -> tuple[str, ...]:
    items = value.get("items") if isinstance(value, dict) else None
    return tuple(str(item) for item in items) if isinstance(items, list) else ()


def read_history(path: Path) -> History:
    """All parseable records of a history file, oldest first; malformed lines are skipped
    (each with a warning) and counted."""
    runs: list[Run] = []
    skipped = 0
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            runs.append(parse_run(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            skipped += 1
            say(f"WARNING: {path}:{number}: skipped a malformed history line ({type(exc).__name__}: {exc})")
    runs.sort(key=lambda run: run.finished)
    return History(runs, skipped)


# --- deriving --------------------------------------------------------------------------


def fingerprint_changes(runs: Sequence[Run]) -> list[str]:
    """Per run: "same" or "CHANGED" against the most recent earlier run that recorded a
    fingerprint; "-" where this run has none or no earlier run has one."""
    changes: list[str] = []
    previous: str | None = None
    for run in runs:
        if run.fingerprint is None or previous is None:
            changes.append("-")
        else:
            changes.append("same" if run.fingerprint == previous else "CHANGED")
        if run.fingerprint is not None:
            previous = run.fingerprint
    return changes


def stage_names(runs: Sequence[Run]) -> list[str]:
    """Every stage name in the order first seen."""
    return list(dict.fromkeys(stage.name for run in runs for stage in run.stages))


def stage_stats(runs: Sequence[Run]) -> dict[str, tuple[int, float, float]]:
    """Per stage: (runs counted, median seconds, max seconds); skipped stages are not counted."""
    stats: dict[str, tuple[int, float, float]] = {}
    for name in stage_names(runs):
        seconds = [s.seconds for run in runs for s in run.stages if s.name == name and s.status != "skipped"]
        if seconds:
            stats[name] = (len(seconds), statistics.median(seconds), max(seconds))
    return stats


@dataclass(frozen=True)
class Row:
    run: Run
    change: str


def recent_rows(history: History, runs: int) -> list[Row]:
    """The last `runs` rebuild/nightly runs with their fingerprint change, oldest first."""
    selected = [run for run in history.runs if run.kind in KINDS]
    rows = [Row(run, change) for run, change in zip(selected, fingerprint_changes(selected), strict=True)]
    return rows[-runs:]


def table_headers(names: Sequence[str]) -> list[str]:
    return ["finished (UTC)", "kind", "result", "total", *names, "apt lock", "fingerprint hash", "vs previous"]


def table_cells(row: Row, names: Sequence[str]) -> list[str]:
    """One run's cells (plain text) in `table_headers` order."""
    run = row.run
    by_name = {stage.name: stage for stage in run.stages}
    stage_cells = [f"{fmt_seconds(by_name[n].seconds)} {by_name[n].status}" if n in by_name else "-" for n in names]
    result = "ok" if run.succeeded else "FAILED"
    if run.drift_clean is False:
        result += f" (drift: {len(run.drift_items)})" if run.drift_items else " (drift)"
    fingerprint = run.fingerprint[:FINGERPRINT_CHARS] if run.fingerprint else "-"
    return [
        run.finished.strftime("%Y-%m-%d %H:%M:%S"),
        run.kind,
        result,
        fmt_seconds(run.total_seconds),
        *stage_cells,
        apt_lock_cell(run),
        fingerprint,
        row.change,
    ]


def apt_lock_cell(run: Run) -> str:
    if run.apt_lock is None:
        return "-"
    if run.lock_stale:
        return f"{run.apt_lock} LOCK STALE ({len(run.lock_stale)} moved)"
    return run.apt_lock


# --- rendering -------------------------------------------------------------------------


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_markdown(env: str, rows: Sequence[Row], skipped_lines: int) -> str:
    runs = [row.run for row in rows]
    names = stage_names(runs)
    headers = table_headers(names)
    lines = [f"# Rebuilds and nightlies: {env}", "", _md_row(headers), "|---" * len(headers) + "|"]
    for row in reversed(rows):
        cells = table_cells(row, names)
        if not row.run.succeeded:
            cells[2] = f"**{cells[2]}**"
        lines.append(_md_row(cells))
    lines += ["", f"![stage durations]({CHART_NAME})", ""]
    lines += _latest_run_markdown(runs[-1])
    lines += ["", f"## Stage times over these {len(runs)} runs (skipped stages not counted)", ""]
    lines += [_md_row(["stage", "runs", "median", "max"]), "|---" * 4 + "|"]
    for name, (count, median, longest) in stage_stats(runs).items():
        lines.append(_md_row([name, str(count), fmt_seconds(median), fmt_seconds(longest)]))
    if skipped_lines:
        lines += ["", f"{skipped_lines} malformed line(s) in history.jsonl were skipped."]
    return "\n".join(lines) + "\n"


def _latest_run_markdown(run: Run) -> list[str]:
    lines = [f"## Latest run ({run.kind}, {run.finished:%Y-%m-%d %H:%M:%S} UTC)", ""]
    if run.from_image:
        lines += [f"Built from image: `{run.from_image}`", ""]
    if run.lock_stale:
        lines += ["**LOCK STALE**: the committed apt lock could not be installed; this run used a local override:", ""]
        lines += [*[f"- {item}" for item in run.lock_stale], "", "Adopt it: `invoke lock --apt`, review, commit.", ""]
    if run.drift_items:
        lines += ["Drift:", "", *[f"- {item}" for item in run.drift_items], ""]
    if not run.tool_versions:
        return [*lines, "Tool versions: not recorded for this run."]
    lines += [_md_row(["tool", "version"]), "|---|---|"]
    return lines + [_md_row([tool, version]) for tool, version in sorted(run.tool_versions.items())]


HTML_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; white-space: nowrap; }
th { background: #eee; }
tr.failed td { background: #fde2e2; }
img { max-width: 100%; }
"""


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for index, cells in enumerate(rows):
        css = f' class="{classes[index]}"' if index < len(classes) and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


def render_html(env: str, rows: Sequence[Row], skipped_lines: int) -> str:
    runs = [row.run for row in rows]
    names = stage_names(runs)
    newest_first = list(reversed(rows))
    latest = runs[-1]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Rebuilds and nightlies: {html.escape(env)}</title>",
        f"<style>{HTML_STYLE}</style></head><body>",
        f"<h1>Rebuilds and nightlies: {html.escape(env)}</h1>",
        _html_table(
            table_headers(names),
            [table_cells(row, names) for row in newest_first],
            ["" if row.run.succeeded else "failed" for row in newest_first],
        ),
        f'<img src="{CHART_NAME}" alt="stage durations per run">',
        f"<h2>Latest run ({html.escape(latest.kind)}, {latest.finished:%Y-%m-%d %H:%M:%S} UTC)</h2>",
    ]
    if latest.from_image:
        parts.append(f"<p>Built from image: <code>{html.escape(latest.from_image)}</code></p>")
    if latest.lock_stale:
        parts.append(
            "<p><strong>LOCK STALE</strong>: the committed apt lock could not be installed; this run used a local "
            "override (adopt it: <code>invoke lock --apt</code>, review, commit):</p><ul>"
            + "".join(f"<li>{html.escape(i)}</li>" for i in latest.lock_stale)
            + "</ul>"
        )
    if latest.drift_items:
        parts.append("<p>Drift:</p><ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in latest.drift_items) + "</ul>")
    if latest.tool_versions:
        parts.append(_html_table(["tool", "version"], sorted(latest.tool_versions.items())))
    else:
        parts.append("<p>Tool versions: not recorded for this run.</p>")
    parts.append(f"<h2>Stage times over these {len(runs)} runs (skipped stages not counted)</h2>")
    stats = [[n, str(c), fmt_seconds(m), fmt_seconds(x)] for n, (c, m, x) in stage_stats(runs).items()]
    parts.append(_html_table(["stage", "runs", "median", "max"], stats))
    if skipped_lines:
        parts.append(f"<p>{skipped_lines} malformed line(s) in history.jsonl were skipped.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_chart(env: str, runs: Sequence[Run], path: Path) -> None:
    """Stacked bars of stage minutes, one bar per run (oldest left); failed runs get a red
    outline and a "FAILED" mark above the bar."""
    names = stage_names(runs)
    figure = Figure(figsize=(max(6.0, 0.6 * len(runs) + 3), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = _colours(len(names))
    positions = list(range(len(runs)))
    bottoms = [0.0] * len(runs)
    for name, colour in zip(names, colours, strict=True):
        minutes = [_stage_seconds(run, name) / 60 for run in runs]
        edges = ["red" if not run.succeeded else "white" for run in runs]
        axes.bar(positions, minutes, bottom=bottoms, color=colour, edgecolor=edges, label=name)
        bottoms = [b + m for b, m in zip(bottoms, minutes, strict=True)]
    for position, run, height in zip(positions, runs, bottoms, strict=True):
        if not run.succeeded:
            axes.text(position, height, "FAILED", color="red", ha="center", va="bottom", fontsize=8)
    axes.set_xticks(positions, [f"{run.finished:%m-%d %H:%M}\n{run.kind}" for run in runs], fontsize=7, rotation=45)
    axes.set_xlabel("run finished (UTC)")
    axes.set_ylabel("stage duration (minutes)")
    axes.set_title(f"Stage durations per run: {env}")
    axes.margins(y=0.1)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="stage")
    figure.savefig(path, dpi=100)


def _colours(count: int) -> list[tuple[float, float, float, float]]:
    palette = colormaps["tab10" if count <= 10 else "tab20"]
    return [palette(index % palette.N) for index in range(count)]


def _stage_seconds(run: Run, name: str) -> float:
    return sum(stage.seconds for stage in run.stages if stage.name == name)


# --- entry point -----------------------------------------------------------------------


def write_report(env: str, runs: int = 20) -> ReportPaths:
    """Render the report of the last `runs` rebuild/nightly runs of `env`; returns the paths."""
    if runs < 1:
        raise DisposableError(f"A report needs at least one run (asked for {runs}).")
    history_file = state_dir(env) / "history.jsonl"
    if not history_file.exists():
        raise DisposableError(
            f"No run history for environment '{env}' ({history_file} does not exist).",
            f"Run `invoke rebuild --env {env}` first: every rebuild and nightly appends its record there.",
        )
    history = read_history(history_file)
    rows = recent_rows(history, runs)
    if not rows:
        raise DisposableError(
            f"No rebuild or nightly runs in {history_file} ({history.skipped_lines} malformed line(s) skipped).",
            f"Run `invoke rebuild --env {env}` first.",
        )
    reports = state_dir(env) / "reports"
    reports.mkdir(exist_ok=True)
    paths = ReportPaths(reports / "report.md", reports / "report.html", reports / CHART_NAME)
    render_chart(env, [row.run for row in rows], paths.chart)
    paths.markdown.write_text(render_markdown(env, rows, history.skipped_lines))
    paths.html.write_text(render_html(env, rows, history.skipped_lines))
    if history.skipped_lines:
        say(f"WARNING: {history.skipped_lines} malformed line(s) in {history_file} were skipped.")
    return paths
