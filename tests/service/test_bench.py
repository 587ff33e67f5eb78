"""The benchmark's parts that need no server: workloads, the percentile rule, expected
statuses, the ramp, the wrk cross-check's parsing and its missing-tool error, the
figures over repetitions and the markdown tables."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from demand_predictor import artifact
from demand_predictor.bench import __main__ as bench
from demand_predictor.bench import report, workloads
from demand_predictor.bench.loadgen import PhaseResult, run_phase
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def mix(model_dir: Path) -> workloads.Workload:
    return workloads.mix(artifact.read_manifest(model_dir).features)


def test_mix_has_its_rows_points_and_invalid_requests(mix: workloads.Workload) -> None:
    assert len(mix.bodies) == 500 and min(mix.rows) == 1 and max(mix.rows) == 32
    assert sum(1 for s in mix.expected if s == 422) == 10
    instances = [row for body in mix.bodies for row in json.loads(body)["instances"]]
    points = sum(1 for row in instances if "lat" in row)
    assert 0.25 < points / len(instances) < 0.35
    assert 8 < mix.mean_rows < 14


def test_mix_is_deterministic(model_dir: Path, mix: workloads.Workload) -> None:
    assert workloads.mix(artifact.read_manifest(model_dir).features).bodies == mix.bodies


def _chosen(mix: workloads.Workload) -> list[int]:
    """Every invalid body and the first 25."""
    return [i for i, s in enumerate(mix.expected) if s == 422] + list(range(25))


def test_service_and_naive_answer_the_mix_as_expected(
    mix: workloads.Workload, model_dir: Path, client: TestClient
) -> None:
    """200 for the valid bodies, 422 for the invalid ones."""
    from demand_predictor.bench.baselines import naive_app

    naive = TestClient(naive_app(model_dir))
    for index in _chosen(mix):
        for who in (client, naive):
            response = who.post(
                "/v1/predict",
                content=mix.bodies[index],
                headers={"content-type": "application/json"},
            )
            assert response.status_code == mix.expected[index], (index, response.text)


def test_litserve_request_model_refuses_exactly_the_invalid_bodies(
    mix: workloads.Workload, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("litserve")
    from demand_predictor.bench import litserve_server
    from pydantic import ValidationError

    monkeypatch.setenv(litserve_server.MODEL_DIR_ENV, str(model_dir))
    litserve_server._spec.cache_clear()
    for index in _chosen(mix):
        try:
            litserve_server.LitRequest.model_validate_json(mix.bodies[index])
            refused = False
        except ValidationError:
            refused = True
        assert refused == (mix.expected[index] == 422), index
    litserve_server._spec.cache_clear()


def test_a_percentile_needs_ten_samples_above_it() -> None:
    def summary(n: int) -> dict[str, Any]:
        result = PhaseResult("t", "p", 1.0, 1.0, ok=n, ok_latency_s=[0.001] * n)
        return result.summary(min_tail=10)

    assert summary(999)["p99_ms"] is None and summary(1000)["p99_ms"] == 1.0
    assert summary(19)["p50_ms"] is None and summary(20)["p50_ms"] == 1.0
    assert summary(9999)["p999_ms"] is None and summary(10_000)["p999_ms"] == 1.0
    assert summary(1000)["latency_samples"] == 1000
    legacy = PhaseResult("t", "p", 1.0, 1.0, ok=3, ok_latency_s=[0.001] * 3).summary()
    assert legacy["p99_ms"] == 1.0  # without min_tail: as before (gpu_check, tests)


def test_expected_statuses_and_rows_are_counted() -> None:
    """422 where one is expected is not an error; a 422 where 200 was due is."""

    async def scenario() -> dict[str, Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                status = b"422 Unprocessable" if b"bad" in body else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\n{}")
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        bodies = [b'{"ok": 1}', b'{"bad": 1}', b'{"bad": 2}']
        result = await run_phase(
            "127.0.0.1", port, "/v1/predict", bodies, 200, 0.3, "t", "p",
            expected=[200, 422, 200], rows=[5, 1, 1],
        )  # fmt: skip
        server.close()
        return {"result": result, "summary": result.summary(min_tail=10)}

    out = asyncio.run(scenario())
    result = out["result"]
    assert result.scheduled > 20
    assert result.ok + result.invalid_ok + result.errors == result.scheduled
    assert result.ok_rows == 5 * result.ok
    assert result.invalid_ok > 0 and result.errors > 0  # body 3: 422 where 200 was due
    assert out["summary"]["p99_ms"] is None  # far fewer than 1,000 samples


def _bench(plan: bench.Plan | None = None) -> bench.Bench:
    load = workloads.one_row(count=4)
    return bench.Bench(plan or bench.QUICK, {"one_row": load}, 10, 3.0, None, False, Path("."))


def _fake_ramp(b: bench.Bench, capacity: float, p99_ms: float = 5.0) -> list[float]:
    tried: list[float] = []

    async def step(target: Any, rep: int, load: Any, rate: float) -> dict[str, Any]:
        tried.append(rate)
        return {"passed": rate <= capacity, "p99_ms": p99_ms if rate <= capacity else 80.0}

    b.ramp_step = step  # type: ignore[method-assign]
    return tried


def _target(name: str = "service") -> Any:
    return type("T", (), {"name": name})()


def test_ramp_climbs_the_grid_then_bisects() -> None:
    b = _bench()
    tried = _fake_ramp(b, capacity=700, p99_ms=30.0)  # close to the SLO: every grid point
    best = asyncio.run(b.ramp(_target(), 1, b.loads["one_row"]))
    assert tried == [200, 280, 392, 549, 768, round((549 * 768) ** 0.5)]
    assert best == 649


def test_ramp_skips_grid_points_far_below_the_slo() -> None:
    b = _bench()
    tried = _fake_ramp(b, capacity=700, p99_ms=5.0)
    best = asyncio.run(b.ramp(_target(), 1, b.loads["one_row"]))
    assert tried == [200, 392, 768, 549, 649]  # 768 failed: the skipped 549, then bisect
    assert best == 649


def test_later_repetitions_start_one_step_below_and_walk_down_on_failure() -> None:
    b = _bench()
    _fake_ramp(b, capacity=700)
    asyncio.run(b.ramp(_target(), 1, b.loads["one_row"]))
    tried = _fake_ramp(b, capacity=700)
    asyncio.run(b.ramp(_target(), 2, b.loads["one_row"]))
    assert tried == [392, 768, 549, 649]  # from one grid point below 649's
    tried = _fake_ramp(b, capacity=100)  # much slower now: walk down until a pass
    best = asyncio.run(b.ramp(_target(), 3, b.loads["one_row"]))
    assert tried == [392, 280, 200, 143, 102, 73, 86] and best == 86
    tried = _fake_ramp(b, capacity=10)  # below the lowest rate tried: 0, not below ramp_min
    assert asyncio.run(b.ramp(_target("other"), 1, b.loads["one_row"])) == 0
    assert min(tried) >= b.plan.ramp_min


def test_phase_durations_hold_enough_samples() -> None:
    b = _bench()
    load = b.loads["one_row"]
    assert b.duration(83, 5, load) == pytest.approx(1.15 * 1000 / 83, abs=0.01)
    assert b.duration(5000, 2, load) == 2
    assert b.duration(1, 2, load) == b.plan.max_phase_s


WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:1/v1/predict
  1 threads and 64 connections
WRK_JSON {"requests":20000,"duration_us":5000000,"bytes":1,"connect_errors":0,\
"read_errors":0,"write_errors":0,"non_2xx_3xx":1000,"timeouts":0,"p50_us":900,"p99_us":4000}
"""


