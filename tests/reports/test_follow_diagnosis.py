"""A driver report starts a diagnosis and its status follows it, against the real central
system with simulated chargers as the stations, on both databases."""

from __future__ import annotations

import pytest

from csms.bus import Topic
from diagnostics import TicketStatus
from tests.e2e.helpers import STATIONS
from tests.reports.conftest import StartReports, image_bytes


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_wont_start_with_photo_is_fixed_remotely(
    start_reports: StartReports, version: str
) -> None:
    env = await start_reports()
    async with STATIONS[version]("DRV-FIX", env.central.ocpp_url) as station:
        photo = image_bytes("JPEG")
        response = await env.file(
            station_id="DRV-FIX", connector=1, category="wont_start",
            text="Tapped my card twice, nothing happens", contact="+41 79 000 00 00",
            photos=[("car.jpg", photo, "image/jpeg")],
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["status"] == "received"
        assert created["track_url"] == f"/api/v1/reports/track/{created['tracking_token']}"

        tracked = await env.track_until(created["tracking_token"], "fixed_remotely")
        assert [h["status"] for h in tracked["history"]] == [
            "received", "checking_remotely", "fixed_remotely"]
        assert tracked["report_id"] == created["report_id"]
        assert (tracked["station_id"], tracked["connector"], tracked["category"]) == (
            "DRV-FIX", 1, "wont_start")
        assert "contact" not in tracked and "text" not in tracked
        # The diagnosis really ran on the charger: the remote step that fixed it was sent.
        assert any(c.action == "ChangeAvailability" for c in station.received)

    record = await env.central.store.get_report(created["report_id"])
    assert record is not None and record.run_id is not None
    run = await env.central.store.get_run(record.run_id)
    assert run is not None and run.outcome == "fixed"
    assert [r["report_id"] for r in run.data["reports"]] == [created["report_id"]]
    stored = (env.central.settings.data_dir / "reports" / created["report_id"] / "1.jpg")
    assert stored.read_bytes() == photo

    kinds = [(n.kind, n.data["status"]) for n in env.notices
             if n.data["report_id"] == created["report_id"]]
    assert kinds == [("received", "received"), ("status", "checking_remotely"),
                     ("status", "fixed_remotely")]
    for notice in env.notices:
        assert "contact" not in notice.data
        assert created["tracking_token"] not in str(notice.to_dict())


async def test_physical_damage_goes_to_a_ticket_then_resolved(
    start_reports: StartReports,
) -> None:
    env = await start_reports()
    runner = env.central.diagnostics
    assert runner is not None
    async with STATIONS["1.6"]("DRV-DMG", env.central.ocpp_url) as station:
        response = await env.file(station_id="DRV-DMG", connector=2,
                                  category="physical_damage", text="Cable cut, sparks")
        assert response.status_code == 201, response.text
        created = response.json()
        tracked = await env.track_until(created["tracking_token"], "technician_dispatched")
        # Straight to a ticket: no remote check, and never a reset on a broken cable.
        assert [h["status"] for h in tracked["history"]] == ["received",
                                                           "technician_dispatched"]
        assert not any(c.action in ("Reset", "UnlockConnector") for c in station.received)

    tickets = await env.central.store.tickets("DRV-DMG")
    assert len(tickets) == 1
    (ticket,) = tickets
    assert ticket.fault_class == "physical_damage" and ticket.status == "open"
    assert [r["report_id"] for r in ticket.data["reports"]] == [created["report_id"]]
    record = await env.central.store.get_report(created["report_id"])
    assert record is not None and record.ticket_id == ticket.ticket_id

    await runner.change_ticket(ticket.ticket_id, TicketStatus.RESOLVED, "cable replaced",
                               "test")
    tracked = await env.track_until(created["tracking_token"], "resolved")
    assert [h["status"] for h in tracked["history"]] == [
        "received", "technician_dispatched", "resolved"]


async def test_two_reports_on_one_station_join_one_run(start_reports: StartReports) -> None:
    env = await start_reports()
    async with STATIONS["1.6"]("DRV-TWO", env.central.ocpp_url):
        first = await env.file(station_id="DRV-TWO", connector=1, category="wont_start",
                               text="does not start")
        second = await env.file(station_id="DRV-TWO", category="display_or_reader",
                                text="display is black and the reader ignores my card",
                                headers=env.operator)
        assert first.status_code == second.status_code == 201
        tokens = [first.json()["tracking_token"], second.json()["tracking_token"]]
        for token in tokens:
            tracked = await env.track_until(token, "fixed_remotely")
            assert [h["status"] for h in tracked["history"]] == [
                "received", "checking_remotely", "fixed_remotely"]

    records = [await env.central.store.get_report(r.json()["report_id"])
               for r in (first, second)]
    run_ids = {r.run_id for r in records if r is not None}
    assert len(run_ids) == 1 and None not in run_ids
    (run_id,) = run_ids
    assert run_id is not None
    run = await env.central.store.get_run(run_id)
    assert run is not None and run.outcome == "fixed"
    assert {r["report_id"] for r in run.data["reports"]} == {
        first.json()["report_id"], second.json()["report_id"]}
    driver_runs = [r for r in await env.central.store.runs("DRV-TWO")
                   if r.detection == "driver_report"]
    assert [r.run_id for r in driver_runs] == [run_id]
    statuses = [n for n in env.notices if n.topic is Topic.REPORT and n.kind == "status"]
    assert {n.data["run_id"] for n in statuses} == {run_id}
