"""Handler failures are logged with a traceback once per exception type and window."""

from __future__ import annotations

from typing import Any

from csms.protocol.failures import FailureLog


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_repeated_failures_of_one_type_are_counted_not_logged() -> None:
    log, logger = FailureLog(window=3600), Recorder()
    assert log.report(logger, ConnectionError("db away"), action="Heartbeat")
    assert not any(log.report(logger, ConnectionError("db away")) for _ in range(50))
    assert log.report(logger, ValueError("other"), action="MeterValues")  # another type
    assert [fields["exc_info"].__class__ for _, fields in logger.lines] == [
        ConnectionError, ValueError]
    assert logger.lines[0][1]["action"] == "Heartbeat"
    assert all(event == "handler_failed" for event, _ in logger.lines)


def test_the_next_logged_failure_carries_the_suppressed_count() -> None:
    log, logger = FailureLog(window=0.0), Recorder()  # every failure is past the window
    for _ in range(3):
        assert log.report(logger, ConnectionError("db away"))
    assert [fields["suppressed_since_last"] for _, fields in logger.lines] == [0, 0, 0]
    log.window = 3600
    log.report(logger, ConnectionError("db away"))  # counted
    log.report(logger, ConnectionError("db away"))  # counted
    log.window = 0.0
    assert log.report(logger, ConnectionError("db away"))
    assert logger.lines[-1][1]["suppressed_since_last"] == 2
