"""Bounded label values: every label of a CSMS metric takes its value from a fixed set.

Values sent by chargers (action names, statuses) or carried by notices are mapped onto these
sets before they become label values, so that a hostile or broken charger cannot create new
time series (Prometheus naming conventions: no unbounded or per-charger labels).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, get_args

from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

from diagnostics.commands import OutcomeStatus, StationCommand
from diagnostics.events import ConnectorStatus, DriverCategory
from diagnostics.model import Priority

UNKNOWN: Final = "unknown"
"""The ``action`` label of a message whose action the version does not define."""
OTHER: Final = "other"
"""The label value of anything outside a known set."""

VERSIONS: Final = ("1.6", "2.0.1")
ACTIONS: Final[dict[str, frozenset[str]]] = {
    "1.6": frozenset(a.value for a in Action16),
    "2.0.1": frozenset(a.value for a in Action201),
}
"""The actions each OCPP version defines (the ``ocpp`` library's enums)."""

STATION_STATES: Final = ("offline", "faulted", "in_use", "unavailable", "available")
"""See :func:`csms.store.runs.station_state`."""
CONNECTOR_STATUSES: Final = tuple(s.value for s in ConnectorStatus)
PRIORITIES: Final = tuple(p.value for p in Priority)
SLA_DEADLINES: Final = ("response", "on_site", "resolution")
"""The deadlines :func:`diagnostics.tickets.sla_breaches` reports."""
RUN_OUTCOMES: Final = (
    "cleared", "fixed", "recovered", "resolved", "resolved_by_operator", "healthy_again",
    "diagnosed", "superseded", "merged", "closed_by_operator",
)
"""Outcomes of a finished diagnostics run (see :class:`diagnostics.actions.RunView`)."""
COMMANDS: Final = tuple(cls.__name__ for cls in get_args(StationCommand))
"""Remote actions (version-neutral command names: ``SoftReset``, ``UnlockConnector``...)."""
COMMAND_RESULTS: Final = tuple(s.value for s in OutcomeStatus)
COMMAND_SOURCES: Final = ("engine", "operator")
LOG_UPLOAD_RESULTS: Final = ("uploaded", "failed")
REPORT_CATEGORIES: Final = tuple(c.value for c in DriverCategory)
REFUSALS: Final = ("bad_path", "unknown_station", "unauthorized", "no_subprotocol")
"""Why a connection attempt was refused (``csms_ocpp_connections_refused_total``)."""
RATE_LIMITED: Final = "rate_limited"
"""The refusal reason of a handshake over ``limits.handshakes_per_minute`` (counted from its
first use, so that the series above stay as they were)."""
LIMITS: Final = (
    "ocpp_message_rate", "ocpp_abuse_close", "ocpp_message_size", "ocpp_handshake_rate",
    "api_rate", "api_body_size", "upload_rate", "upload_body_size", "upload_token",
)
"""Which limit refused something (``csms_limit_refusals_total``, see :mod:`csms.security`)."""


def bounded(value: object, allowed: Iterable[str], fallback: str = OTHER) -> str:
    """``value`` when it is one of ``allowed`` (as a string), else ``fallback``."""
    text = str(value) if value is not None else ""
    return text if text in allowed else fallback


def refusal(reason: str) -> str:
    """The ``reason`` label for a refusal reason as :class:`csms.server.OcppServer` logs it."""
    if reason == "unknown station":
        return "unknown_station"
    if reason in ("missing Basic auth", "user is not the id", "wrong password"):
        return "unauthorized"
    if reason.startswith("no common OCPP subprotocol"):
        return "no_subprotocol"
    if reason == "bad path or identity":
        return "bad_path"
    if reason == "handshake rate limit":
        return RATE_LIMITED
    return OTHER
