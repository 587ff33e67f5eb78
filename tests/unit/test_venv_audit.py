"""roles/python_runtime/files/venv_audit.py, run for real in a throwaway venv: what configure
repairs (reinstall the damaged package, remove files no package owns) must never include
the damaged package's own intact files (seen: an edited fastapi/__init__.py made every
other fastapi file 'unrecorded', configure deleted them, the service could not start)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import venv
from pathlib import Path

AUDIT = Path(__file__).resolve().parents[2] / "roles" / "python_runtime" / "files" / "venv_audit.py"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _site(root: Path) -> tuple[Path, Path]:
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return python, Path(purelib)


def _install(site: Path, name: str, files: dict[str, bytes]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    record += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    for path, data in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)


def test_an_edited_file_marks_its_package_damaged_and_nothing_else_unrecorded(tmp_path: Path) -> None:
    python, site = _site(tmp_path / "venv")
    _install(site, "fastapi", {"fastapi/__init__.py": b"x = 1\n", "fastapi/applications.py": b"app = 1\n"})
    _install(site, "intruder", {"intruder/__init__.py": b""})
    (site / "fastapi" / "__init__.py").write_text("x = 1\n# patched\n")
    (site / "sitecustomize.py").write_text("import os\n")
    lock = tmp_path / "requirements.txt"
    lock.write_text("fastapi==1.0 --hash=sha256:00\n")
    out = subprocess.run([str(python), str(AUDIT), str(lock)], capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    assert found["damaged"] == ["fastapi"]
    assert found["extra"] == ["intruder"]
    assert found["unrecorded"] == [str(site / "sitecustomize.py")], "an intact file of a damaged package is recorded"


def test_missing_names_locked_packages_absent_or_at_another_version(tmp_path: Path) -> None:
    """configure runs pip only when `missing` is not empty: it must name a package that is not
    installed and one installed at another version, and nothing that matches the lock."""
    python, site = _site(tmp_path / "venv")
    _install(site, "fastapi", {"fastapi/__init__.py": b""})  # 1.0, as locked
    _install(site, "uvicorn", {"uvicorn/__init__.py": b""})  # 1.0, locked at 2.0
    lock = tmp_path / "requirements.txt"
    lock.write_text(
        "fastapi==1.0 \\\n    --hash=sha256:00\nuvicorn==2.0 \\\n    --hash=sha256:00\nRedis==5.0.1 --hash=sha256:00\n"
    )
    out = subprocess.run([str(python), str(AUDIT), str(lock)], capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    assert found["missing"] == ["redis==5.0.1", "uvicorn==2.0"]
    assert found["extra"] == [] and found["damaged"] == []


def test_large_files_hashed_in_threads_are_checked_like_small_ones(tmp_path: Path) -> None:
    """Files of 1 MiB and more are hashed by a thread pool: an edited or deleted one still
    marks its package damaged, and an intact one does not."""
    python, site = _site(tmp_path / "venv")
    big = b"w" * (1 << 20)
    _install(site, "torch", {"torch/lib/libtorch.so": big, "torch/__init__.py": b""})
    _install(site, "numpy", {"numpy/core.so": big})
    _install(site, "scipy", {"scipy/linalg.so": big + b"x"})
    (site / "torch" / "lib" / "libtorch.so").write_bytes(big[:-1] + b"v")
    (site / "numpy" / "core.so").unlink()
    lock = tmp_path / "requirements.txt"
    lock.write_text("torch==1.0 --hash=sha256:00\nnumpy==1.0 --hash=sha256:00\nscipy==1.0 --hash=sha256:00\n")
    out = subprocess.run([str(python), str(AUDIT), str(lock)], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["damaged"] == ["numpy", "torch"]
