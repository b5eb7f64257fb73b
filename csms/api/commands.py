"""Operator commands: reset, unlock, availability, trigger, get log, diagnose now.

Every command goes through the engine's safety rules first (``DiagnosticsEngine.
operator_command``): no reset while a safety fault is open, no second reset in flight, the
daily reset budget, and no reset, unlock or availability change during a live session unless
``force`` is set. A refusal is a 409 with the reason; a station that is not connected is a
409 too; otherwise the station's answer comes back as ``result`` (accepted, rejected,
not_supported, call_error, timeout).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from csms.api.auth import Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.tokens import Role
from csms.logs import get_logger
from csms.notices import command_notice
from diagnostics.commands import (
    ChangeAvailability,
    CommandOutcome,
    HardReset,
    LogKind,
    OutcomeStatus,
    RequestLog,
    SoftReset,
    StationCommand,
    TriggerKind,
    TriggerMessage,
    UnlockConnector,
)
from diagnostics.events import DiagnosisRequested

log = get_logger("csms.api.commands")

OPERATOR_LOG_IDS = (1_000_000, 2_000_000_000)
"""Request ids of operator log requests (the engine numbers its own from 1)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Body):
    """A station reset (2.0.1 may target one EVSE)."""

    evse_id: int | None = Field(None, ge=1)
    force: bool = Field(False, description="reset even during a live charging session")


class UnlockBody(_Body):
    """Unlock a connector (1.6: connector id; 2.0.1: EVSE and connector)."""

    connector_id: int = Field(..., ge=1)
    evse_id: int | None = Field(None, ge=1)
    force: bool = False


class AvailabilityBody(_Body):
    """Set the station, an EVSE or a connector operative or inoperative."""

    operative: bool
    evse_id: int | None = Field(None, ge=0)
    connector_id: int | None = Field(None, ge=0)
    force: bool = False


class TriggerBody(_Body):
    """Ask the station to send a message now."""

    message: TriggerKind
    evse_id: int | None = Field(None, ge=0)
    connector_id: int | None = Field(None, ge=0)


class LogBody(_Body):
    """Ask the station to upload its diagnostics log (to our HTTP or FTP endpoint)."""

    kind: Literal["DiagnosticsLog", "SecurityLog"] = "DiagnosticsLog"
    protocol: Literal["ftp", "http"] | None = Field(
        None, description="upload protocol; default: diagnostics.upload_protocol")


class DiagnoseBody(_Body):
    """Start (or speed up) a diagnosis of the station or one connector."""

    connector_id: int | None = Field(None, ge=0)


class CommandResult(BaseModel):
    """What the station answered."""

    station_id: str
    command: str
    result: str
    """accepted, rejected, not_supported, call_error, timeout."""
    station_status: str | None
    detail: str | None
    request_id: int | None = None


