"""Configurable (mis)behaviour of a simulated charging station.

A :class:`Behaviour` says, per OCPP action the CSMS sends, how the station answers: the normal
positive answer, a rejection, "not supported", a CALLERROR, no answer at all, or a late answer.
It also carries the quirks real chargers show around diagnostics uploads (see
``docs`` / ocpp-notes: duplicate ``Uploading``, notification before the CALLRESULT, missing final
status). Scenario-specific flags are added here as plain dataclass fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Mode(StrEnum):
    """How the station answers one CALL from the CSMS (OCPP-J 1.6 §4.2, 2.0.1 Part 4 §4)."""

    ACCEPT = "accept"
    """Normal positive answer (Accepted / Unlocked / values ...), then any follow-up."""
    REJECT = "reject"
    """Negative status defined by the message (Rejected, UnlockFailed, ...)."""
    NOT_SUPPORTED = "not_supported"
    """The message's "not supported" status (NotSupported/NotImplemented) if it has one, else a
    CALLERROR (code :attr:`Behaviour.not_supported_error_code`)."""
    CALL_ERROR = "call_error"
    """CALLERROR ``InternalError``."""
    TIMEOUT = "timeout"
    """Never answer (the CSMS must time out)."""


@dataclass
class Behaviour:
    """Per-action response modes and diagnostics quirks of one simulated station.

    ``modes`` and ``delays`` are keyed by OCPP action name (``"Reset"``, ``"GetLog"``, ...);
    actions not listed use ``default_mode`` / ``default_delay``.
    """

    modes: dict[str, Mode | str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    default_mode: Mode | str = Mode.ACCEPT
    default_delay: float = 0.0
    notify_before_result: bool = False
    """Send the first follow-up message (StatusNotification, DiagnosticsStatusNotification /
    LogStatusNotification ``Uploading``, ...) BEFORE the CALLRESULT of the request."""
    skip_final_log_status: bool = False
    """Never send the final Uploaded/UploadFailed/UploadFailure notification."""
    duplicate_progress: bool = False
    """Send the ``Uploading`` notification twice."""
    upload_append_filename: bool = True
    """Treat the upload location as a directory and append the file name (most chargers)."""
    boot_reason_after_reset: str | None = None
    """2.0.1: boot reason sent after a CSMS reset; None = spec (RemoteReset / ScheduledReset).
    Set to ``"PowerUp"`` to mimic chargers that ignore the rule."""
    reset_delay: float = 0.1
    """Seconds between the Reset answer (and the StopTransactions) and dropping the connection,
    like a real reboot takes a moment."""
    not_supported_error_code: str = "NotSupported"
    """CALLERROR code for NOT_SUPPORTED when the message has no status for it. OCPP-J 1.6 §4.2.3
    and 2.0.1 Part 4 §4.3: NotSupported = "recognized but not supported"; some chargers send
    NotImplemented instead."""

    def mode_for(self, action: str) -> Mode:
        """Response mode for ``action``."""
        return Mode(self.modes.get(action, self.default_mode))

    def delay_for(self, action: str) -> float:
        """Seconds to wait before answering ``action``."""
        return max(0.0, float(self.delays.get(action, self.default_delay)))

    @classmethod
    def with_modes(cls, **modes: Mode | str) -> Behaviour:
        """Shorthand: ``Behaviour.with_modes(Reset="reject", GetLog="timeout")``."""
        return cls(modes=dict(modes))
