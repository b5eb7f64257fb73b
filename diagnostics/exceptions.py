"""Exceptions of the diagnostics package, all in one place.

- :class:`DiagnosticsError`: base of everything the package raises on purpose.

  - :class:`ConfigError`: a playbook, SLA or log-signature file (or the objects built from it)
    is invalid; the message names the file and the offending entry.
  - :class:`InvalidTransition`: a ticket status change the lifecycle does not allow.
  - :class:`UnknownTicket`: a ticket id the engine does not hold (closed or never opened).
  - :class:`StateError`: a persisted engine state cannot be read (wrong version, bad JSON).

The engine itself never raises on odd input from stations (unknown ids, stale outcomes,
duplicate notifications): it ignores or records them.
"""

from __future__ import annotations


class DiagnosticsError(Exception):
    """Base class of the package's exceptions."""


class ConfigError(DiagnosticsError):
    """An invalid configuration; the message says where and what."""


class InvalidTransition(DiagnosticsError):
    """A ticket lifecycle transition that is not allowed."""


class UnknownTicket(DiagnosticsError, KeyError):
    """A ticket id the engine does not know."""


class StateError(DiagnosticsError):
    """A persisted engine state that cannot be restored."""