class DiagnoseAccepted(BaseModel):
    """The diagnosis was queued; follow it under ``/runs?station_id=``."""

    station_id: str
    queued: bool = True
    runs_url: str


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """``/stations/{id}/commands/...`` (operator)."""
    api = APIRouter(tags=["commands"])
    operator = Depends(auth.require(Role.OPERATOR))

    async def run(station_id: str, command: StationCommand, principal: Principal,
                  force: bool = False, request_id: int | None = None) -> CommandResult:
        if await ctx.store.get_station(station_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown station {station_id!r}")
        name = type(command).__name__
        if ctx.runner is not None:
            decision = await ctx.runner.authorize(station_id, command, principal.label, force)
            if not decision.allowed:
                log.info("operator_command_refused", charger_id=station_id, command=name,
                         by=principal.label, reason=decision.reason)
                raise HTTPException(status.HTTP_409_CONFLICT, f"refused: {decision.reason}")
        log.info("operator_command", charger_id=station_id, command=name, by=principal.label)
        outcome: CommandOutcome = await ctx.execute(station_id, command)
        ctx.bus.publish(command_notice(station_id, command, outcome, source="operator",
                                       by=principal.label))
        if outcome.status is OutcomeStatus.OFFLINE:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"station {station_id} is not connected")
        return CommandResult(
            station_id=station_id, command=name, result=outcome.status.value,
            station_status=outcome.station_status,
            detail=outcome.detail or outcome.error_code, request_id=request_id,
        )

    @api.post("/stations/{station_id}/commands/soft-reset", summary="Soft reset")
    async def soft_reset(station_id: str, body: ResetBody | None = None,
                         principal: Principal = operator) -> CommandResult:
        """1.6 Reset Soft / 2.0.1 Reset OnIdle (B11/B12)."""
        body = body or ResetBody()
        return await run(station_id, SoftReset(evse_id=body.evse_id), principal, body.force)

    @api.post("/stations/{station_id}/commands/hard-reset", summary="Hard reset")
    async def hard_reset(station_id: str, body: ResetBody | None = None,
                         principal: Principal = operator) -> CommandResult:
        """1.6 Reset Hard / 2.0.1 Reset Immediate."""
        body = body or ResetBody()
        return await run(station_id, HardReset(evse_id=body.evse_id), principal, body.force)

    @api.post("/stations/{station_id}/commands/unlock", summary="Unlock a connector")
    async def unlock(station_id: str, body: UnlockBody,
                     principal: Principal = operator) -> CommandResult:
        """1.6 UnlockConnector / 2.0.1 F05."""
        command = UnlockConnector(connector_id=body.connector_id, evse_id=body.evse_id)
        return await run(station_id, command, principal, body.force)

    @api.post("/stations/{station_id}/commands/availability", summary="Change availability")
    async def availability(station_id: str, body: AvailabilityBody,
                           principal: Principal = operator) -> CommandResult:
        """1.6 ChangeAvailability / 2.0.1 G03."""
        command = ChangeAvailability(operative=body.operative, evse_id=body.evse_id,
                                     connector_id=body.connector_id)
        return await run(station_id, command, principal, body.force)

    @api.post("/stations/{station_id}/commands/trigger", summary="Trigger a message")
    async def trigger(station_id: str, body: TriggerBody,
                      principal: Principal = operator) -> CommandResult:
        """1.6 TriggerMessage / 2.0.1 F06: fresh status, heartbeat, boot, meter values."""
        command = TriggerMessage(body.message, evse_id=body.evse_id,
                                 connector_id=body.connector_id)
        return await run(station_id, command, principal)

    @api.post("/stations/{station_id}/commands/get-log", summary="Request the log")
    async def get_log(station_id: str, body: LogBody | None = None,
                      principal: Principal = operator) -> CommandResult:
        """1.6 GetDiagnostics (or GetLog) / 2.0.1 N01 GetLog; the upload appears under
        ``/logs`` once the charger has sent it."""
        body = body or LogBody()
        if ctx.uploads is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "uploads are disabled")
        request_id = OPERATOR_LOG_IDS[0] + secrets.randbelow(
            OPERATOR_LOG_IDS[1] - OPERATOR_LOG_IDS[0])
        protocol = body.protocol or ctx.settings.diagnostics.upload_protocol
        if protocol == "ftp" and not ctx.settings.uploads.ftp_enabled:
            protocol = "http"
        location = ctx.uploads.open(station_id, request_id).location(protocol)
        command = RequestLog(location=location, request_id=request_id,
                             kind=LogKind(body.kind))
        return await run(station_id, command, principal, request_id=request_id)

    @api.post("/stations/{station_id}/commands/diagnose", status_code=202,
              summary="Diagnose now")
    async def diagnose(station_id: str, body: DiagnoseBody | None = None,
                       principal: Principal = operator) -> DiagnoseAccepted:
        """Start the diagnosis ladder now (fresh status, configuration, log; the remote
        fixes follow if a fault is found), or skip the grace period of a running one."""
        body = body or DiagnoseBody()
        if await ctx.store.get_station(station_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown station {station_id!r}")
        if ctx.runner is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "diagnostics are disabled")
        ctx.runner.observe(DiagnosisRequested(
            station_id=station_id, at=datetime.now(UTC), connector_id=body.connector_id,
            requested_by=principal.label,
        ))
        log.info("diagnosis_requested", charger_id=station_id, by=principal.label)
        return DiagnoseAccepted(station_id=station_id,
                                runs_url=f"/api/v1/runs?station_id={quote(station_id, safe='')}")

    return api
