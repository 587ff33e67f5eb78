"""Side-by-side benchmark on loopback: ``python -m demand_predictor.bench --out DIR``.

Contenders (same model code, same feature code, same machine, same run):
  like-for-like:
    service        - this service (timer-free batching, admission control)
    naive          - FastAPI + pydantic body, per-request inference in the thread pool
    litserve       - LitServe configured as its docs recommend (if installed)
    floor          - the HTTP floor of the service's own stack: the service's server,
                     protocol class, settings and front middleware, a constant answer
    floor_fastapi  - the HTTP floor of plain uvicorn + FastAPI (a constant answer)
  ablation (the service with one mechanism off, DP_* switches):
    no_batching (DP_BATCHING=false), plain_model (DP_FUSED_MODEL=false),
    pydantic_only (DP_FAST_VALIDATOR=false), no_early_refusal (DP_EARLY_REFUSAL=false)
Every contender runs the model selected by --model (default fused; plain_model always
runs the plain one).

Scenarios (workloads.py): one_row (1 row by zone_id) and mix (1-32 rows, lat/lon rows,
2 % invalid requests that must get 422).

Phases, per repetition (default 3), each contender started afresh in each repetition:
spike (83 req/s), a ramp to the highest rate with p99 <= 50 ms and < 0.1 % non-200
(geometric steps, then one step at the geometric mean of the last pass and the first
failure; from the second repetition on it starts one step below the previous result),
overload (1.5x the service's one_row maximum of that repetition: service and
no_early_refusal), and the wrk cross-check (floor and service). A phase lasts long
enough for its percentile: a p99 needs 1,000 latency samples (10 above it) and is not
reported from fewer. A ramp step or overload phase during which the generator itself
sent late (send-lag p99 > 20 ms) measured this machine, not the server: it is measured
again (at most twice), the discarded attempt kept in results.json and marked; a phase
still late after that is reported as generator-bound, without its latency. (At 3x the
service's maximum, the first default, the generator on its one core could not send the
rate: 130-280 ms send lag, p99 1.6-2.9 s of its own making.)
Each server is pinned to CPU 1 and the generator (and wrk) to CPU 0 (2-core box).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demand_predictor.bench import report, workloads
from demand_predictor.bench.loadgen import run_phase
from demand_predictor.bench.workloads import Workload

SLO_P99_MS = 50.0
SPIKE_RATE = 83.0
SPIKE_P99_MS = 15.0  # the spike target (report.check_targets)
GENERATOR_LAG_MS = 20.0
GENERATOR_RETRIES = 2  # a ramp step or overload phase measured again when the generator sent late
SLO_NOT_OK = 0.001
MIN_TAIL = 10  # a percentile is reported with >= 10 samples above it: p99 needs 1,000
SERVICE_DIR = Path(__file__).resolve().parents[2]
REPO_DIR = SERVICE_DIR.parent
WRK_CONNECTIONS = 64


@dataclass(frozen=True)
class Plan:
    spike_s: float  # shortest spike phase (longer when its p99 needs more samples)
    ramp_step_s: float  # shortest ramp step (idem)
    ramp_start: float  # first ramp rate of the one_row scenario (mix: half)
    ramp_factor: float
    ramp_max: float
    ramp_min: float
    overload_s: float
    max_phase_s: float  # a phase stretched for its sample count stops here
    wrk_s: float


QUICK = Plan(5, 2, 200, 1.4, 8000, 40, 5, 30, 5)
FULL = Plan(20, 5, 150, 1.2, 10000, 40, 10, 60, 15)


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # service | floor | naive | floor_fastapi | litserve
    group: str  # like | ablation
    label: str
    env: dict[str, str] = field(default_factory=dict)  # DP_* switches
    scenarios: tuple[str, ...] = ("one_row", "mix")
    spike: bool = False
    ramp: bool = True
    overload: bool = False
    crosscheck: bool = False

    @property
    def service_stack(self) -> bool:
        return self.kind in ("service", "floor")


CONTENDERS = (
    Contender("service", "service", "like", "service", spike=True, overload=True,
              crosscheck=True),
    Contender("naive", "naive", "like", "naive FastAPI", spike=True),
    Contender("litserve", "litserve", "like", "LitServe", spike=True),
    Contender("floor", "floor", "like", "HTTP floor, service stack", scenarios=("one_row",),
              crosscheck=True),
    Contender("floor_fastapi", "floor_fastapi", "like", "HTTP floor, uvicorn + FastAPI",
              scenarios=("one_row",)),
    Contender("no_batching", "service", "ablation", "service without batching",
              {"DP_BATCHING": "false"}),
    Contender("plain_model", "service", "ablation", "service without the fused model",
              {"DP_FUSED_MODEL": "false"}),
    Contender("pydantic_only", "service", "ablation", "service without the fast validator",
              {"DP_FAST_VALIDATOR": "false"}),
    Contender("no_early_refusal", "service", "ablation", "service without early refusal",
              {"DP_EARLY_REFUSAL": "false"}, scenarios=("one_row",), ramp=False, overload=True),
)  # fmt: skip
BY_NAME = {c.name: c for c in CONTENDERS}


def run_loop(coroutine: Any) -> Any:
    """asyncio.run, on uvloop when installed: the generator spends less CPU per request,
    so less of its own lag ends up in the measured latencies (of every target)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(cpus: set[int] | None) -> Any:
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class Target:
    def __init__(
        self, contender: Contender, cmd: list[str], env: dict[str, str], log: Path, cpus: Any
    ) -> None:
        self.contender = contender
        self.name = contender.name
        self.port = int(env["BENCH_PORT"])
        self.log_file = log.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=pin(cpus),  # noqa: PLW1509 - only sched_setaffinity, no threads yet
            start_new_session=True,  # its own process group: stop() reaches its children
        )

    def _get(self, path: str) -> int:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)

    def wait_ready(self, probe: bytes, timeout: float = 120.0) -> None:
        """The model is loaded (service stack: /readyz 200) and a probe is answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if self.contender.service_stack and self._get("/readyz") != 200:
                    raise OSError("not ready")
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/v1/predict",
                    data=probe,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def stop(self) -> None:
        """SIGTERM the server's process group (LitServe forks workers), then SIGKILL."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        time.sleep(0.5)
        try:  # children that outlived their parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log_file.close()