def test_wrk_summary_is_parsed() -> None:
    parsed = bench.parse_wrk(WRK_OUTPUT)
    assert parsed["requests_per_s"] == 4000 and parsed["ok_per_s"] == 3800
    with pytest.raises(RuntimeError, match="WRK_JSON"):
        bench.parse_wrk("nothing")


def test_missing_wrk_is_an_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="Debian package `wrk`"):
        bench.wrk_binary()


def _results(reps: int = 3) -> dict[str, Any]:
    phases, max_rates, crosschecks = [], [], []
    for rep in range(1, reps + 1):
        for target, rate in (("service", 3000 + rep), ("naive", 1000), ("floor", 4000),
                             ("floor_fastapi", 4500), ("no_batching", 1500)):  # fmt: skip
            max_rates.append({"target": target, "scenario": "one_row", "rep": rep,
                              "max_rate": rate, "rows_per_s": rate, "latency_samples": 2000,
                              "p99_ms": 20.0})  # fmt: skip
            phases.append({"rep": rep, "scenario": "one_row", "target": target, "phase": "ramp",
                           "offered_rate": rate, "p99_ms": 20.0, "p50_ms": 2.0,
                           "latency_samples": 2000, "generator_lagged": rep == 1})  # fmt: skip
        phases.append({"rep": rep, "scenario": "one_row", "target": "service", "phase": "spike",
                       "offered_rate": 83.0, "p99_ms": 4.0 + rep, "p50_ms": 1.0,
                       "latency_samples": 1100})  # fmt: skip
        for target in ("service", "no_early_refusal"):
            phases.append({"rep": rep, "scenario": "one_row", "target": target,
                           "phase": "overload", "offered_rate": 9000.0, "p99_ms": 80.0,
                           "p50_ms": 9.0, "latency_samples": 30000, "achieved_ok_rps": 3000.0,
                           "rejection_rate": 0.5, "error_rate": 0.0})  # fmt: skip
        crosschecks.append({"target": "floor", "rep": rep, "scenario": "one_row",
                            "command": "wrk -t1 -c64", "generator_ok_per_s": 3900.0,
                            "wrk": {"requests_per_s": 4100.0, "ok_per_s": 4000.0}})  # fmt: skip
    described = {"label": "x", "model": "fused", "server": "uvicorn"}
    return {
        "when": "now", "mode": "quick", "wall_s": 10.0, "repetitions": reps,
        "machine": {"commit": "abc", "dirty": False, "cpu_model": "cpu", "logical_cpus": 2,
                    "python": "3.11", "versions": {"torch": "t", "fastapi": "f",
                    "uvicorn": "u", "litserve": "l", "wrk": "wrk 4"},
                    "pinning": {"generator": [0], "servers": [1], "how": "affinity"}},
        "percentile_rule": {"p99_min_samples": 1000}, "plan": {"ramp_factor": 1.4},
        "slo": {"p99_ms": 50.0, "max_not_ok_rate": 0.001}, "generator_lag_flag_ms": 20.0,
        "overload_factor": 3.0,
        "scenarios": {"one_row": {"description": "one row"}},
        "contenders": {name: {**described, "label": name} for name in
                       ("service", "naive", "floor", "floor_fastapi", "no_batching",
                        "no_early_refusal")},
        "notes": [], "max_rates": max_rates, "phases": phases, "crosschecks": crosschecks,
    }  # fmt: skip


