"""The notices producers publish on the :class:`~csms.bus.EventBus`, built in one place so
that every subscriber (MQTT, metrics, webhook, live dashboard) sees one shape per kind."""

from __future__ import annotations

from typing import Any

from csms.bus import Notice, Topic
from csms.store.repository import event_detail
from diagnostics import RunView, Ticket
from diagnostics.commands import CommandOutcome, StationCommand
from diagnostics.events import (
    ConnectorStatusChanged,
    DomainEvent,
    FaultReported,
    LogUploadProgress,
    LogUploadStatus,
    StationBooted,
    StationConnected,
    StationDisconnected,
)
from diagnostics.serde import encode

_FAILED_UPLOADS = frozenset({
    LogUploadStatus.FAILED, LogUploadStatus.BAD_MESSAGE, LogUploadStatus.NOT_SUPPORTED,
    LogUploadStatus.PERMISSION_DENIED,
})


def _fields(event: DomainEvent) -> dict[str, Any]:
    data = event_detail(event)
    for key in ("event", "station_id"):
        data.pop(key, None)
    return data


def station_notice(event: DomainEvent) -> Notice | None:
    """The notice for a stored station event; ``None`` for traffic nobody watches
    (heartbeats, meter values, transactions, reports)."""
    match event:
        case StationConnected():
            return Notice(Topic.STATION, "connected", event.station_id, _fields(event), event.at)
        case StationDisconnected():
            return Notice(Topic.STATION, "disconnected", event.station_id, _fields(event),
                          event.at)
        case StationBooted():
            return Notice(Topic.STATION, "booted", event.station_id, _fields(event), event.at)
        case ConnectorStatusChanged():
            return Notice(Topic.STATION, "status", event.station_id, _fields(event), event.at)
        case FaultReported():
            kind = "cleared" if event.cleared else "reported"
            return Notice(Topic.FAULT, kind, event.station_id, _fields(event), event.at)
        case LogUploadProgress():
            kind = "upload_failed" if event.status in _FAILED_UPLOADS else "upload_status"
            return Notice(Topic.LOG, kind, event.station_id, _fields(event), event.at)
    return None


def run_notice(run: RunView) -> Notice:
    """``run/started`` for a run's first view, ``run/finished`` for its last, else
    ``run/step``."""
    if run.outcome is not None:
        kind = "finished"
    elif not run.steps and run.phase == "grace":
        kind = "started"
    else:
        kind = "step"
    data = encode(RunView, run)
    data["current_step"] = run.current_step
    return Notice(Topic.RUN, kind, run.station_id, data, run.updated_at)


def ticket_notice(kind: str, ticket: Ticket, note: str | None = None) -> Notice:
    """``ticket/opened``, ``ticket/updated`` or ``ticket/resolved`` with the whole ticket."""
    data = ticket.to_dict()
    if note:
        data["change"] = note
    return Notice(Topic.TICKET, kind, ticket.station_id, data, ticket.updated_at)


def command_notice(
    station_id: str, command: StationCommand, outcome: CommandOutcome, *, source: str,
    by: str | None = None, run_id: str | None = None,
) -> Notice:
    """``command/finished``: a remote action and its result (``accepted``, ``rejected``...)."""
    return Notice(Topic.COMMAND, "finished", station_id, {
        "action": type(command).__name__,
        "source": source,
        "by": by,
        "run_id": run_id,
        "result": outcome.status.value,
        "ocpp_action": outcome.action,
        "station_status": outcome.station_status,
        "detail": outcome.detail or outcome.error_code,
    })
