"""The hash-locked Python requirements: generating them (`invoke lock`), checking that each
names the indexes it needs, and the per-device lock a host installs.

torch is the one package PyPI does not serve the way hosts need it: its CPU build
(`+cpu`) and its CUDA builds (`+cu126`) live on PyTorch's own indexes. So torch has a lock
of its own per device (service/requirements-torch-<device>.txt, each naming its index with
`--index-url`), and every other lock holds only PyPI packages. A host installs
service/requirements.txt plus the torch lock of its device (.build/requirements-<device>.txt
joins them; the wheelhouse is built and cached per device).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from disposable.errors import DisposableError
from disposable.paths import REPO_ROOT, SERVICE_DIR

PYTORCH_INDEX = "https://download.pytorch.org/whl"
LOCAL_VERSION = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>[^ \\+]+)\+(?P<local>[A-Za-z0-9.]+)")
INDEX_OPTION = re.compile(r"^--(?:extra-)?index-url[ =](?P<url>\S+)", re.MULTILINE)


@dataclass(frozen=True)
class DeviceLock:
    device: str  # "cpu" or "cuda"
    path: Path
    local_version: str  # torch's local version on that index: cpu, cu126
    note: str

    @property
    def index(self) -> str:
        return f"{PYTORCH_INDEX}/{self.local_version}"


DEVICE_LOCKS = {
    "cpu": DeviceLock("cpu", SERVICE_DIR / "requirements-torch-cpu.txt", "cpu", "CPU hosts"),
    "cuda": DeviceLock("cuda", SERVICE_DIR / "requirements-torch-cu126.txt", "cu126", "GPU hosts (CUDA 12.6 runtime)"),
}
SERVICE_LOCK = SERVICE_DIR / "requirements.txt"
# (lock, input): the service's first: the controller lock is constrained by it.
LOCKS = [
    ("service/requirements.txt", "service/requirements.in"),
    ("service/requirements-dev.txt", "service/requirements-dev.in"),
    ("service/requirements-bench.txt", "service/requirements-bench.in"),
    ("requirements.txt", "requirements.in"),
    ("requirements-checkov.txt", "requirements-checkov.in"),
]
# Locks whose torch stanza moves to the CPU torch lock (hosts and the controller install it from there).
TORCH_SPLIT = ("service/requirements.txt", "requirements.txt")


def stanzas(text: str) -> list[str]:
    """A pip-compile file cut into its header and one chunk per requirement (with its
    --hash continuation lines and `# via` comments)."""
    chunks: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        starts_requirement = bool(line.strip()) and not line[0].isspace() and not line.startswith(("#", "-"))
        if starts_requirement and current:
            chunks.append("".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("".join(current))
    return chunks


def split_torch(text: str) -> tuple[str, str | None]:
    """(the lock without torch, torch's stanza or None)."""
    kept, torch = [], None
    for chunk in stanzas(text):
        if re.match(r"^torch==", chunk):
            torch = chunk
        else:
            kept.append(chunk)
    return "".join(kept), torch


def device_lock_text(lock: DeviceLock, torch_stanza: str) -> str:
    return (
        f"# torch for {lock.note}, from PyTorch's index (PyPI does not serve this build).\n"
        "# Made by `invoke lock` from service/requirements.in (torch's release) with the index below;\n"
        "# install with: pip install --require-hashes --no-deps -r THIS_FILE\n"
        f"--index-url {lock.index}\n\n"
        + torch_stanza.replace("# via -r service/requirements.in", "# via service/requirements.in")
    )


def apply_torch_split(repo: Path = REPO_ROOT) -> None:
    """Move torch out of the PyPI locks; the service's stanza becomes the CPU torch lock."""
    for relative in TORCH_SPLIT:
        path = repo / relative
        without, torch = split_torch(path.read_text())
        if torch is None:
            continue
        path.write_text(without)
        if relative == "service/requirements.txt":
            cpu = DEVICE_LOCKS["cpu"]
            if f"+{cpu.local_version}" not in torch:
                raise DisposableError(
                    f"{relative}: torch resolved to {torch.split()[0]}, not the {cpu.local_version} build."
                )
            (repo / cpu.path.relative_to(REPO_ROOT)).write_text(device_lock_text(cpu, torch))


def index_problems(path: Path) -> list[str]:
    """A lock that pins a local-version wheel (+cpu, +cuXXX) must name the PyTorch index that
    serves it; machine-specific locations (--find-links to a folder) are not allowed."""
    text = path.read_text()
    problems = []
    indexes = INDEX_OPTION.findall(text)
    for line in text.splitlines():
        match = LOCAL_VERSION.match(line)
        if match and not any(url.rstrip("/").endswith(f"/{match['local']}") for url in indexes):
            problems.append(
                f"{path.name}: {match['name']}=={match['version']}+{match['local']} needs "
                f"--index-url {PYTORCH_INDEX}/{match['local']} (it is not on PyPI)"
            )
    if re.search(r"^--find-links", text, re.MULTILINE):
        problems.append(f"{path.name}: --find-links names a folder of one machine; name an index instead")
    return problems


def all_locks() -> list[Path]:
    return sorted([REPO_ROOT / out for out, _ in LOCKS] + [d.path for d in DEVICE_LOCKS.values() if d.path.exists()])


def device_for(gpu_count: int) -> str:
    return "cuda" if gpu_count > 0 else "cpu"


def host_lock(device: str, build_dir: Path) -> Path:
    """service/requirements.txt + the device's torch lock, as one file for the host
    (installed with --no-index from the wheelhouse, so the index line is kept as a comment)."""
    lock = DEVICE_LOCKS[device]
    if not lock.path.exists():
        raise DisposableError(
            f"The {lock.note} torch lock {lock.path.name} does not exist.",
            f"Make it with `invoke lock --gpu` on a machine that can reach {lock.index} (docs/gpu.md), then commit it.",
        )
    torch = lock.path.read_text().replace("--index-url", "# index (the wheelhouse was built from it):")
    target = build_dir / f"requirements-{device}.txt"
    text = SERVICE_LOCK.read_text() + f"\n# --- {lock.path.name} ---\n" + torch
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def pip_compile_argv(output: str, source: str) -> list[str]:
    return [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
        "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
        f"--extra-index-url={DEVICE_LOCKS['cpu'].index}", "-o", output, source,
        # An index that cannot be reached (PyTorch's, behind some firewalls) costs one quick
        # failure per lookup instead of pip's five back-off retries; rerun on a network blip.
        "--pip-args=--retries 1",
    ]  # fmt: skip


def gpu_lock_argv(source: Path, output: Path) -> list[str]:
    """pip-compile of the GPU torch lock: PyTorch's CUDA index first (torch +cu126 and the
    nvidia-* runtime wheels it pins), PyPI for the rest, constrained by the service lock so
    the packages both share stay identical."""
    lock = DEVICE_LOCKS["cuda"]
    return [
        sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
        "--strip-extras", "--no-emit-index-url", "--no-emit-find-links", f"--index-url={lock.index}",
        "--extra-index-url=https://pypi.org/simple", "-o", str(output), str(source),
    ]  # fmt: skip


def gpu_lock_text(compiled: str, shared: str) -> str:
    """Keep what the service lock does not already pin (torch, its nvidia-* wheels, triton),
    under the index line."""
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", shared, re.MULTILINE)}
    kept = [
        c for c in stanzas(compiled) if re.match(r"^[A-Za-z0-9_.-]+==", c) and c.split("==")[0].lower() not in pinned
    ]
    return device_lock_text(DEVICE_LOCKS["cuda"], "".join(kept))
