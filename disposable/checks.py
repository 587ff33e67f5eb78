"""What `invoke lint/unit/integration/test/lock` run. CI runs `invoke test` (via .ci/run)."""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

from disposable.console import fmt_seconds, run, say, table
from disposable.engine import providers as mirror
from disposable.engine.binary import find_engine
from disposable.engine.terraform import fmt_check
from disposable.errors import DisposableError
from disposable.hosts.ansible import ansible_env
from disposable.packages import pylocks
from disposable.paths import REPO_ROOT, TERRAFORM_DIR, cache_dir, venv_tool

PY = sys.executable
# Terraform roots that initialise offline (their providers are in the mirror).
OFFLINE_STACKS = ["environments/local", "examples/lxd_single_host"]


def _step(label: str, argv: list[str], env: dict[str, str] | None = None) -> bool:
    say(f"--- {label}: {' '.join(argv)}")
    return run(argv, label=label, cwd=REPO_ROOT, env=env).returncode == 0


def terraform_validate(stack: str) -> bool:
    engine = find_engine()
    with tempfile.TemporaryDirectory(prefix="dml-validate-") as data_dir:
        env = {"TF_CLI_CONFIG_FILE": str(mirror.ensure_mirror()), "TF_DATA_DIR": data_dir, "TF_IN_AUTOMATION": "1"}
        chdir = f"-chdir={TERRAFORM_DIR / stack}"
        return _step(
            f"tf init {stack}",
            [*engine.argv, chdir, "init", "-backend=false", "-input=false", "-lockfile=readonly"],
            env,
        ) and _step(f"tf validate {stack}", [*engine.argv, chdir, "validate"], env)


def checkov_venv() -> Path:
    """checkov lives in its own venv (it pins packaging<24, which pytest 9 refuses),
    installed from its hash-locked requirements and rebuilt when the lock changes."""
    lock_file = REPO_ROOT / "requirements-checkov.txt"
    venv = cache_dir() / "checkov-venv"
    stamp = venv / ".lock-sha256"
    want = hashlib.sha256(lock_file.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == want):
        say("--- checkov: creating its venv (once per lock change)")
        ok = _step("checkov venv", [PY, "-m", "venv", "--clear", str(venv)]) and _step(
            "checkov venv",
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                "-r",
                str(lock_file),
            ],
        )
        if not ok:
            raise DisposableError("Could not install checkov into its venv (see above).")
        stamp.write_text(want)
    return venv


def lint() -> None:
    results = {
        "ruff": _step("ruff", [PY, "-m", "ruff", "check", "."]),
        "ruff format": _step("ruff format", [PY, "-m", "ruff", "format", "--check", "."]),
        "yamllint": _step("yamllint", [PY, "-m", "yamllint", "--strict", "."]),
        # ansible-lint syntax-checks playbooks without an inventory: allow an empty one there.
        "ansible-lint": _step(
            "ansible-lint",
            [venv_tool("ansible-lint"), "--profile", "production", "--offline"],
            {**ansible_env(), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "false"},
        ),
        "terraform fmt": fmt_check(TERRAFORM_DIR),
        "checkov": _step("checkov", [str(checkov_venv() / "bin" / "checkov"), "--config-file", ".checkov.yaml"]),
        "workflow schema": _step(
            "workflow schema",
            [
                venv_tool("check-jsonschema"),
                "--builtin-schema",
                "vendor.github-workflows",
                *sorted(str(p) for p in (REPO_ROOT / ".github" / "workflows").glob("*.yml")),
            ],
        ),
    }
    for stack in OFFLINE_STACKS:
        results[f"terraform validate {stack}"] = terraform_validate(stack)
    say("Lint summary:\n" + table(["check", "result"], [[k, "ok" if v else "FAILED"] for k, v in results.items()]))
    failed = [k for k, v in results.items() if not v]
    if failed:
        raise DisposableError(f"Lint failed: {', '.join(failed)}.")


