"""The engine after the restart of a single node (pure, fake clock): every connection died with
the process, and the engine hears so (``connections_lost``) before it resumes.

Without it, the resumed run sends its next command at once, while the charger is still
reconnecting: the command finds it offline and the ladder step is lost (a fixable fault ends
in a ticket). With it, the run waits for the charger and sends the step once it is back.
"""

from __future__ import annotations

from diagnostics.commands import HardReset, SoftReset
from tests.diagnostics.harness import Harness
from tests.diagnostics.test_persistence import internal_error_at_soft_reset


def _restart_alone(h: Harness) -> None:
    h.restart()
    h.connected = False
    h.actions.extend(h.engine.connections_lost(h.now))


def test_the_run_waits_for_the_reconnection() -> None:
    h = internal_error_at_soft_reset()
    _restart_alone(h)
    h.advance(seconds=30)
    assert h.commands().count("HardReset") == 0  # not to a charger still reconnecting
    [run] = [r for r in h.engine.runs() if r.fault_class == "internal_error"]
    assert run.steps[-1].action == "soft_reset" and run.outcome is None
    h.connect()
    h.boot()
    assert isinstance(h.last().command, HardReset)
    assert [type(s.command) for s in h.sent].count(SoftReset) == 1
    ids = [s.command_id for s in h.sent]
    assert len(ids) == len(set(ids))
    h.finish()
    h.status(1, "Available")
    h.status(2, "Available")
    h.advance(minutes=15)
    fixed = [r for r in h.finished() if r.fault_class == "internal_error"]
    assert [r.outcome for r in fixed] == ["fixed"] and not h.opened


def test_a_charger_that_never_comes_back_is_found_offline() -> None:
    h = internal_error_at_soft_reset()
    _restart_alone(h)
    h.advance(hours=2, quiet=True)
    assert h.commands().count("HardReset") == 0
    assert any(r.detection == "offline" for r in h.engine.runs()), h.engine.runs()


def test_stations_without_runs_are_left_alone() -> None:
    h = Harness()
    h.online()
    h.restart()
    assert h.engine.connections_lost(h.now) == []
    assert h.engine.runs() == []
