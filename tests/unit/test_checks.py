"""`invoke test` (what CI runs) names the failed tests where a reader of the log's last lines sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from disposable import checks
from disposable.errors import DisposableError

SUITE = """
def test_passes():
    assert True

def test_fails():
    assert 1 + 1 == 3, "arithmetic"

def test_also_fails():
    raise RuntimeError("boom")
"""


def test_a_failed_pytest_run_names_each_failed_test_and_its_reason(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    with pytest.raises(DisposableError) as failure:
        checks._pytest("tiny suite", "-q", "-p", "no:cacheprovider", f"--rootdir={tmp_path}", str(suite))
    message = str(failure.value)
    assert "tiny suite failed (pytest exit 1)" in message
    assert "test_suite.py::test_fails - AssertionError: arithmetic" in message
    assert "test_suite.py::test_also_fails - RuntimeError: boom" in message
    assert "test_passes" not in message


def test_a_passing_pytest_run_raises_nothing(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text("def test_passes():\n    assert True\n")
    checks._pytest("tiny suite", "-q", "-p", "no:cacheprovider", f"--rootdir={tmp_path}", str(suite))


def test_failed_tests_reads_the_short_summary_only() -> None:
    output = (
        "FAILED is a word that may appear in a test's own output\n"
        "=========================== short test summary info ============================\n"
        "FAILED tests/a.py::test_x - AssertionError: assert 1 <= 0\n"
        "ERROR tests/b.py::test_y - OSError: no such file\n"
        "================== 1 failed, 1 error, 34 passed in 2463.83s ===================\n"
    )
    assert checks.failed_tests(output) == [
        "FAILED tests/a.py::test_x - AssertionError: assert 1 <= 0",
        "ERROR tests/b.py::test_y - OSError: no such file",
    ]
    assert checks.failed_tests("no summary at all") == []


def test_invoke_test_repeats_every_failure_after_the_summary_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(name: str):  # type: ignore[no-untyped-def]
        def step() -> None:
            raise DisposableError(f"{name} tests failed (pytest exit 1):\n  FAILED tests/{name}.py::test_z - boom")

        return step

    ran: list[str] = []
    monkeypatch.setattr(checks, "lint", lambda: ran.append("lint"))
    monkeypatch.setattr(checks, "unit", fails("unit"))
    monkeypatch.setattr(checks, "molecule", lambda: ran.append("molecule"))
    monkeypatch.setattr(checks, "integration", fails("integration"))
    with pytest.raises(DisposableError, match="Failed: unit, integration"):
        checks.test_all()
    assert ran == ["lint", "molecule"], "every part runs even after an earlier one failed"
    tail = capsys.readouterr().out.partition("Test summary:")[2]
    assert "FAILED tests/unit.py::test_z - boom" in tail
    assert "FAILED tests/integration.py::test_z - boom" in tail
