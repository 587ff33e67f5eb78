"""The run report: table rows, fingerprint changes, tool versions, stage statistics, the
chart (a real PNG rendered by matplotlib) and the HTML page, from a history file written
into an isolated state directory (the `state_dir` fixture sets DML_STATE_DIR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from disposable.errors import DisposableError
from disposable.proof import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _record(
    title: str,
    finished: str,
    configure_seconds: float,
    *,
    failed: bool = False,
    fingerprint: str | None = None,
    tool_versions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A history record shaped like pipeline.run_stages writes it; the optional keys only when given."""
    stages = [
        {"name": "destroy", "status": "ok", "seconds": 30.0, "detail": ""},
        {"name": "provision", "status": "ok", "seconds": 90.0, "detail": ""},
        {"name": "configure", "status": "failed" if failed else "ok", "seconds": configure_seconds, "detail": ""},
        {"name": "verify", "status": "skipped" if failed else "ok", "seconds": 0.0 if failed else 20.0, "detail": ""},
    ]
    record: dict[str, Any] = {
        "title": title,
        "environment": "local",
        "finished_at": finished,
        "succeeded": not failed,
        "total_seconds": sum(s["seconds"] for s in stages),
        "stages": stages,
    }
    if fingerprint is not None:
        record["fingerprint"] = {"hash": fingerprint, "hosts": {"dml-local-1": fingerprint}}
    if tool_versions is not None:
        record["tool_versions"] = tool_versions
    return record


def _write_history(state_dir: Path, lines: list[str]) -> Path:
    path = state_dir / "local" / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


HASH_A = "a1b2c3d4e5f6" + "0" * 52
HASH_B = "ffeeddccbbaa" + "1" * 52


@pytest.fixture
def history(state_dir: Path) -> Path:
    """Five runs: an old record without the new keys, a provision record (not a rebuild or
    nightly), a fingerprinted rebuild, the same fingerprint, a changed one that failed."""
    records = [
        _record("nightly", "2026-11-20T03:30:00+00:00", 400.0),
        {
            "title": "provision",
            "environment": "local",
            "finished_at": "2026-11-20T10:00:00+00:00",
            "succeeded": True,
            "total_seconds": 5.0,
            "stages": [],
        },
        _record("rebuild", "2026-11-21T09:15:00+00:00", 300.0, fingerprint=HASH_A),
        _record("nightly", "2026-11-22T03:31:00+00:00", 360.0, fingerprint=HASH_A),
        _record(
            "nightly",
            "2026-11-23T03:32:00+00:00",
            500.0,
            failed=True,
            fingerprint=HASH_B,
            tool_versions={"terraform": "1.9.8", "ansible-core": "2.17.4"},
        ),
    ]
    return _write_history(state_dir, [json.dumps(r) for r in records])