def test_figures_are_min_median_max_over_repetitions() -> None:
    figures = report.aggregate(_results())
    service = figures["max_rate"]["one_row"]["service"]
    assert (service["min"], service["median"], service["max"], service["n"]) == (
        3001,
        3002,
        3003,
        3,
    )
    assert service["samples"] == [2000, 2000, 2000]
    assert figures["service_over"]["one_row"]["naive"]["median"] == pytest.approx(3.002)
    assert figures["ablation_over_service"]["one_row"]["no_batching"]["median"] == pytest.approx(
        1500 / 3002
    )
    assert figures["spike_p99_ms"]["one_row"]["service"]["median"] == 6.0
    assert figures["generator_lagged_phases"] == 5
    checks = report.check_targets(figures)
    assert checks["max_rate_vs_naive"]["met"] and checks["spike_83rps_p99_ms"]["met"]
    assert checks["max_rate_vs_floor"]["met"]


def test_markdown_tables_show_spread_and_samples(tmp_path: Path) -> None:
    results = _results()
    text = report.markdown(results)
    assert "### Like-for-like: one_row" in text and "### Ablation" in text
    assert "| service | fused | 3,002 (3,001-3,003) | 1 | 2,000 | 6.0 (5.0-7.0) | 1,100 |" in text
    assert "`DP_BATCHING=false`" in text and "### Cross-check with wrk" in text
    assert "0.97 (0.97-0.97)" in text  # generator 3,900 / wrk 4,000 2xx
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert report.main([str(path)]) == 0
    assert (tmp_path / "tables.md").read_text().startswith("<!-- generated")


