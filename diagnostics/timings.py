"""Timings of the engine: production defaults, shrunk for tests by :meth:`Timings.scaled`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

_MIN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Timings:
    """Every wait of the engine. Defaults are production values.

    ``scale`` multiplies durations written in playbooks (a step ``timeout``, a ``wait``
    duration, a class ``grace``): :meth:`scaled` sets it together with the fields, so an
    end-to-end run can take seconds with the shipped playbooks.
    """

    grace: timedelta = 5 * _MIN
    """Wait before acting on a fault: many clear by themselves."""
    settle: timedelta = 2 * _MIN
    """How long a fixed connector must stay healthy before the fix counts."""
    command_timeout: timedelta = 2 * _MIN
    """Engine-side limit for ``command_finished`` (beyond the server's own call timeout)."""
    step_timeout: timedelta = 5 * _MIN
    """Verification limit of unlock and availability cycles (healthy + settle within it)."""
    reset_timeout: timedelta = 10 * _MIN
    """Verification limit of resets: reboot, Available, settle."""
    log_timeout: timedelta = 15 * _MIN
    """Limit for the log's final upload status and its analysis."""
    log_lookback: timedelta = 24 * 60 * _MIN
    """How far back a requested log starts (RequestLog ``since``)."""
    idle_wait: timedelta = 60 * _MIN
    """How long a run waits for a live session to end (or another reset to finish)."""
    silence: timedelta = 15 * _MIN
    """A connected station silent this long is probed (TriggerMessage Heartbeat)."""
    offline_grace: timedelta = 15 * _MIN
    """A disconnected station is ticketed after this long."""
    flap_window: timedelta = 60 * _MIN
    """A fault back within this long after a remote fix (or resolution) is flapping."""
    recurrence_window: timedelta = 24 * 60 * _MIN
    """Window of ``max_occurrences`` (playbook): a fault recurring that often is ticketed."""
    boot_loop_window: timedelta = 15 * _MIN
    """Window of ``boot_loop_boots`` unexpected boots; also the quiet time that ends a loop."""
    failed_session_window: timedelta = 120 * _MIN
    """Window of ``failed_sessions`` failed sessions on one connector."""
    preparing_timeout: timedelta = 10 * _MIN
    """A connector in Preparing this long without a session is a failed session."""
    reset_budget_window: timedelta = 24 * 60 * _MIN
    """The "per day" of the reset budget."""
    scale: float = 1.0

    def scaled(self, factor: float) -> Timings:
        """Every duration multiplied by ``factor`` (and playbook durations through ``scale``)."""
        changes: dict[str, object] = {"scale": self.scale * factor}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, timedelta):
                changes[item.name] = value * factor
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_seconds(cls, **seconds: float) -> Timings:
        """Build from plain numbers of seconds (``scale`` stays a plain factor)."""
        values: dict[str, object] = {}
        for name, value in seconds.items():
            values[name] = value if name == "scale" else timedelta(seconds=value)
        return cls(**values)  # type: ignore[arg-type]

    def playbook(self, value: timedelta | None, default: timedelta) -> timedelta:
        """A playbook duration scaled by ``scale``, or ``default`` (already a setting)."""
        return default if value is None else value * self.scale
