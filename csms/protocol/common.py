"""Helpers shared by the version adapters: times, meter samples, command outcomes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import CallError, CallResult

from csms.clock import utc_now as utc_now
from csms.protocol.connection import CallTimeout, StationOffline
from diagnostics.commands import CommandOutcome, OutcomeStatus
from diagnostics.events import MeterSample

#: Station answers that mean "done or will be done" (Accepted, Scheduled, Unlocked...).
ACCEPTED_STATUSES = frozenset(
    {"Accepted", "Scheduled", "Unlocked", "RebootRequired", "AcceptedCanceled"}
)
NOT_SUPPORTED_STATUSES = frozenset({"NotSupported", "NotImplemented"})
NOT_SUPPORTED_ERRORS = frozenset({"NotImplemented", "NotSupported"})


def iso(moment: datetime) -> str:
    """An OCPP dateTime string (RFC 3339, UTC, ``Z`` suffix, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(raw: Any) -> datetime | None:
    """A station timestamp as an aware UTC datetime; ``None`` when absent or unreadable.

    Station clocks and formats are unreliable: a bad timestamp must not lose the message.
    """
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def meter_samples(
    meter_values: Iterable[Mapping[str, Any]], fallback: datetime
) -> list[MeterSample]:
    """Flatten OCPP MeterValue lists (snake_case keys) of either version into samples.

    1.6 sends values as strings with ``unit``; 2.0.1 as numbers with ``unit_of_measure``.
    Values that are not numbers are skipped (and counted by the caller's log, if needed).
    """
    samples: list[MeterSample] = []
    for meter_value in meter_values:
        moment = parse_time(meter_value.get("timestamp")) or fallback
        for sampled in meter_value.get("sampled_value", ()):
            try:
                value = float(sampled["value"])
            except (KeyError, TypeError, ValueError):
                continue
            unit = sampled.get("unit")
            unit_of_measure = sampled.get("unit_of_measure")
            if isinstance(unit_of_measure, Mapping):
                unit = unit_of_measure.get("unit", "Wh")
                multiplier = unit_of_measure.get("multiplier", 0)
                if isinstance(multiplier, int) and multiplier:
                    value *= 10.0**multiplier
            samples.append(
                MeterSample(
                    timestamp=moment,
                    value=value,
                    measurand=sampled.get("measurand") or "Energy.Active.Import.Register",
                    unit=unit,
                    phase=sampled.get("phase"),
                    context=sampled.get("context"),
                    location=sampled.get("location"),
                )
            )
    return samples


def energy_wh(samples: Iterable[MeterSample]) -> float | None:
    """The last energy register reading in Wh among ``samples``, if any."""
    value = None
    for sample in samples:
        if sample.measurand == "Energy.Active.Import.Register" and sample.phase is None:
            value = sample.value * (1000.0 if sample.unit == "kWh" else 1.0)
    return value


async def run_command(
    action: str,
    send: Callable[[], Awaitable[CallResult | CallError]],
    status_key: str | None = "status",
) -> CommandOutcome:
    """Send one command and turn whatever happens into a :class:`CommandOutcome`."""
    try:
        answer = await send()
    except CallTimeout as exc:
        return CommandOutcome(OutcomeStatus.TIMEOUT, action, detail=str(exc))
    except StationOffline as exc:
        return CommandOutcome(OutcomeStatus.OFFLINE, action, detail=str(exc))
    except OCPPError as exc:
        return CommandOutcome(
            OutcomeStatus.CALL_ERROR,
            action,
            error_code=exc.code,
            detail=f"answer violates the OCPP schema: {exc.description}",
        )
    if isinstance(answer, CallError):
        status = (
            OutcomeStatus.NOT_SUPPORTED
            if answer.error_code in NOT_SUPPORTED_ERRORS
            else OutcomeStatus.CALL_ERROR
        )
        return CommandOutcome(
            status,
            action,
            error_code=answer.error_code,
            detail=answer.error_description or None,
            data=dict(answer.error_details or {}),
        )
    return classify(action, answer.payload, status_key)


def classify(action: str, payload: dict[str, Any], status_key: str | None) -> CommandOutcome:
    """Turn a CALLRESULT payload into an outcome by the station status it carries.

    ``status_key`` names the field holding the verdict; ``None`` means an answer without one
    (GetConfiguration), which counts as accepted.
    """
    if status_key is None:
        return CommandOutcome(OutcomeStatus.ACCEPTED, action, data=payload)
    raw = payload.get(status_key)
    station_status = str(raw) if raw is not None else None
    if station_status in ACCEPTED_STATUSES:
        status = OutcomeStatus.ACCEPTED
    elif station_status in NOT_SUPPORTED_STATUSES:
        status = OutcomeStatus.NOT_SUPPORTED
    else:
        status = OutcomeStatus.REJECTED
    info = payload.get("statusInfo") or payload.get("attributeStatusInfo")
    detail = None
    if isinstance(info, Mapping):
        detail = " ".join(str(info.get(k, "")) for k in ("reasonCode", "additionalInfo")).strip()
    return CommandOutcome(status, action, station_status=station_status, data=payload,
                          detail=detail or None)


def refused(action: str, detail: str) -> CommandOutcome:
    """A command we cannot express for this station; nothing is sent."""
    return CommandOutcome(OutcomeStatus.REJECTED, action, detail=detail)
