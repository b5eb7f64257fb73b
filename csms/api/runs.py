"""Diagnostics runs: running ones with their current step, finished ones with every step."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from csms.api.auth import Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.schemas import MAX_OFFSET, Page, RunOut, StepOut
from csms.api.tokens import Role
from csms.store.models import RunRecord


def run_out(record: RunRecord) -> RunOut:
    """The API form of a stored run (``data`` is the encoded RunView)."""
    data: dict[str, Any] = record.data
    steps = [
        StepOut(
            index=step["index"], action=step["action"], result=step["result"],
            started_at=step["started_at"], finished_at=step.get("finished_at"),
            outcome=step.get("outcome"), station_status=step.get("station_status"),
            detail=step.get("detail"),
        )
        for step in data.get("steps", [])
    ]
    return RunOut(
        run_id=record.run_id, station_id=record.station_id, connector=record.connector,
        fault_class=record.fault_class, detection=record.detection, phase=record.phase,
        current_step=record.current_step, outcome=record.outcome, ticket_id=record.ticket_id,
        node=record.node, started_at=record.started_at, updated_at=record.updated_at,
        finished_at=record.finished_at,
        plan=[_step_name(step) for step in data.get("plan", [])],
        steps=steps, codes=list(data.get("codes", [])),
        findings=list(data.get("findings", [])), reports=list(data.get("reports", [])),
        safety=bool(data.get("safety", False)), wait_reason=data.get("wait_reason"),
    )


def _step_name(step: Any) -> str:
    return step if isinstance(step, str) else str(step.get("action", step))


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """``/runs`` (viewer)."""
    api = APIRouter(tags=["diagnostics"])
    viewer = Depends(auth.require(Role.VIEWER))

    @api.get("/runs", summary="List diagnostics runs")
    async def list_runs(
        principal: Principal = viewer,
        active: Annotated[bool | None, Query(description="true: running, false: finished")]
        = None,
        station_id: str | None = None,
        outcome: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Page[RunOut]:
        """Runs, newest first: phase, current step, steps done with their results."""
        rows = await ctx.store.runs(station_id, active=active, outcome=outcome, limit=limit,
                                    offset=offset)
        total = await ctx.store.count_runs(station_id, active=active, outcome=outcome)
        return Page(items=[run_out(row) for row in rows], total=total)

    @api.get("/runs/{run_id}", summary="Run detail")
    async def get_run(run_id: str, principal: Principal = viewer) -> RunOut:
        """One run with every step, its findings and the driver reports it joined."""
        record = await ctx.store.get_run(run_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown run {run_id!r}")
        return run_out(record)

    return api
