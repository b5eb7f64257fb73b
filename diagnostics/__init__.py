"""Fault detection and remediation engine: pure, events in, commands out.

Modules, one concept each:

- :mod:`diagnostics.events`, :mod:`diagnostics.commands`: the version-neutral vocabulary
  (plus the external triggers ``DriverFaultReported`` and ``DiagnosisRequested``).
- :mod:`diagnostics.engine`: :class:`DiagnosticsEngine`, the sans-I/O state machine.
- :mod:`diagnostics.actions`: what the engine asks for (``SendCommand``, tickets, ``RunChanged``).
- :mod:`diagnostics.playbooks`: fault classes and ladders; :mod:`diagnostics.sla`: deadlines;
  :mod:`diagnostics.tickets`: tickets and their lifecycle; :mod:`diagnostics.signatures`: log
  signature matching; :mod:`diagnostics.timings`: every wait.
- :mod:`diagnostics.config`: the only module that reads files (the TOML in ``config/``).
- :mod:`diagnostics.state`: the persisted state (``to_json``/``from_json``).
- :mod:`diagnostics.exceptions`: the exception tree.
"""

from diagnostics.actions import (
    Action,
    OpenTicket,
    ResolveTicket,
    RunChanged,
    RunView,
    SendCommand,
    UpdateTicket,
)
from diagnostics.config import (
    load_playbooks,
    load_signatures,
    load_sla,
    parse_playbooks,
    parse_signatures,
    parse_sla,
)
from diagnostics.engine import DiagnosticsEngine, LogLocation, OperatorDecision
from diagnostics.exceptions import (
    ConfigError,
    DiagnosticsError,
    InvalidTransition,
    StateError,
    UnknownTicket,
)
from diagnostics.model import Priority, StationInfo
from diagnostics.playbooks import PlaybookSet
from diagnostics.signatures import LogFinding, Severity, SignatureSet, match_log
from diagnostics.sla import SlaPolicies
from diagnostics.state import EngineState
from diagnostics.tickets import Ticket, TicketStatus, sla_breaches
from diagnostics.timings import Timings

__all__ = [
    "Action",
    "ConfigError",
    "DiagnosticsEngine",
    "DiagnosticsError",
    "EngineState",
    "InvalidTransition",
    "LogFinding",
    "LogLocation",
    "OpenTicket",
    "OperatorDecision",
    "PlaybookSet",
    "Priority",
    "ResolveTicket",
    "RunChanged",
    "RunView",
    "SendCommand",
    "Severity",
    "SignatureSet",
    "SlaPolicies",
    "StateError",
    "StationInfo",
    "Ticket",
    "TicketStatus",
    "Timings",
    "UnknownTicket",
    "UpdateTicket",
    "load_playbooks",
    "load_signatures",
    "load_sla",
    "match_log",
    "parse_playbooks",
    "parse_signatures",
    "parse_sla",
    "sla_breaches",
]
