"""What a driver sees of the diagnosis their report started: five statuses, only forward.

The status follows the run the report joined and that run's ticket (see
:class:`~diagnostics.actions.RunView` for the run outcomes):

============================  =====================================================
``received``                  stored; the diagnostics engine has not taken it up yet
``checking_remotely``         a diagnostics run has it: status, logs, remote steps
``fixed_remotely``            a remote step fixed the station (outcomes ``fixed``,
                              ``recovered``)
``technician_dispatched``     a field-service ticket is open for it (ticket ``open``,
                              ``acknowledged``, ``dispatched``; run outcome
                              ``healthy_again``: the ticket is left to people)
``resolved``                  the ticket was resolved or closed, or the run ended with
                              the station healthy without a remote fix (``cleared``,
                              ``resolved``, ``resolved_by_operator``,
                              ``closed_by_operator``, ``diagnosed``)
============================  =====================================================

A status never goes back: ``fixed_remotely`` and ``resolved`` are final. A run that ends
``merged`` or ``superseded`` did not answer the report: the report is filed with the engine
again and joins the run that took over.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ReportStatus(enum.StrEnum):
    """Where a driver's report is (the driver-facing list)."""

    RECEIVED = "received"
    CHECKING_REMOTELY = "checking_remotely"
    FIXED_REMOTELY = "fixed_remotely"
    TECHNICIAN_DISPATCHED = "technician_dispatched"
    RESOLVED = "resolved"

    @property
    def rank(self) -> int:
        """Order of progress: a report only moves to a higher rank."""
        return _RANK[self]

    @property
    def final(self) -> bool:
        """``fixed_remotely`` or ``resolved``: nothing changes it any more."""
        return self in FINAL_STATUSES


_RANK = {
    ReportStatus.RECEIVED: 0,
    ReportStatus.CHECKING_REMOTELY: 1,
    ReportStatus.TECHNICIAN_DISPATCHED: 2,
    ReportStatus.FIXED_REMOTELY: 3,
    ReportStatus.RESOLVED: 3,
}
FINAL_STATUSES = frozenset({ReportStatus.FIXED_REMOTELY, ReportStatus.RESOLVED})

FIXED_OUTCOMES = frozenset({"fixed", "recovered"})
"""Run outcomes after which the station works again thanks to a remote step."""
RESOLVED_OUTCOMES = frozenset(
    {"cleared", "resolved", "resolved_by_operator", "closed_by_operator", "diagnosed"}
)
"""Run outcomes that end the case without a remote fix."""
TICKET_LEFT_OPEN_OUTCOMES = frozenset({"healthy_again"})
"""The station is healthy again but its ticket stays with people."""
REFILE_OUTCOMES = frozenset({"merged", "superseded"})
"""The run ended without an answer: the report is filed again (it joins the run that took
over)."""
OPEN_TICKET_STATUSES = frozenset({"open", "acknowledged", "dispatched"})
CLOSED_TICKET_STATUSES = frozenset({"resolved", "closed"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a run or ticket notice means for the reports it lists.

    ``status`` is ``None`` when it says nothing new (an unknown outcome or ticket status);
    ``refile`` asks to file the report with the engine again.
    """

    status: ReportStatus | None
    run_id: str | None = None
    ticket_id: str | None = None
    refile: bool = False


def run_verdict(run: Mapping[str, Any]) -> Verdict:
    """The verdict of a run notice (``run`` is the encoded run view)."""
    run_id = _text(run.get("run_id"))
    ticket_id = _text(run.get("ticket_id"))
    outcome = run.get("outcome")
    if outcome is None:
        status = (ReportStatus.TECHNICIAN_DISPATCHED if ticket_id
                  else ReportStatus.CHECKING_REMOTELY)
        return Verdict(status, run_id, ticket_id)
    if outcome in FIXED_OUTCOMES:
        return Verdict(ReportStatus.FIXED_REMOTELY, run_id, ticket_id)
    if outcome in RESOLVED_OUTCOMES:
        return Verdict(ReportStatus.RESOLVED, run_id, ticket_id)
    if outcome in TICKET_LEFT_OPEN_OUTCOMES or ticket_id:
        return Verdict(ReportStatus.TECHNICIAN_DISPATCHED, run_id, ticket_id)
    if outcome in REFILE_OUTCOMES:
        return Verdict(None, run_id, None, refile=True)
    return Verdict(None, run_id, ticket_id)


def ticket_verdict(ticket: Mapping[str, Any]) -> Verdict:
    """The verdict of a ticket notice (``ticket`` is the encoded ticket)."""
    status = ticket.get("status")
    ticket_id = _text(ticket.get("ticket_id"))
    run_id = _text(ticket.get("run_id"))
    if status in OPEN_TICKET_STATUSES:
        return Verdict(ReportStatus.TECHNICIAN_DISPATCHED, run_id, ticket_id)
    if status in CLOSED_TICKET_STATUSES:
        return Verdict(ReportStatus.RESOLVED, run_id, ticket_id)
    return Verdict(None, run_id, ticket_id)


def report_ids(data: Mapping[str, Any]) -> list[str]:
    """The ids of the driver reports a run or ticket lists (in order, without duplicates)."""
    reports = data.get("reports")
    if not isinstance(reports, list | tuple):
        return []
    ids: dict[str, None] = {}
    for report in reports:
        if isinstance(report, Mapping):
            report_id = report.get("report_id")
            if isinstance(report_id, str) and report_id:
                ids[report_id] = None
    return list(ids)


def advances(current: ReportStatus, new: ReportStatus) -> bool:
    """Whether a report in ``current`` moves to ``new`` (only forward, never from a final
    status)."""
    return not current.final and new.rank > current.rank


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
