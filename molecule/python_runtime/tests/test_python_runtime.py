"""The python_runtime role's part of the host spec."""

import json
import re
from pathlib import Path
from typing import Any

from tests.spec.conftest import BUILD
from tests.spec.test_inference_service import test_venv_has_exactly_the_locked_packages  # noqa: F401


def test_wheelhouse_holds_exactly_the_locked_bytes(host: Any, spec: dict[str, Any]) -> None:
    """Every wheel on the host hashes to a sha256 listed in its lock (service/requirements.txt
    and the CPU torch lock, joined in .build/requirements-cpu.txt)."""
    locked = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", (BUILD / "requirements-cpu.txt").read_text()))
    bundle = json.loads((BUILD / "wheelhouse-cpu.json").read_text())
    directory = f"{spec['python_runtime_wheelhouse_root']}/{bundle['id']}"
    wheels = host.check_output(f"ls {directory}/*.whl").split()
    assert wheels, f"no wheels in {directory}"
    for wheel in wheels:
        assert host.file(wheel).sha256sum in locked, f"{Path(wheel).name} is not a locked artifact"
