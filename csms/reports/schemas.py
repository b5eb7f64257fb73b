"""The shapes of the report API (request and response bodies, as OpenAPI shows them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from csms.store.models import STATION_ID_MAX_LENGTH

Category = Literal[
    "wont_start", "cant_stop_cable_stuck", "payment", "missing_session", "physical_damage",
    "display_or_reader", "other",
]
"""The values of :class:`diagnostics.events.DriverCategory` (a test keeps them equal)."""
StatusName = Literal[
    "received", "checking_remotely", "fixed_remotely", "technician_dispatched", "resolved",
]
"""The values of :class:`csms.reports.status.ReportStatus`."""

TEXT_MAX_LENGTH = 2000
CONTACT_MAX_LENGTH = 200
CONNECTOR_MAX = 1000


def _clean(value: str | None) -> str | None:
    """PostgreSQL refuses NUL in text: it becomes U+FFFD."""
    return None if value is None else value.replace("\x00", "\ufffd")


class ReportIn(BaseModel):
    """A driver's fault report (JSON, or the fields of the multipart form with photos)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    station_id: str = Field(min_length=1, max_length=STATION_ID_MAX_LENGTH,
                            description="The charge point identity shown on the station")
    connector: int | None = Field(None, ge=0, le=CONNECTOR_MAX,
                                  description="Connector (1.6) or EVSE (2.0.1) number; "
                                  "empty or 0: the whole station")
    category: Category = Field(description="What is wrong")
    text: str = Field(min_length=1, max_length=TEXT_MAX_LENGTH,
                      description="What happened, in the driver's words")
    contact: str | None = Field(None, max_length=CONTACT_MAX_LENGTH,
                                description="Phone or e-mail for a call back (shown to "
                                "operators only)")

    @field_validator("station_id", "text", "contact")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return _clean(value)


class ReportCreated(BaseModel):
    """A filed report: keep the tracking token, it is shown only once."""

    report_id: str
    tracking_token: str
    status: StatusName
    track_url: str


class StatusChange(BaseModel):
    """One step of a report's history."""

    status: StatusName
    at: datetime


class ReportTracking(BaseModel):
    """What the driver sees when following a report (no personal data)."""

    report_id: str
    station_id: str
    connector: int | None
    category: Category
    status: StatusName
    history: list[StatusChange]
    created_at: datetime
    updated_at: datetime


class PhotoOut(BaseModel):
    """A stored photo of a report."""

    n: int
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    url: str


class ReportOut(ReportTracking):
    """A report as operators see it; ``contact`` and ``client_address`` only for the operator
    role and above."""

    text: str
    contact: str | None = None
    client_address: str | None = None
    run_id: str | None
    ticket_id: str | None
    photos: list[PhotoOut]


class ReportPage(BaseModel):
    """One page of reports, newest first, and how many match in all."""

    items: list[ReportOut]
    total: int
