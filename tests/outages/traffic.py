"""Scripted charger traffic with a ledger of what the CSMS acknowledged.

A :class:`Talker` drives one simulated station (1.6 or 2.0.1) through charging sessions:
StatusNotification, transaction start, meter values, transaction end, StatusNotification.
Every message is sent again, unchanged, until the CSMS answers it with a CALLRESULT (as a
charger does with its transaction messages: 1.6 §4.10 / 2.0.1 E04 offline queue), so the
script always completes. Each message carries a marker the database must show afterwards
(a unique station timestamp, meter value or transaction id); the :class:`Ledger` records the
markers, how many attempts each took and why attempts failed. :func:`check` compares the
ledger with the database: every acknowledged marker is stored, and a marker acknowledged at
its first attempt is stored exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from csms.store import Database
from csms.store.models import MeterReading, StatusHistory, Transaction
from simulators import CallErrorResponse, NotConnectedError, StationBase

JSON = dict[str, Any]
ENERGY = "Energy.Active.Import.Register"
#: How long one attempt waits for the answer.
ANSWER_TIMEOUT = 5.0
#: Pause between two attempts of one message.
RETRY_PAUSE = 0.1
#: Meter values per session.
SAMPLES = 3

Marker = tuple[str, str, Any]
"""``(kind, station, value)``: kind ``status`` (station time), ``reading`` (meter value),
``tx`` (transaction id) or ``tx_end`` (transaction id)."""


@dataclass
class Delivery:
    """One message of the script and what became of it."""

    station: str
    action: str
    markers: list[Marker]
    attempts: int = 0
    acknowledged: bool = False


@dataclass
class Ledger:
    """Every message the talkers sent, and why attempts failed."""

    deliveries: list[Delivery] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    """Failed attempts by cause: ``CALLERROR <code>``, ``no answer``, ``not connected``."""

    @property
    def acknowledged(self) -> int:
        return sum(d.acknowledged for d in self.deliveries)

    def acknowledged_by(self, station: str) -> int:
        return sum(d.acknowledged for d in self.deliveries if d.station == station)

    @property
    def retried(self) -> int:
        """Messages that needed more than one attempt."""
        return sum(d.attempts > 1 for d in self.deliveries)


class Talker:
    """One station's scripted sessions (see the module doc)."""

    def __init__(self, station: StationBase, ledger: Ledger, deadline: float) -> None:
        self.station = station
        self.ledger = ledger
        self.deadline = deadline
        """Event loop time after which a message still unacknowledged fails the test."""
        self.sessions = 0
        # Half a millisecond in: the simulator stamps its own messages (the StatusNotifications
        # of a boot) in whole milliseconds of the real clock, which this clock starts near.
        self._clock = datetime.now(UTC).replace(microsecond=500)
        self._value = 0

    @property
    def v16(self) -> bool:
        return self.station.ocpp_version == "1.6"

    def _timestamp(self) -> tuple[str, datetime]:
        """A station time unique to this station (ms steps), never one of the simulator's."""
        self._clock += timedelta(milliseconds=1)
        return _iso(self._clock), self._clock

    def _reading(self) -> float:
        self._value += 10
        return float(self._value)

    async def run(self, stop: asyncio.Event, pause: float = 0.02) -> None:
        """Charging sessions until ``stop`` is set (the session under way is finished)."""
        while not stop.is_set():
            await self.session()
            self.sessions += 1
            await asyncio.sleep(pause)

    async def session(self) -> None:
        sid = self.station.station_id
        await self._status("Preparing" if self.v16 else "Occupied")
        start = self._reading()
        if self.v16:
            _, stamp = self._timestamp()
            answer = await self._deliver("StartTransaction", {
                "connectorId": 1, "idTag": "OUTAGE", "meterStart": round(start),
                "timestamp": _iso(stamp)}, [])
            tx: str = str(answer["transactionId"])
            self.ledger.deliveries[-1].markers.append(("tx", sid, tx))
        else:
            tx = f"{sid}-{self.sessions}"
            await self._event(tx, "Started", 0, start, "Transaction.Begin", {
                "evse": {"id": 1, "connectorId": 1},
                "idToken": {"idToken": "OUTAGE", "type": "ISO14443"}},
                extra=[("tx", sid, tx)])
        for seq in range(1, SAMPLES + 1):
            value = self._reading()
            if self.v16:
                stamp_text, _ = self._timestamp()
                await self._deliver("MeterValues", {
                    "connectorId": 1, "transactionId": int(tx),
                    "meterValue": [_meter_value16(stamp_text, value)]},
                    [("reading", sid, value)])
            else:
                await self._event(tx, "Updated", seq, value, "Sample.Periodic", {})
        stop_value = self._reading()
        if self.v16:
            stamp_text, _ = self._timestamp()
            await self._deliver("StopTransaction", {
                "transactionId": int(tx), "meterStop": round(stop_value),
                "timestamp": stamp_text, "reason": "Local"}, [("tx_end", sid, tx)])
        else:
            await self._event(tx, "Ended", SAMPLES + 1, stop_value, "Transaction.End",
                              {}, extra=[("tx_end", sid, tx)])
        await self._status("Available")

    async def _status(self, status: str) -> None:
        sid = self.station.station_id
        stamp_text, stamp = self._timestamp()
        if self.v16:
            payload: JSON = {"connectorId": 1, "errorCode": "NoError", "status": status,
                             "timestamp": stamp_text}
        else:
            payload = {"timestamp": stamp_text, "connectorStatus": status, "evseId": 1,
                       "connectorId": 1}
        await self._deliver("StatusNotification", payload, [("status", sid, stamp)])

    async def _event(self, tx: str, event_type: str, seq: int, value: float, context: str,
                     extra_fields: JSON, *, extra: list[Marker] | None = None) -> None:
        sid = self.station.station_id
        stamp_text, _ = self._timestamp()
        info: JSON = {"transactionId": tx,
                      "chargingState": "Idle" if event_type == "Ended" else "Charging"}
        if event_type == "Ended":
            info["stoppedReason"] = "Local"
        payload: JSON = {
            "eventType": event_type, "timestamp": stamp_text,
            "triggerReason": {"Started": "Authorized", "Updated": "MeterValuePeriodic",
                              "Ended": "StopAuthorized"}[event_type],
            "seqNo": seq, "transactionInfo": info,
            "meterValue": [{"timestamp": stamp_text, "sampledValue": [
                {"value": value, "context": context, "measurand": ENERGY}]}],
            **extra_fields,
        }
        await self._deliver("TransactionEvent", payload,
                            [("reading", sid, value), *(extra or [])])

    async def _deliver(self, action: str, payload: JSON, markers: list[Marker]) -> JSON:
        """Send until acknowledged; fail after the deadline."""
        delivery = Delivery(self.station.station_id, action, list(markers))
        self.ledger.deliveries.append(delivery)
        loop = asyncio.get_running_loop()
        while True:
            delivery.attempts += 1
            try:
                answer = await self.station.call_action(action, payload,
                                                        timeout=ANSWER_TIMEOUT)
            except CallErrorResponse as exc:
                self.ledger.failures[f"CALLERROR {exc.code}"] += 1
            except TimeoutError:
                self.ledger.failures["no answer"] += 1
            except NotConnectedError:
                self.ledger.failures["not connected"] += 1
            else:
                delivery.acknowledged = True
                return answer
            assert loop.time() < self.deadline, (
                f"{delivery.station}: {action} never acknowledged after {delivery.attempts} "
                f"attempts; failures so far: {dict(self.ledger.failures)}")
            await asyncio.sleep(RETRY_PAUSE)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _meter_value16(timestamp: str, value: float) -> JSON:
    return {"timestamp": timestamp, "sampledValue": [
        {"value": str(round(value)), "context": "Sample.Periodic", "measurand": ENERGY,
         "unit": "Wh"}]}


