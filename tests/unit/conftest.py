from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def outputs() -> dict[str, Any]:
    return json.loads((DATA / "outputs_ok.json").read_text())


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate .state/ so tests never touch a real environment's keys or outputs."""
    monkeypatch.setenv("DML_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"
