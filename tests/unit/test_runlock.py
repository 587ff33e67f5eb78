"""One run at a time changes an environment: the controller's lock around reconcile and
Terraform (a second provision once deleted the host the first was creating)."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from disposable.engine import runlock
from disposable.errors import DisposableError


def test_durations_are_read_like_terraform_reads_them() -> None:
    assert runlock.seconds("0s") == 0
    assert runlock.seconds("60s") == 60
    assert runlock.seconds("5m") == 300
    assert runlock.seconds("1h30m") == 5400
    for bad in ("", "soon", "10", "-1s"):
        with pytest.raises(DisposableError, match="is not a duration"):
            runlock.seconds(bad)


def test_a_second_run_waits_then_gives_up_saying_nothing_changed(state_dir: Path) -> None:
    with runlock.holding("local", "provision"):
        holder = (state_dir / "local" / "run.lock").read_text()
        assert holder.startswith("provision, pid ")
        with pytest.raises(DisposableError) as error, runlock.holding("local", "destroy", "1s", poll=0.1):
            pass
        assert "the local state is locked by another run (provision, pid" in str(error.value)
        assert "Nothing was changed" in str(error.value)
    # Released: the next run takes it at once, and so does a run after a holder that died
    # (the kernel drops an flock with its process; simulated by closing the handle).
    with runlock.holding("local", "plan", "0s"):
        pass
    handle = open(state_dir / "local" / "run.lock")  # noqa: SIM115
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.close()
    with runlock.holding("local", "plan", "0s"):
        pass