def failed_tests(pytest_output: str) -> list[str]:
    """pytest's short-summary lines ("FAILED id - reason", "ERROR id - reason"), in order."""
    summary = pytest_output.partition("short test summary info")[2]
    return [line.strip() for line in summary.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def _pytest(label: str, *args: str) -> None:
    say(f"--- {label}: pytest {' '.join(args)}")
    # A wide terminal: pytest cuts each summary line, reason included, to the terminal's width.
    result = run([PY, "-m", "pytest", *args], label=label, cwd=REPO_ROOT, env={"COLUMNS": "240"})
    if result.returncode != 0:
        # Named here so that the last lines of a long CI log say which tests failed and why.
        failures = failed_tests(result.output) or ["(no test failed: pytest itself failed; see its output above)"]
        raise DisposableError(f"{label} failed (pytest exit {result.returncode}):\n  " + "\n  ".join(failures))


def unit() -> None:
    _pytest("unit tests", "-q", "tests/unit", "tests/service")


def integration() -> None:
    _pytest("integration tests", "-v", "-s", "--durations=20", "tests/integration")


def molecule_scenarios() -> list[str]:
    return sorted(p.parent.name for p in (REPO_ROOT / "molecule").glob("*/molecule.yml"))


def molecule(scenario: str = "") -> None:
    """`molecule test` for one scenario, or for every role's scenario in turn."""
    scenarios = [scenario] if scenario else molecule_scenarios()
    unknown = sorted(set(scenarios) - set(molecule_scenarios()))
    if unknown:
        raise DisposableError(
            f"Unknown Molecule scenario(s): {', '.join(unknown)}.", f"Known: {', '.join(molecule_scenarios())}."
        )
    rows, failed = [], []
    for name in scenarios:
        start = time.monotonic()
        ok = _step(f"molecule {name}", [venv_tool("molecule"), "test", "-s", name], ansible_env())
        rows.append([name, "ok" if ok else "FAILED", fmt_seconds(time.monotonic() - start)])
        if not ok:
            failed.append(name)
    say("Molecule summary:\n" + table(["scenario", "result", "time"], rows))
    if failed:
        raise DisposableError(f"Molecule scenario(s) failed: {', '.join(failed)}.")


def test_all() -> None:
    """lint, unit, molecule, integration: every part runs even when an earlier one failed."""
    outcomes: list[list[str]] = []
    failed: list[str] = []
    reasons: list[str] = []
    for name, step in (("lint", lint), ("unit", unit), ("molecule", molecule), ("integration", integration)):
        start = time.monotonic()
        try:
            step()
            outcomes.append([name, "ok", fmt_seconds(time.monotonic() - start)])
        except DisposableError as exc:
            failed.append(name)
            outcomes.append([name, "FAILED", fmt_seconds(time.monotonic() - start)])
            reasons.append(f"{name}: {exc}")
            say(reasons[-1])
    say("\nTest summary:\n" + table(["part", "result", "time"], outcomes))
    if reasons:  # again at the end: a CI log is often read from its last lines only
        say("\n".join(reasons))
    if failed:
        raise DisposableError(f"Failed: {', '.join(failed)}.")


def bench(quick: bool = False, targets: str = "", scenarios: str = "", reps: int = 3) -> None:
    """service/demand_predictor/bench on loopback with the trained model; results in .state/bench/."""
    from disposable.packages import artifacts

    out = REPO_ROOT / ".state" / "bench"
    argv = [PY, "-m", "demand_predictor.bench", "--out", str(out), "--model-dir", str(artifacts.model())]
    argv += ["--quick"] if quick else []
    argv += ["--targets", targets] if targets else []
    argv += ["--scenarios", scenarios] if scenarios else []
    argv += ["--reps", str(reps)]
    if not _step("bench", argv, {"PYTHONPATH": str(REPO_ROOT / "service")}):
        raise DisposableError("The benchmark failed; see its output above.")
    say(f"Results: {out}/tables.md (the README's tables), results.json and latency_vs_rate.png")


def lock_gpu() -> None:
    """`invoke lock --gpu`: the GPU hosts' torch lock (torch +cu126 and every nvidia-* wheel,
    hash-locked), on a machine that can reach PyTorch's CUDA index (docs/gpu.md). Refuses to
    write a lock the compatibility matrix rejects."""
    from disposable.packages import gpu_matrix, supply

    matrix = gpu_matrix.derive(supply.committed_lock())
    target = pylocks.DEVICE_LOCKS["cuda"].path
    with tempfile.TemporaryDirectory(prefix="dml-gpu-lock-") as tmp:
        source, compiled = Path(tmp) / "gpu.in", Path(tmp) / "gpu.txt"
        source.write_text(f"-c {pylocks.SERVICE_LOCK}\ntorch=={matrix.torch_release}+{matrix.gpu_build}\n")
        if not _step("lock --gpu", pylocks.gpu_lock_argv(source, compiled)):
            raise DisposableError(
                f"Could not resolve torch {matrix.torch_release}+{matrix.gpu_build} "
                f"from {pylocks.DEVICE_LOCKS['cuda'].index}.",
                "Run `invoke lock --gpu` on a machine that can reach PyTorch's index (docs/gpu.md); "
                "never write hashes by hand.",
            )
        text = pylocks.gpu_lock_text(compiled.read_text(), pylocks.SERVICE_LOCK.read_text())
    found = gpu_matrix.problems(matrix, None, gpu_matrix.TorchLock(target, text))
    if found:
        raise DisposableError("The GPU lock does not fit the compatibility matrix:\n  " + "\n  ".join(found))
    target.write_text(text)
    say(f"GPU lock written: {target}")


def lock() -> None:
    """pip-compile every Python lock with hashes, PyPI plus PyTorch's CPU index (torch's CPU
    build lives there), then move torch into its own per-device lock
    (disposable.packages.pylocks); no machine-specific index or folder is written."""
    ok = all(_step(f"lock {out}", pylocks.pip_compile_argv(out, src)) for out, src in pylocks.LOCKS)
    if not ok:
        raise DisposableError("Locking failed; see the output above.")
    pylocks.apply_torch_split()
    problems = [p for path in pylocks.all_locks() for p in pylocks.index_problems(path)]
    if problems:
        raise DisposableError("Locks that would only install on this machine:\n  " + "\n  ".join(problems))
