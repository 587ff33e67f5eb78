"""The integration harness itself: its per-command timeout must fire on a silent hang
(a command that prints nothing), not only when output arrives, and kill the whole group."""

from __future__ import annotations

import subprocess
import time

import pytest
from conftest import Invoke


def test_timeout_fires_on_a_silent_hang_and_kills_the_process_group() -> None:
    silent = Invoke(program="/bin/sh")
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="ran longer than 2s"):
        silent("-c", "sleep 300 & echo started; wait", timeout=2)
    assert time.monotonic() - start < 10
    leftover = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True)
    assert leftover.stdout == "", "the hung command's children were killed too"