async def stored_markers(database: Database, stations: list[str]) -> Counter[Marker]:
    """How many times the database holds each marker of these stations."""
    found: Counter[Marker] = Counter()
    async with database.read_session() as session:
        for sid, moment in await session.execute(
            select(StatusHistory.station_id, StatusHistory.station_time)
            .where(StatusHistory.station_id.in_(stations))
        ):
            if moment is not None:
                found[("status", sid, _utc(moment))] += 1
        for sid, value in await session.execute(
            select(MeterReading.station_id, MeterReading.value)
            .where(MeterReading.station_id.in_(stations))
        ):
            found[("reading", sid, float(value))] += 1
        for sid, tx, stopped in await session.execute(
            select(Transaction.station_id, Transaction.transaction_id, Transaction.stopped_at)
            .where(Transaction.station_id.in_(stations))
        ):
            found[("tx", sid, tx)] += 1
            if stopped is not None:
                found[("tx_end", sid, tx)] += 1
    return found


def check(ledger: Ledger, stored: Counter[Marker]) -> tuple[list[str], int]:
    """The acknowledged markers missing from the database or stored twice although sent once
    (messages), and the number of duplicates of retried messages (allowed: a retry after an
    answer that was lost)."""
    problems: list[str] = []
    duplicates = 0
    for delivery in ledger.deliveries:
        if not delivery.acknowledged:
            continue
        for marker in delivery.markers:
            count = stored[marker]
            if count == 0:
                problems.append(f"lost: {delivery.action} {marker}")
            elif count > 1 and delivery.attempts == 1:
                problems.append(f"stored {count} times, sent once: {delivery.action} {marker}")
            elif count > 1:
                duplicates += count - 1
    return problems, duplicates


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