def _table_rows(markdown: str) -> list[list[str]]:
    """The cells of the run table's data rows (the first table in the file)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| finished (UTC)"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_table_lists_rebuilds_and_nightlies_newest_first(history: Path) -> None:
    markdown = report.write_report("local").markdown.read_text()

    assert "| finished (UTC) | kind | result | total | destroy | provision | configure | verify |" in markdown
    rows = _table_rows(markdown)
    assert [row[:3] for row in rows] == [
        ["2026-11-23 03:32:00", "nightly", "**FAILED**"],
        ["2026-11-22 03:31:00", "nightly", "ok"],
        ["2026-11-21 09:15:00", "rebuild", "ok"],
        ["2026-11-20 03:30:00", "nightly", "ok"],
    ]  # the provision record is not a rebuild or nightly
    assert rows[0][3:8] == ["10m20.0s", "30.0s ok", "1m30.0s ok", "8m20.0s failed", "0.0s skipped"]


def test_fingerprint_column_says_same_or_changed(history: Path) -> None:
    rows = _table_rows(report.write_report("local").markdown.read_text())

    assert [row[-2:] for row in rows] == [
        ["ffeeddccbbaa", "CHANGED"],
        ["a1b2c3d4e5f6", "same"],
        ["a1b2c3d4e5f6", "-"],  # no earlier fingerprint to compare with
        ["-", "-"],  # an old record without the key
    ]


def test_latest_tool_versions_and_stage_statistics(history: Path) -> None:
    markdown = report.write_report("local").markdown.read_text()

    assert "| terraform | 1.9.8 |" in markdown and "| ansible-core | 2.17.4 |" in markdown
    # configure over 400, 300, 360, 500 s: median 380 s, max 500 s; verify skipped once.
    assert "| configure | 4 | 6m20.0s | 8m20.0s |" in markdown
    assert "| verify | 3 | 20.0s | 20.0s |" in markdown


def test_runs_limits_the_table_to_the_latest(history: Path) -> None:
    rows = _table_rows(report.write_report("local", runs=2).markdown.read_text())

    assert [row[0] for row in rows] == ["2026-11-23 03:32:00", "2026-11-22 03:31:00"]
    assert rows[1][-1] == "same"  # compared with a run no longer shown


def test_chart_is_a_png_and_the_html_embeds_it(history: Path) -> None:
    paths = report.write_report("local")

    assert paths.chart.name == "stage-durations.png" and paths.chart.parent == paths.markdown.parent
    data = paths.chart.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    page = paths.html.read_text()
    assert '<img src="stage-durations.png"' in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert '<tr class="failed"><td>2026-11-23 03:32:00</td><td>nightly</td><td>FAILED</td>' in page
    assert "<td>CHANGED</td>" in page


def test_malformed_lines_are_skipped_with_a_warning(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_history(
        state_dir,
        [
            json.dumps(_record("rebuild", "2026-11-21T09:15:00+00:00", 300.0)),
            '{"title": "nightly", "finished_at": "2026-11-22T03',  # truncated by a crash
            json.dumps({"title": "nightly", "finished_at": "not a date", "stages": []}),
            json.dumps(_record("nightly", "2026-11-22T03:31:00+00:00", 360.0)),
        ],
    )

    markdown = report.write_report("local").markdown.read_text()

    assert len(_table_rows(markdown)) == 2
    assert "2 malformed line(s) in history.jsonl were skipped." in markdown
    out = capsys.readouterr().out
    assert "history.jsonl:2: skipped a malformed history line" in out
    assert "history.jsonl:3: skipped a malformed history line" in out


def test_missing_history_tells_to_rebuild_first(state_dir: Path) -> None:
    with pytest.raises(DisposableError) as raised:
        report.write_report("local")

    assert "No run history for environment 'local'" in raised.value.message
    assert "invoke rebuild --env local" in raised.value.hint


def test_history_without_rebuilds_or_nightlies_is_an_error(state_dir: Path) -> None:
    _write_history(state_dir, ["{broken"])

    with pytest.raises(DisposableError, match="No rebuild or nightly runs"):
        report.write_report("local")


def test_bench_rebuild_writes_spread_table_and_chart(tmp_path: Path) -> None:
    from disposable.environments import get_environment
    from disposable.proof import benchrebuild

    samples = benchrebuild.Samples()
    for value in (60.0, 55.0, 70.0):
        samples.add("rebuild --from-image", "configure", value)
    samples.add("verify", "total", 9.5)
    out = benchrebuild.write(get_environment("local"), 3, samples, tmp_path)
    record = json.loads((out / "results.json").read_text())
    row = next(r for r in record["rows"] if r["stage"] == "configure")
    assert (row["n"], row["min_s"], row["median_s"], row["max_s"]) == (3, 55.0, 60.0, 70.0)
    assert record["commit"] and record["tool_versions"]["python"] and record["cpus"]
    assert "| rebuild --from-image | configure | 3 |" in (out / "table.md").read_text()
    assert (out / "stages.png").stat().st_size > 1000


def test_bench_rebuild_passes_the_layout_to_both_rebuilds_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--var reaches the full rebuild and the image rebuild of every run; the record names the
    variables and the hosts, and another layout does not overwrite the default's results."""
    from disposable.environments import get_environment
    from disposable.pipeline import StageResult
    from disposable.proof import benchrebuild

    env = get_environment("local")
    calls: list[tuple[dict[str, str], bool]] = []

    def fake_rebuild(_env: object, variables: dict[str, str], from_image: bool = False) -> list[StageResult]:
        calls.append((dict(variables), from_image))
        return [StageResult("configure", "ok", 12.0)]

    monkeypatch.setattr(benchrebuild.rebuilding, "rebuild", fake_rebuild)
    monkeypatch.setattr(benchrebuild.bake, "bake", lambda *_: "dml-gpu-x")
    monkeypatch.setattr(benchrebuild.configuring, "configure", lambda *_: None)
    monkeypatch.setattr(benchrebuild, "verify", lambda *_: None)
    monkeypatch.setattr(benchrebuild, "_drift_clean", lambda *_: None)
    monkeypatch.setattr(benchrebuild, "measured_hosts", lambda *_: [{"name": "dml-local-1", "groups": ["inference"]}])
    layout = {"lb_count": "0", "features_count": "0"}
    out = benchrebuild.run(env, 2, layout, out=tmp_path)
    assert calls == [(layout, False), (layout, True), (layout, False), (layout, True)]
    record = json.loads((out / "results.json").read_text())
    assert record["layout"]["variables"] == layout and record["runs"] == 2
    assert "--var features_count=0 --var lb_count=0; hosts: dml-local-1 (inference)" in (out / "table.md").read_text()
    assert benchrebuild.results_dir(env, layout).name == "bench-rebuild-features_count=0,lb_count=0"
    assert benchrebuild.results_dir(env, {}).name == "bench-rebuild"
