"""GPU check: ``python -m demand_predictor.gpu_check`` (or ``python service/gpu_check.py``).

For a machine with an NVIDIA GPU and a CUDA build of torch, offline. Imports only what
the service needs (torch, numpy, uvicorn...). Steps:

1. device facts (torch, CUDA runtime, GPU name, capability, driver) and the commit;
2. the model: ``--model-dir``, or trained here (deterministic, a few seconds);
3. correctness: predictions on CUDA (CUDA graphs; eager; float16) against the CPU on
   validation rows at several batch sizes, within stated tolerances;
4. the batching path (``BatchingWorker``) on CUDA: concurrent requests, results
   against the CPU;
5. latency per batch size (p50/p99 of ``Predictor.predict``: features, padding, copies,
   model, result) on CUDA, CUDA float16 and the CPU (one torch thread, as served);
6. the HTTP service end to end on loopback: ``python -m demand_predictor serve`` with
   ``DP_DEVICE=cuda``, then with ``DP_DEVICE=cpu``: readiness, the device in /readyz
   and /metrics, predictions against the CPU, and the highest rate with p99 <= 50 ms
   (and < 0.1 % non-200) found with the project's open-loop load generator.

It writes a JSON file (``--out``) and prints a summary. Exit codes: 0 every check
passed; 1 a check failed (the JSON says which); 2 bad arguments; 3 no CUDA device:
nothing was measured (it never reports CPU figures as GPU figures).

``--device cpu`` is a dry run of the same code paths on the CPU (results labelled
``cpu``, ``dry_run: true``); with ``--quick`` it takes seconds and is what the unit
tests run. A full run on a GPU box stays within ``--budget-s`` (default 330 s): load
ramps stop early when the budget runs out, and the JSON says so.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from demand_predictor import artifact, data, device, train
from demand_predictor.batching import BatchingWorker, WorkItem
from demand_predictor.bench.loadgen import run_phase
from demand_predictor.features import RawColumns
from demand_predictor.metrics import Metrics
from demand_predictor.predictor import HALF_ATOL, HALF_RTOL, Predictor, synthetic_rows

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NO_CUDA = 3
SERVICE_DIR = Path(__file__).resolve().parents[1]
# CUDA float32 vs CPU float32, in rides: |cuda - cpu| <= ATOL + RTOL * |cpu|. The same
# math in a different kernel order; the HTTP answers are rounded to 3 decimals on top.
RTOL = 1e-3
ATOL = 1e-3
HTTP_ATOL = ATOL + 5e-4
SLO_P99_MS = 50.0
SLO_NOT_OK = 0.001
GENERATOR_LAG_MS = 20.0


@dataclass(frozen=True)
class Plan:
    batch_sizes: tuple[int, ...]
    latency_iters: int
    latency_cap_s: float  # per batch size and variant
    correctness_rows: int
    batching_requests: int
    warmup_rounds: int
    ramp: bool
    ramp_start: float
    ramp_factor: float
    ramp_max: float
    step_s: float


FULL = Plan((1, 8, 32, 64, 128, 256), 300, 1.5, 4096, 400, 3, True, 200, 1.5, 20_000, 2.0)
QUICK = Plan((1, 8), 20, 0.5, 256, 40, 1, False, 50, 1.5, 50, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m demand_predictor.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-dir", type=Path, help="artifact to use (default: train one)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="JSON result")
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cuda (the check); cpu: a dry run of the code paths, labelled cpu",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and phases (tests)")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="DP_MAX_BATCH (default: largest batch size)"
    )
    parser.add_argument("--budget-s", type=float, default=330.0, help="wall-time budget")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.max_batch is None:
        args.max_batch = max(plan.batch_sizes)
    if not 1 <= args.max_batch <= 4096:
        parser.error("--max-batch must be between 1 and 4096")
    if args.budget_s <= 0:
        parser.error("--budget-s must be positive")
    args.plan = plan
    return args


class CheckFailed(Exception):
    pass


def say(message: str) -> None:
    print(message, flush=True)


def commit() -> str | None:
    """The checked-out commit, if this is a git checkout (read only)."""
    root = SERVICE_DIR.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    head = root / ".git" / "HEAD"
    try:
        text = head.read_text().strip()
        if text.startswith("ref: "):
            return (root / ".git" / text[5:]).read_text().strip()
        return text or None
    except OSError:
        return None


def environment(choice: device.DeviceChoice, facts: device.CudaFacts | None) -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": device.cpu_name(),
        "cpus": len(os.sched_getaffinity(0)),
        "device": choice.to_json(),
        "gpu_name": facts.name if facts else None,
        "gpu_capability": choice.capability or None,
        "driver": facts.driver if facts else None,
        "commit": commit(),
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "n": int(ms.size),
    }


@functools.lru_cache(maxsize=8)
def validation_rows(n: int) -> RawColumns:
    _, dataset = data.generate(7)
    rows = np.random.default_rng(1).choice(len(dataset.columns), n, replace=False)
    return dataset.columns.take(np.sort(rows))


def predict_all(predictor: Predictor, columns: RawColumns, batch: int) -> np.ndarray:
    parts = [
        predictor.predict(columns.take(np.arange(start, min(start + batch, len(columns)))))
        for start in range(0, len(columns), batch)
    ]
    return np.concatenate(parts)


def compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> dict:
    diff = np.abs(got - want)
    allowed = atol + rtol * np.abs(want)
    ok = bool(np.all(diff <= allowed))
    result = {
        "name": name,
        "ok": ok,
        "rows": int(want.shape[0]),
        "max_abs_diff": float(diff.max()),
        "worst_fraction_of_tolerance": round(float((diff / allowed).max()), 4),
        "rtol": rtol,
        "atol": atol,
    }
    say(f"  {'ok ' if ok else 'BAD'} {name}: max |diff| {result['max_abs_diff']:.3g} rides")
    return result


def latency(predictor: Predictor, size: int, plan: Plan) -> dict[str, float]:
    columns = synthetic_rows(size, predictor.spec.n_zones)
    for _ in range(3):
        predictor.predict(columns)
    durations: list[float] = []
    cap = time.perf_counter() + plan.latency_cap_s
    while len(durations) < plan.latency_iters and time.perf_counter() < cap:
        started = time.perf_counter()
        predictor.predict(columns)
        durations.append(time.perf_counter() - started)
    return percentiles(durations)


def run_loop(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def check_batching(target: Predictor, reference: Predictor, plan: Plan) -> dict[str, Any]:
    """Concurrent requests through the batching worker on the target device."""
    max_batch = target.max_batch
    metrics = Metrics(max_batch)
    timings = {size: 0.0005 for size in target.buckets}  # admission is not exercised here
    worker = BatchingWorker(target.predict, max_batch, metrics, 1, initial_batch_seconds=timings)
    rng = np.random.default_rng(5)
    rows = validation_rows(max(plan.correctness_rows, 64))
    items = []
    for _ in range(plan.batching_requests):
        n = int(rng.integers(1, 9))
        start = int(rng.integers(0, len(rows) - n))
        items.append(rows.take(np.arange(start, start + n)))

    async def scenario() -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        futures = []
        for columns in items:
            future = loop.create_future()
            worker.submit(WorkItem(columns, loop, future))
            futures.append(future)
        return await asyncio.wait_for(asyncio.gather(*futures), 120)

    worker.start()
    try:
        results = asyncio.run(scenario())
    finally:
        worker.stop(10)
    got = np.concatenate(results)
    want = np.concatenate([reference.predict(columns) for columns in items])
    batches = metrics.registry.get_sample_value("dp_batch_size_rows_count") or 0.0
    out = compare("batching worker vs CPU", got, want, RTOL, ATOL)
    out["requests"] = len(items)
    out["batches"] = int(batches)
    out["mean_rows_per_batch"] = round(float(got.shape[0] / batches), 2) if batches else None
    return out


# -- the HTTP service ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def instance_json(columns: RawColumns, i: int) -> dict[str, Any]:
    return {
        "zone_id": int(columns.zone_id[i]),
        "hour": int(columns.hour[i]),
        "day_of_week": int(columns.day_of_week[i]),
        "weather": {
            "temperature_c": float(columns.temperature_c[i]),
            "precipitation_mm_h": float(columns.precipitation_mm_h[i]),
            "wind_speed_m_s": float(columns.wind_speed_m_s[i]),
        },
        "recent_rides": [int(v) for v in columns.recent_rides[i]],
    }


def as_request_rows(columns: RawColumns) -> RawColumns:
    """The rows as a client sends them: JSON-exact values (weather to 0.1, integers)."""
    return RawColumns(
        zone_id=columns.zone_id.copy(),
        lat=columns.lat.copy(),
        lon=columns.lon.copy(),
        hour=columns.hour.copy(),
        day_of_week=columns.day_of_week.copy(),
        temperature_c=np.round(columns.temperature_c, 1),
        precipitation_mm_h=np.round(columns.precipitation_mm_h, 1),
        wind_speed_m_s=np.round(columns.wind_speed_m_s, 1),
        recent_rides=np.round(columns.recent_rides),
    )


def load_bodies(count: int = 256) -> list[bytes]:
    rows = as_request_rows(validation_rows(count))
    return [json.dumps({"instances": [instance_json(rows, i)]}).encode() for i in range(count)]


class Server:
    def __init__(self, leg: str, model_dir: Path, max_batch: int, plan: Plan, log: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DP_")}
        env.update(
            PYTHONPATH=str(SERVICE_DIR),
            DP_MODEL_DIR=str(model_dir),
            DP_DEVICE=leg,
            DP_PORT=str(self.port),
            DP_MAX_BATCH=str(max_batch),
            DP_MAX_ROWS=str(max(256, max_batch)),
            DP_WARMUP_ROUNDS=str(plan.warmup_rounds),
            DP_ACCESS_LOG="false",
        )
        cpus = sorted(os.sched_getaffinity(0))
        self.cpus = set(cpus[1:3]) if len(cpus) >= 4 else None  # generator keeps cpus[0]
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "demand_predictor", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None,  # noqa: PLW1509
        )

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                status, body = http_get(self.port, "/readyz")
            except OSError:
                time.sleep(0.2)
                continue
            last = json.loads(body)
            if status == 200:
                return last
            if last.get("phase") in ("refused", "failed"):
                raise CheckFailed(f"server not ready ({last['phase']}): {last.get('reason')}")
            time.sleep(0.2)
        raise CheckFailed(f"server not ready after {timeout:.0f} s (last /readyz: {last})")

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    _, text = http_get(port, "/metrics")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def passes(summary: dict[str, Any]) -> bool:
    p99 = summary["p99_ms"]
    return p99 is not None and p99 <= SLO_P99_MS and summary["not_ok_rate"] < SLO_NOT_OK


async def find_max_rate(
    port: int, leg: str, bodies: list[bytes], plan: Plan, deadline: float
) -> dict[str, Any]:
    """Geometric ramp, then one step between the last pass and the first failure."""
    steps: list[dict[str, Any]] = []
    seed = 0

    async def step(rate: float, phase: str) -> bool:
        nonlocal seed
        for attempt in range(2):  # again once if the generator itself sent late
            seed += 1
            result = await run_phase(
                "127.0.0.1", port, "/v1/predict", bodies, rate, plan.step_s, leg, phase, seed=seed
            )
            summary = result.summary()
            summary["passed"] = passes(summary)
            steps.append(summary)
            await asyncio.sleep(0.3)
            lag = summary["generator_lag_p99_ms"]
            if summary["passed"] or attempt or lag is None or lag <= GENERATOR_LAG_MS:
                break
            summary["superseded"] = True
        return bool(steps[-1]["passed"])

    await step(50, "warmup")
    if not plan.ramp:
        passed = await step(plan.ramp_start, "probe")
        return {
            "max_rate_at_slo": None,
            "note": "--quick: one short phase, no ramp",
            "probe_passed": passed,
            "steps": steps,
        }
    best = failed = 0.0
    rate = plan.ramp_start
    truncated = False
    while rate <= plan.ramp_max:
        if time.monotonic() + 2 * plan.step_s + 3 > deadline:
            truncated = True
            break
        if not await step(rate, "ramp"):
            failed = rate
            break
        best = rate
        rate = round(rate * plan.ramp_factor)
    if best and failed and time.monotonic() + 2 * plan.step_s + 3 <= deadline:
        middle = round((best * failed) ** 0.5)
        if best < middle < failed and await step(middle, "ramp"):
            best = middle
    return {
        "max_rate_at_slo": best,
        "first_failing_rate": failed or None,
        "truncated_by_budget": truncated,
        "slo": {"p99_ms": SLO_P99_MS, "max_not_ok_rate": SLO_NOT_OK},
        "steps": steps,
    }


def http_leg(
    leg: str,
    model_dir: Path,
    reference: Predictor,
    args: argparse.Namespace,
    deadline: float,
    work: Path,
) -> dict[str, Any]:
    plan: Plan = args.plan
    say(f"-- HTTP service, DP_DEVICE={leg}")
    server = Server(leg, model_dir, args.max_batch, plan, work / f"server-{leg}.log")
    own_cpus = os.sched_getaffinity(0)
    out: dict[str, Any] = {"server_cpus": sorted(server.cpus) if server.cpus else "all"}
    try:
        started = time.monotonic()
        ready = server.wait_ready(timeout=180)
        out["ready_after_s"] = round(time.monotonic() - started, 2)
        out["readyz"] = ready
        served_on = (ready.get("device") or {}).get("device")
        if served_on != leg:
            raise CheckFailed(f"/readyz says device {served_on!r}, expected {leg!r}: {ready}")
        metrics = scrape(server.port)
        info = [labels for labels, value in metrics.get("dp_device_info", []) if value == 1]
        if not info or info[0]["device"] != leg:
            raise CheckFailed(f"dp_device_info does not say {leg}: {info}")
        out["dp_device_info"] = info[0]
        out["dp_cuda_graph_buckets"] = metrics.get("dp_cuda_graph_buckets", [({}, 0.0)])[0][1]
        # Predictions through HTTP against the CPU predictor.
        rows = as_request_rows(validation_rows(max(64, min(512, plan.correctness_rows))))
        got, want = [], []
        rng = np.random.default_rng(9)
        start = 0
        while start < len(rows):
            n = int(rng.integers(1, 33))
            idx = np.arange(start, min(start + n, len(rows)))
            body = json.dumps({"instances": [instance_json(rows, int(i)) for i in idx]}).encode()
            status, payload = http_post(server.port, body)
            if status != 200:
                raise CheckFailed(f"POST /v1/predict: HTTP {status}: {payload[:300]!r}")
            preds = json.loads(payload)["predictions"]
            got.append(np.array([[p["lower"], p["demand"], p["upper"]] for p in preds]))
            want.append(predict_all(reference, rows.take(idx), reference.max_batch))
            start += n
        out["predictions"] = compare(
            f"HTTP {leg} vs CPU predictor",
            np.concatenate(got),
            np.concatenate(want),
            RTOL,
            HTTP_ATOL,
        )
        if not out["predictions"]["ok"]:
            raise CheckFailed(f"HTTP {leg} predictions differ from the CPU")
        bodies = load_bodies()
        cpus = sorted(own_cpus)
        if server.cpus:
            os.sched_setaffinity(0, {cpus[0]})  # the generator: one core, not the server's
        try:
            out["load"] = run_loop(find_max_rate(server.port, leg, bodies, plan, deadline))
        finally:
            os.sched_setaffinity(0, own_cpus)
        best = out["load"]["max_rate_at_slo"]
        if best is not None:
            say(f"  max rate at p99 <= {SLO_P99_MS:.0f} ms: {best:.0f} req/s ({leg})")
        out["ok"] = True
    except Exception as exc:  # noqa: BLE001 - recorded with the server's log
        out["ok"] = False
        out["error"] = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
        out["log_tail"] = server.log_tail()
        say(f"  BAD {exc}")
    finally:
        server.stop()
    return out


def print_latency(table: dict[str, dict[str, dict[str, float]]]) -> None:
    legs = list(table)
    say("-- latency of Predictor.predict per batch size, ms (p50 / p99)")
    say("  batch " + "".join(f"{leg:>24}" for leg in legs))
    sizes = sorted({int(s) for leg in legs for s in table[leg]})
    for size in sizes:
        cells = []
        for leg in legs:
            entry = table[leg].get(str(size))
            cells.append(
                f"{entry['p50_ms']:>10.3f} / {entry['p99_ms']:<10.3f}" if entry else " " * 24
            )
        say(f"  {size:>5} " + "".join(f"{c:>24}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan: Plan = args.plan
    started = time.monotonic()
    deadline = started + args.budget_s
    out_path: Path = args.out
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[1:] if argv is None else argv,
        "device_requested": args.device,
        "dry_run": args.device == "cpu",
        "quick": args.quick,
    }

    def finish(status: str, code: int) -> int:
        result["status"] = status
        result["wall_s"] = round(time.monotonic() - started, 1)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        say(f"result: {status} ({result['wall_s']} s) -> {out_path}")
        return code

    facts = device.probe_cuda() if args.device == "cuda" else None
    choice = device.decide(args.device, facts, device.cpu_name())
    result["environment"] = environment(choice, facts)
    if choice.refused:
        message = (
            f"gpu_check: no CUDA device: {choice.reason}. Nothing was measured: this check "
            "reports GPU figures only from a working GPU (use --device cpu for a dry run)."
        )
        print(message, file=sys.stderr, flush=True)
        result["reason"] = choice.reason
        return finish("no_cuda", EXIT_NO_CUDA)
    target = choice.torch_device()
    leg = choice.device
    if result["dry_run"]:
        say("DRY RUN on the CPU (--device cpu): no GPU figure is produced by this run")
    env = result["environment"]
    say(
        f"device: {leg} {choice.name} capability={choice.capability or '-'} driver={choice.driver or '-'}"
    )
    say(f"torch {env['torch']} (CUDA runtime {env['cuda_runtime']}), commit {env['commit']}")
    torch.set_num_threads(1)  # as served (DP_TORCH_THREADS=1)

    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))  # server logs (and a trained model)
    result["work_dir"] = str(work)
    model_dir = args.model_dir
    if model_dir is None or not (model_dir / artifact.MANIFEST_FILE).exists():
        model_dir = model_dir or work / "model"
        t0 = time.perf_counter()
        train.train(model_dir, seed=7, epochs=4, version="1.0.0")
        result["train_s"] = round(time.perf_counter() - t0, 2)
        say(f"trained the model into {model_dir} in {result['train_s']} s")
    result["model_dir"] = str(model_dir)
    checks: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        cpu_model = artifact.load(model_dir, torch.device("cpu"))
        reference = Predictor(cpu_model, args.max_batch)
        reference.warmup(1)
        t0 = time.perf_counter()
        on_target = artifact.load(model_dir, target)
        graphs = Predictor(on_target, args.max_batch)
        graphs.warmup(plan.warmup_rounds)
        eager = Predictor(on_target, args.max_batch, graphs=False)
        eager.warmup(1)
        half = Predictor(on_target, args.max_batch, half=True)
        half.warmup(plan.warmup_rounds)
        result["load_and_warmup_s"] = round(time.perf_counter() - t0, 2)
        result["cuda_graphs"] = {
            "buckets": graphs.graph_buckets,
            "fallbacks": {str(k): v for k, v in graphs.graph_fallbacks.items()},
        }
        if leg == "cuda" and graphs.graph_fallbacks:
            failures.append(
                f"CUDA graph capture failed for buckets {sorted(graphs.graph_fallbacks)}"
            )
        say(f"-- correctness on {leg} vs CPU (rtol {RTOL}, atol {ATOL} rides)")
        rows = validation_rows(plan.correctness_rows)
        for batch in sorted({1, 3, *plan.batch_sizes} & set(range(1, args.max_batch + 1))):
            want = predict_all(reference, rows, batch)
            checks.append(
                compare(
                    f"{leg} graphs, batch {batch}",
                    predict_all(graphs, rows, batch),
                    want,
                    RTOL,
                    ATOL,
                )
            )
            checks.append(
                compare(
                    f"{leg} eager, batch {batch}", predict_all(eager, rows, batch), want, RTOL, ATOL
                )
            )
            checks.append(
                compare(
                    f"{leg} float16, batch {batch}",
                    predict_all(half, rows, batch),
                    want,
                    HALF_RTOL,
                    HALF_ATOL,
                )
            )
        say(f"-- batching worker on {leg}")
        checks.append(check_batching(graphs, reference, plan))
        failures += [c["name"] for c in checks if not c["ok"]]
        result["correctness"] = checks

        sizes = [s for s in plan.batch_sizes if s <= args.max_batch]
        variants = {leg: graphs, f"{leg}_float16": half}
        if leg != "cpu":
            variants["cpu"] = reference
        table: dict[str, dict[str, dict[str, float]]] = {}
        for name, predictor in variants.items():
            table[name] = {str(s): latency(predictor, s, plan) for s in sizes}
        result["latency_ms"] = table
        result["latency_note"] = (
            "Predictor.predict wall time (features, padding, host<->device copies, model, "
            "result) on one thread; the CPU with torch threads = 1, as served"
        )
        print_latency(table)

        result["http"] = {}
        for http_device in [leg] if leg == "cpu" else [leg, "cpu"]:
            outcome = http_leg(http_device, model_dir, reference, args, deadline, work)
            result["http"][http_device] = outcome
            if not outcome["ok"]:
                failures.append(f"HTTP {http_device}: {outcome['error']}")
    except Exception as exc:  # noqa: BLE001 - recorded, then exit 1
        failures.append(f"{type(exc).__name__}: {exc}")
        say(f"BAD {type(exc).__name__}: {exc}")
    result["failures"] = failures
    if time.monotonic() > deadline:
        result["over_budget"] = True
    for name, outcome in result.get("http", {}).items():
        rate = (outcome.get("load") or {}).get("max_rate_at_slo")
        if rate is not None:
            say(f"  {name}: {rate:.0f} req/s at p99 <= {SLO_P99_MS:.0f} ms")
    if failures:
        for failure in failures:
            print(f"gpu_check: FAILED: {failure}", file=sys.stderr)
        return finish("failed", EXIT_FAILED)
    return finish("ok", EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