@dataclass(frozen=True)
class Setup:
    """What every contender shares: the artifact, the model code, the cores."""

    model_dir: Path
    model_form: str  # fused | plain
    out: Path
    server_cpus: set[int] | None
    access_log: bool

    def litserve_settings(self) -> dict[str, Any]:
        cores = len(self.server_cpus) if self.server_cpus else (os.cpu_count() or 1)
        return {
            "fast_queue": True,
            "workers_per_device": cores,
            "num_api_servers": "default (= inference workers)",
            "max_batch_size": 64,
            "batch_timeout_s": 0.001,
            "accelerator": "cpu",
            "log_level": "warning",
            "generate_client_file": False,
        }

    def model_of(self, contender: Contender) -> str:
        """The model code ``contender`` runs: --model, except for the plain_model ablation."""
        return "plain" if contender.env.get("DP_FUSED_MODEL") == "false" else self.model_form

    def command(self, contender: Contender, port: int) -> tuple[list[str], dict[str, str]]:
        """The command line and extra environment of ``contender`` on ``port``."""
        python = sys.executable
        model = self.model_of(contender)
        if contender.service_stack:
            env = {
                "DP_MODEL_DIR": str(self.model_dir),
                "DP_PORT": str(port),
                "DP_TORCH_THREADS": "1",
                "DP_ACCESS_LOG": "true" if self.access_log else "false",
                "DP_FUSED_MODEL": "true" if model == "fused" else "false",
                **contender.env,
            }
            if contender.kind == "service":
                return [python, "-m", "demand_predictor", "serve"], env
            return [python, "-m", "demand_predictor.bench.baselines", "floor"], env
        if contender.kind in ("naive", "floor_fastapi"):
            cmd = [python, "-m", "demand_predictor.bench.baselines", contender.kind]
            cmd += ["--port", str(port)]
            if contender.kind == "naive":
                cmd += ["--model-dir", str(self.model_dir), "--model", model]
            return cmd, {}
        litserve = self.litserve_settings()
        cmd = [python, "-m", "demand_predictor.bench.litserve_server"]
        cmd += ["--model-dir", str(self.model_dir), "--port", str(port), "--model", model]
        cmd += ["--workers-per-device", str(litserve["workers_per_device"])]
        cmd += ["--max-batch-size", str(litserve["max_batch_size"])]
        cmd += ["--batch-timeout", str(litserve["batch_timeout_s"])]
        cmd += ["--fast-queue" if litserve["fast_queue"] else "--no-fast-queue"]
        return cmd, {}

    def describe(self, contender: Contender) -> dict[str, Any]:
        """The settings ``contender`` runs with, for results.json and the tables."""
        from demand_predictor.server import event_loop_options

        cmd, env = self.command(contender, 0)
        loop = event_loop_options()
        row: dict[str, Any] = {
            "label": contender.label,
            "group": contender.group,
            "kind": contender.kind,
            "command": " ".join(
                Path(cmd[0]).name if i == 0 else a for i, a in enumerate(cmd)
            ).replace("--port 0", "--port PORT"),
            "model": "-" if contender.kind.startswith("floor") else self.model_of(contender),
            "scenarios": list(contender.scenarios),
        }
        if contender.service_stack:
            row["env"] = {k: v for k, v in env.items() if k not in ("DP_MODEL_DIR", "DP_PORT")}
            row["server"] = (
                f"uvicorn loop={loop['loop']}, early-refusal protocol on {loop['http']}, "
                "backlog 2048, keep-alive 5 s, no server header, gc.freeze after warm-up"
            )
        elif contender.kind == "litserve":
            row["litserve"] = self.litserve_settings()
            row["server"] = "LitServe's uvicorn (its defaults: uvloop + httptools when installed)"
        else:
            row["server"] = (
                f"uvicorn.run loop={loop['loop']} http={loop['http']}, otherwise uvicorn "
                "defaults; FastAPI telemetry hooks off; gc.freeze at startup"
            )
        return row

    def start(self, contender: Contender) -> Target:
        port = free_port()
        cmd, extra = self.command(contender, port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DP_")}
        env.update(PYTHONPATH=str(SERVICE_DIR), BENCH_PORT=str(port), **extra)
        return Target(contender, cmd, env, self.out / f"{contender.name}.log", self.server_cpus)


def scrape_batch_histogram(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "dp_batch_size_rows":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    counts[sample.labels["le"]] = sample.value
    return counts


def histogram_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Batches per bucket during a phase (from cumulative Prometheus buckets)."""
    out: dict[str, int] = {}
    previous = 0.0
    for le in sorted(after, key=lambda k: float("inf") if k == "+Inf" else float(k)):
        cumulative = after[le] - before.get(le, 0.0)
        label = le if le == "+Inf" else str(int(float(le)))
        out[f"<={label}"] = int(cumulative - previous)
        previous = cumulative
    return {k: v for k, v in out.items() if v}


def passes(summary: dict[str, Any], slo_ms: float = SLO_P99_MS) -> bool:
    p99 = summary["p99_ms"]
    return p99 is not None and p99 <= slo_ms and summary["not_ok_rate"] < SLO_NOT_OK


def ramp_grid(start: float, factor: float, k: int) -> float:
    return float(round(start * factor**k))


WRK_SCRIPT = """-- POST one fixed JSON body; print a JSON summary line at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"connect_errors":%%d,"read_errors":%%d,"write_errors":%%d,"non_2xx_3xx":%%d,' ..
    '"timeouts":%%d,"p50_us":%%d,"p99_us":%%d}\\n', summary.requests, summary.duration,
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "bench: the wrk cross-check needs `wrk`, which is not installed: install the "
            "Debian package `wrk` (apt-get install --no-install-recommends wrk; "
            "./bootstrap.sh setup does), or pass --no-crosscheck to run without it"
        )
    return found


def parse_wrk(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            raw = json.loads(line[len("WRK_JSON ") :])
            seconds = raw["duration_us"] / 1e6
            errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]
            ok = raw["requests"] - raw["non_2xx_3xx"]
            return {
                **raw,
                "socket_errors": errors + raw["timeouts"],
                "requests_per_s": round(raw["requests"] / seconds, 1),
                "ok_per_s": round(ok / seconds, 1),
            }
    raise RuntimeError(f"no WRK_JSON line in wrk's output:\n{output[-2000:]}")


class Bench:
    def __init__(
        self,
        plan: Plan,
        loads: dict[str, Workload],
        min_tail: int,
        overload_factor: float,
        generator_cpus: set[int] | None,
        crosscheck: bool,
        out: Path,
    ) -> None:
        self.plan = plan
        self.loads = loads
        self.min_tail = min_tail
        self.overload_factor = overload_factor
        self.generator_cpus = generator_cpus
        self.crosscheck = crosscheck
        self.out = out
        self.results: list[dict[str, Any]] = []
        self.max_rates: list[dict[str, Any]] = []
        self.crosschecks: list[dict[str, Any]] = []
        self.previous_best: dict[tuple[str, str], float] = {}
        self.seed = 0

    def duration(self, rate: float, least_s: float, load: Workload) -> float:
        """Long enough for ``least_s`` and for a p99 from enough samples."""
        needed = 1.15 * self.min_tail * 100 / (rate * load.valid_share)
        return round(min(self.plan.max_phase_s, max(least_s, needed)), 2)

    async def phase(
        self,
        target: Target,
        rep: int,
        load: Workload,
        name: str,
        rate: float,
        seconds: float,
        max_connections: int = 256,
    ) -> dict[str, Any]:
        self.seed += 1
        service = target.contender.kind == "service"
        before = scrape_batch_histogram(target.port) if service else None
        result = await run_phase(
            "127.0.0.1", target.port, "/v1/predict", load.bodies, rate, seconds,
            target.name, name, seed=self.seed, max_connections=max_connections,
            expected=load.expected, rows=load.rows,
        )  # fmt: skip
        summary = {"rep": rep, "scenario": load.name, **result.summary(min_tail=self.min_tail)}
        lag = summary["generator_lag_p99_ms"]
        # At saturation the generator is meant to be ahead of the server: not flagged.
        late = name != "saturation" and lag is not None and lag > GENERATOR_LAG_MS
        summary["generator_lagged"] = late
        if before is not None:
            summary["batch_histogram"] = histogram_delta(
                before, scrape_batch_histogram(target.port)
            )
        if name != "warmup":
            self.results.append(summary)
            report.print_row(summary)
        await asyncio.sleep(0.5)  # let queues empty between phases
        return summary

    async def ramp_step(
        self, target: Target, rep: int, load: Workload, rate: float
    ) -> dict[str, Any]:
        """One ramp step, judged only when the generator kept its schedule: a step during
        which the generator itself sent late (send-lag p99 > GENERATOR_LAG_MS) measured
        this machine, not the server, so it is measured again (at most
        GENERATOR_RETRIES times), whether it passed or failed; the discarded attempt
        stays in results.json, marked."""
        seconds = self.duration(rate, self.plan.ramp_step_s, load)
        summary = await self.on_schedule(target, rep, load, "ramp", rate, seconds)
        summary["passed"] = passes(summary)
        return summary

    async def on_schedule(
        self, target: Target, rep: int, load: Workload, name: str, rate: float, seconds: float
    ) -> dict[str, Any]:
        """A phase measured again (at most GENERATOR_RETRIES times) while the generator
        itself sent late; each discarded attempt stays in results.json, marked."""
        for attempt in range(GENERATOR_RETRIES + 1):
            summary = await self.phase(target, rep, load, name, rate, seconds)
            if not summary.get("generator_lagged") or attempt == GENERATOR_RETRIES:
                return summary
            summary["discarded"] = "generator late: the phase was measured again"
        return summary

    async def ramp(self, target: Target, rep: int, load: Workload) -> float:
        """Highest rate that holds the SLO: on the grid start x factor^k, then one step
        at the geometric mean of the last pass and the first failure.

        Climbing skips a grid point while a step passes with p99 <= SLO / 5 (far from
        the limit); a failure after a skip tests the skipped point. From the second
        repetition on, the climb starts one grid point below the previous result. A
        first step that fails walks down until one passes (not below ``ramp_min``).
        """
        plan = self.plan
        start = plan.ramp_start if load.name == "one_row" else plan.ramp_start / 2

        def grid(k: int) -> float:
            return ramp_grid(start, plan.ramp_factor, k)

        k_min = 0
        while grid(k_min - 1) >= plan.ramp_min:
            k_min -= 1
        k = 0
        previous = self.previous_best.get((target.name, load.name))
        if previous:  # one grid point below the last repetition's result
            k = max(k_min, math.floor(math.log(previous / start, plan.ramp_factor)) - 1)
        best_k: int | None = None
        failed_k: int | None = None
        while grid(k) <= plan.ramp_max:
            step = await self.ramp_step(target, rep, load, grid(k))
            if step["passed"]:
                best_k = k
                if failed_k is not None:  # walked down from a failure: the pass below it
                    break
                far = step["p99_ms"] is not None and step["p99_ms"] <= SLO_P99_MS / 5
                k += 2 if far and grid(k + 2) <= plan.ramp_max else 1
            else:
                failed_k = k
                if best_k is not None or k - 1 < k_min:
                    break
                k -= 1
        if best_k is None:
            return 0.0
        if failed_k is not None:
            while failed_k - best_k > 1:  # a grid point skipped while climbing
                middle_k = (best_k + failed_k) // 2
                if (await self.ramp_step(target, rep, load, grid(middle_k)))["passed"]:
                    best_k = middle_k
                else:
                    failed_k = middle_k
        best = grid(best_k)
        if failed_k is not None:
            failed = grid(failed_k)
            middle = float(round(math.sqrt(best * failed)))
            if (
                best < middle < failed
                and (await self.ramp_step(target, rep, load, middle))["passed"]
            ):
                best = middle
        self.previous_best[(target.name, load.name)] = best
        return best

    def best_step(self, target: str, scenario: str, rep: int, rate: float) -> dict[str, Any]:
        for row in self.results:
            if (row["target"], row["scenario"], row["rep"], row["phase"]) == (
                target, scenario, rep, "ramp"
            ) and row["offered_rate"] == round(rate, 1) and row.get("passed") and not row.get("discarded"):  # fmt: skip
                return row
        return {}

    def service_max(self, rep: int) -> float | None:
        for row in self.max_rates:
            if (row["target"], row["scenario"], row["rep"]) == ("service", "one_row", rep):
                return float(row["max_rate"]) or None
        return None

    async def measure(self, target: Target, rep: int) -> None:
        contender = target.contender
        for scenario in contender.scenarios:
            load = self.loads.get(scenario)
            if load is None:
                continue
            await self.phase(target, rep, load, "warmup", 50, 1.0)
            if contender.spike:
                seconds = self.duration(SPIKE_RATE, self.plan.spike_s, load)
                summary = await self.phase(target, rep, load, "spike", SPIKE_RATE, seconds)
                summary["passed"] = passes(summary, SPIKE_P99_MS)
            if contender.ramp:
                best = await self.ramp(target, rep, load)
                step = self.best_step(contender.name, scenario, rep, best)
                self.max_rates.append(
                    {
                        "target": contender.name,
                        "scenario": scenario,
                        "rep": rep,
                        "max_rate": best,
                        "rows_per_s": step.get("achieved_rows_ps"),
                        "latency_samples": step.get("latency_samples"),
                        "p99_ms": step.get("p99_ms"),
                    }
                )
                print(f"   -> {contender.name} {scenario} rep {rep}: {best:.0f} req/s", flush=True)
        one_row = self.loads.get("one_row")
        if contender.overload and one_row is not None:
            base = self.service_max(rep)
            if base is None:
                print(f"   ({contender.name}: no overload phase, no service maximum this rep)")
            else:
                rate = self.overload_factor * base
                seconds = self.duration(rate, self.plan.overload_s, one_row)
                summary = await self.on_schedule(target, rep, one_row, "overload", rate, seconds)
                summary["overload_factor"] = self.overload_factor
        if self.crosscheck and contender.crosscheck and one_row is not None:
            await self.cross_check(target, rep, one_row)

    async def cross_check(self, target: Target, rep: int, load: Workload) -> None:
        """wrk at saturation (closed loop, WRK_CONNECTIONS connections, one thread on the
        generator's core), then the project's generator at 1.5x wrk's rate with the same
        connection limit: both measure the saturation throughput."""
        seconds = self.plan.wrk_s
        script = self.out / "wrk_post.lua"
        script.write_text(WRK_SCRIPT % load.bodies[0].decode())
        cmd = [
            wrk_binary(), "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "--latency",
            "-s", str(script), f"http://127.0.0.1:{target.port}/v1/predict",
        ]  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run,
            cmd,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=pin(self.generator_cpus),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        wrk = parse_wrk(done.stdout)
        await asyncio.sleep(1.0)
        rate = max(100.0, 1.5 * wrk["requests_per_s"])
        summary = await self.phase(
            target, rep, load, "saturation", rate, seconds, max_connections=WRK_CONNECTIONS
        )
        shown = ["wrk", *cmd[1:-2], script.name, "http://127.0.0.1:PORT/v1/predict"]
        row = {
            "target": target.name,
            "rep": rep,
            "scenario": load.name,
            "command": " ".join(shown),
            "wrk": wrk,
            "generator_ok_per_s": summary["achieved_ok_rps"],
            "generator_offered": round(rate, 1),
        }
        self.crosschecks.append(row)
        print(
            f"   wrk {target.name}: {wrk['requests_per_s']:.0f} req/s "
            f"({wrk['ok_per_s']:.0f} 2xx/s); generator {summary['achieved_ok_rps']:.0f} ok/s",
            flush=True,
        )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_DIR), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(
    cpus: set[int], generator: set[int] | None, servers: set[int] | None, wrk: str | None
) -> dict[str, Any]:
    """Commit, versions, CPU and pinning: what a reader needs to place the figures."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    wrk_version = None
    if wrk:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        wrk_version = (done.stdout or done.stderr).splitlines()[0].strip() if done else None
    packages = (
        "torch", "numpy", "fastapi", "starlette", "uvicorn", "uvloop", "httptools",
        "pydantic", "pydantic-core", "prometheus-client", "litserve", "pyzmq", "matplotlib",
    )  # fmt: skip
    return {
        "commit": commit or "unknown (not a git checkout)",
        "dirty": None if status is None else bool(status),
        "dirty_files": None if status is None else len(status.splitlines()),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in packages}
        | {"wrk": wrk_version or "not used"},
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": sorted(cpus),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "pinning": {
            "how": "os.sched_setaffinity (what taskset -c does), before exec",
            "generator": sorted(generator) if generator else "not pinned",
            "wrk": sorted(generator) if generator else "not pinned",
            "servers": sorted(servers) if servers else "not pinned",
            "servers_run": "one at a time",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demand_predictor.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="directory for results")
    parser.add_argument("--quick", action="store_true", help="short phases")
    parser.add_argument("--model-dir", type=Path, help="existing artifact (default: train one)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs")
    parser.add_argument("--access-log", action="store_true", help="service logs every request")
    parser.add_argument("--targets", default=",".join(c.name for c in CONTENDERS),
                        help="comma-separated subset of the contenders")  # fmt: skip
    parser.add_argument("--scenarios", default=",".join(workloads.SCENARIOS))
    parser.add_argument("--reps", type=int, default=3, help="repetitions (>= 3 for the tables)")
    parser.add_argument("--model", choices=("fused", "plain"), default="fused",
                        help="the model code every contender runs")  # fmt: skip
    parser.add_argument("--overload-factor", type=float, default=1.5)
    parser.add_argument("--no-crosscheck", action="store_true", help="skip the wrk cross-check")
    # Smoke runs only (the tables flag a run that used them):
    parser.add_argument("--step-s", type=float, help="shortest ramp step (s)")
    parser.add_argument("--spike-s", type=float, help="shortest spike phase (s)")
    parser.add_argument("--max-phase-s", type=float, help="longest phase (s)")
    parser.add_argument("--ramp-max", type=float, help="highest ramp rate")
    parser.add_argument("--wrk-s", type=float, help="wrk and saturation phase length (s)")
    parser.add_argument("--min-tail", type=int, default=MIN_TAIL,
                        help="samples above a percentile to report it (10: p99 from >= 1,000)")  # fmt: skip
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    plan = QUICK if args.quick else FULL
    overrides = {
        "ramp_step_s": args.step_s, "spike_s": args.spike_s, "max_phase_s": args.max_phase_s,
        "ramp_max": args.ramp_max, "wrk_s": args.wrk_s,
    }  # fmt: skip
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    smoke = any(v is not None for v in overrides.values()) or args.min_tail != MIN_TAIL
    started = time.monotonic()
    notes: list[str] = []
    if args.reps < 3:
        notes.append(f"{args.reps} repetition(s): the tables need at least 3")
    if smoke:
        notes.append("smoke settings (shortened phases or --min-tail): not a measurement")

    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if any(s not in workloads.SCENARIOS for s in scenarios):
        parser.error(f"scenarios: choose from {', '.join(workloads.SCENARIOS)}")
    crosscheck = not args.no_crosscheck and any(BY_NAME[n].crosscheck for n in names)
    wrk = wrk_binary() if crosscheck else None  # fails here, before anything ran, if missing
    if args.no_crosscheck:
        notes.append("wrk cross-check skipped (--no-crosscheck)")
    if "litserve" in names:
        try:
            import litserve  # noqa: F401
        except ImportError as exc:
            names.remove("litserve")
            note = f"litserve skipped: not installed ({exc}); pip install -r requirements-bench.txt"
            print(note)
            notes.append(note)
    contenders = [c for c in CONTENDERS if c.name in names]  # service first: overload needs it

    model_dir = args.model_dir
    train_s = None
    if model_dir is None:
        from demand_predictor import train

        model_dir = out / "model"
        t0 = time.perf_counter()
        train.train(model_dir, seed=7, epochs=4, version="1.0.0")
        train_s = round(time.perf_counter() - t0, 2)
        print(f"trained model into {model_dir} in {train_s} s")
    from demand_predictor import artifact

    spec = artifact.read_manifest(model_dir).features
    loads = {name: workloads.build(name, spec) for name in scenarios}

    cpus = os.sched_getaffinity(0)
    server_cpus: set[int] | None = None
    generator_cpus: set[int] | None = None
    if not args.no_pin and len(cpus) >= 2:
        ordered = sorted(cpus)
        server_cpus, generator_cpus = {ordered[1]}, {ordered[0]}
        os.sched_setaffinity(0, generator_cpus)
        notes.append(
            f"load generator and wrk pinned to CPU {ordered[0]}, each server to CPU "
            f"{ordered[1]} (one core each); one server runs at a time"
        )
    else:
        notes.append("CPUs not pinned: generator and server share all cores")
    notes.append(
        "service access log " + ("on" if args.access_log else "off (as for the baselines)")
    )
    for note in notes:
        print("note:", note)
    facts = machine_facts(cpus, generator_cpus, server_cpus, wrk)
    setup = Setup(model_dir, args.model, out, server_cpus, args.access_log)
    bench = Bench(plan, loads, args.min_tail, args.overload_factor, generator_cpus, crosscheck, out)
    probe = workloads.one_row(spec.n_zones, count=1).bodies[0]
    for rep in range(1, args.reps + 1):
        for contender in contenders:
            if not any(s in loads for s in contender.scenarios):
                continue
            print(f"-- repetition {rep}/{args.reps}: {contender.name}", flush=True)
            target = setup.start(contender)
            try:
                target.wait_ready(probe)
                run_loop(bench.measure(target, rep))
            finally:
                target.stop()

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if args.quick else "full",
        "smoke": smoke,
        "machine": facts,
        "plan": plan.__dict__,
        "repetitions": args.reps,
        "model": args.model,
        "percentile_rule": {
            "min_tail": args.min_tail,
            "p50_min_samples": args.min_tail * 2,
            "p99_min_samples": args.min_tail * 100,
            "p999_min_samples": args.min_tail * 1000,
        },
        "train_s": train_s,
        "slo": {"p99_ms": SLO_P99_MS, "max_not_ok_rate": SLO_NOT_OK},
        "spike": {"rate": SPIKE_RATE, "p99_target_ms": SPIKE_P99_MS},
        "generator_lag_flag_ms": GENERATOR_LAG_MS,
        "overload_factor": args.overload_factor,
        "scenarios": {name: load.describe() for name, load in loads.items()},
        "contenders": {c.name: setup.describe(c) for c in contenders},
        "notes": notes,
        "max_rates": bench.max_rates,
        "crosschecks": bench.crosschecks,
        "phases": bench.results,
        "wall_s": round(time.monotonic() - started, 1),
    }
    results["figures"] = report.aggregate(results)
    results["targets_check"] = report.check_targets(results["figures"])
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    tables = report.markdown(results)
    (out / "tables.md").write_text(tables)
    plot = report.plot(results, out / "latency_vs_rate.png")
    report.print_summary(results, tables, plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