def test_contenders_share_the_model_code() -> None:
    setup = bench.Setup(Path("/m"), "plain", Path("/o"), {1}, False)
    for contender in bench.CONTENDERS:
        cmd, env = setup.command(contender, 8000)
        if contender.service_stack:
            assert env["DP_FUSED_MODEL"] == "false"
        elif contender.kind in ("naive", "litserve"):
            assert cmd[cmd.index("--model") + 1] == "plain"
    fused = bench.Setup(Path("/m"), "fused", Path("/o"), {1}, False)
    _, env = fused.command(bench.BY_NAME["plain_model"], 8000)
    assert env["DP_FUSED_MODEL"] == "false"  # the ablation always runs the plain model
    cmd, _ = fused.command(bench.BY_NAME["litserve"], 8000)
    assert "--fast-queue" in cmd and cmd[cmd.index("--workers-per-device") + 1] == "1"


def test_a_ramp_step_the_generator_sent_late_is_measured_again_pass_or_fail() -> None:
    """The floor once 'maxed out' at 169 req/s: its first step coincided with a 118 ms
    stall of the generator itself. Such a step measures this machine, not the server."""
    b = _bench()
    lagged = iter([True, False, True, True, True])
    calls: list[float] = []

    async def phase(
        target: Any, rep: int, load: Any, name: str, rate: float, seconds: float
    ) -> dict[str, Any]:
        calls.append(rate)
        late = next(lagged)
        return {"p99_ms": 120.0 if late else 3.0, "not_ok_rate": 0.0, "generator_lagged": late}

    b.phase = phase  # type: ignore[method-assign]
    first = asyncio.run(b.ramp_step(_target(), 1, b.loads["one_row"], 200.0))
    assert calls == [200.0, 200.0] and first["passed"] and "discarded" not in first
    calls.clear()
    last = asyncio.run(b.ramp_step(_target(), 1, b.loads["one_row"], 200.0))
    assert calls == [200.0] * (1 + bench.GENERATOR_RETRIES)  # then it is judged as measured
    assert not last["passed"] and "discarded" not in last


def test_an_overload_phase_the_generator_could_not_send_reports_no_latency(tmp_path: Path) -> None:
    """At 3x the service's maximum the generator on its one core sent 130-280 ms late and
    'measured' a p99 of 1.6-2.9 s of its own making: such a phase is counted as
    generator-bound, its latency left out; a discarded attempt is not counted at all."""
    results = _results()
    overload = [
        p for p in results["phases"] if p["phase"] == "overload" and p["target"] == "service"
    ]
    overload[0]["generator_lagged"], overload[0]["generator_lag_p99_ms"] = True, 280.0
    overload[0]["p99_ms"] = 2690.0
    results["phases"].append({**overload[1], "p99_ms": 5000.0, "discarded": "generator late"})
    figures = report.aggregate(results)
    service = figures["overload"]["service"]
    assert service["p99_ms"]["n"] == 2 and service["p99_ms"]["max"] == 80.0
    assert service["generator_bound"] == 1 and service["offered"]["n"] == 3
    for phase in overload:
        phase["generator_lagged"] = True
    checks = report.check_targets(report.aggregate(results))
    assert checks["overload_p99_accepted_ms"]["met"] is None
    assert "generator-bound" in checks["overload_p99_accepted_ms"]["value"]


def test_the_floor_target_is_also_judged_by_wrk_when_the_generator_bounds_the_floor() -> None:
    """The first run: service / floor 0.71 by the generator's maximum at the SLO (the floor's
    maximum was the generator's own limit) but 0.39 by wrk's saturation throughput."""
    results = _results()
    for rep in range(1, 4):
        results["crosschecks"].append({"target": "service", "rep": rep, "scenario": "one_row",
                                       "command": "wrk -t1 -c64", "generator_ok_per_s": 1500.0,
                                       "wrk": {"requests_per_s": 1600.0, "ok_per_s": 1600.0}})  # fmt: skip
    checks = report.check_targets(report.aggregate(results))
    assert checks["max_rate_vs_floor"]["met"]  # 3,002 / 4,000 by the generator
    wrk = checks["saturation_vs_floor_by_wrk"]
    assert wrk["met"] is False and wrk["value"].startswith("0.40x")
