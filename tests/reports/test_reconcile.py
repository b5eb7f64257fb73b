"""After a restart the reports catch up with what the diagnosis did meanwhile: a status change
missed, or a report the engine never took up (both databases)."""

from __future__ import annotations

from csms.bus import Topic
from csms.reports.service import tracking_hash
from csms.store import Store
from csms.store.base import utc_now
from tests.e2e.helpers import STATIONS
from tests.reports.conftest import StartReports


async def test_a_missed_status_change_is_caught_up_at_start(
    start_reports: StartReports,
) -> None:
    env = await start_reports()
    async with STATIONS["1.6"]("DRV-RE", env.central.ocpp_url):
        created = (await env.file(station_id="DRV-RE", connector=1, category="wont_start",
                                  text="no start")).json()
        await env.track_until(created["tracking_token"], "fixed_remotely")
    record = await env.central.store.get_report(created["report_id"])
    assert record is not None and record.run_id is not None
    # As if the central system had stopped before it stored the last change.
    history = {**record.history, "items": record.history["items"][:2]}
    await env.central.store.update_report(record.report_id, status="checking_remotely",
                                          run_id=record.run_id, ticket_id=None,
                                          history=history, updated_at=utc_now())

    restarted = await start_reports()
    tracked = await restarted.track_until(created["tracking_token"], "fixed_remotely")
    assert [h["status"] for h in tracked["history"]] == [
        "received", "checking_remotely", "fixed_remotely"]


async def test_a_report_never_taken_up_is_filed_again_at_start(
    store: Store, start_reports: StartReports,
) -> None:
    await store.ensure_station("DRV-LOST")
    now = utc_now()
    await store.create_report(
        report_id="rep_lost", station_id="DRV-LOST", connector=1, category="wont_start",
        text="filed just before a crash", contact=None, tracking_hash=tracking_hash("tok"),
        status="received", photos=[], history=[{"status": "received", "at": now.isoformat()}],
        client_address=None, created_at=now,
    )
    env = await start_reports()  # nobody calls the API: the status follows all the same
    tracked = await env.track_until("tok", "received", leaves=True)
    assert tracked["report_id"] == "rep_lost"
    assert tracked["history"][1]["status"] in ("checking_remotely", "technician_dispatched")
    record = await store.get_report("rep_lost")
    assert record is not None and record.run_id is not None
    run = await store.get_run(record.run_id)
    assert run is not None and run.station_id == "DRV-LOST"
    assert [r["report_id"] for r in run.data["reports"]] == ["rep_lost"]


async def test_a_report_whose_run_ended_unanswered_joins_the_next_one(
    start_reports: StartReports,
) -> None:
    env = await start_reports()
    store = env.central.store
    async with STATIONS["1.6"]("DRV-MRG", env.central.ocpp_url):
        now = utc_now()
        await store.create_report(
            report_id="rep_merged", station_id="DRV-MRG", connector=1, category="wont_start",
            text="still nothing", contact=None, tracking_hash=tracking_hash("tok-m"),
            status="received", photos=[], history=[{"status": "received",
                                                    "at": now.isoformat()}],
            client_address=None, created_at=now,
        )
        await store.update_report("rep_merged", status="checking_remotely", run_id="R-old",
                                  ticket_id=None, history={"items": [], "refiled": 0},
                                  updated_at=now)
        # The engine's last word on the run the report was in: merged into another one.
        ended = {"run_id": "R-old", "outcome": "merged", "ticket_id": None,
                 "reports": [{"report_id": "rep_merged"}]}
        env.central.bus.emit(Topic.RUN, "finished", "DRV-MRG", ended)
        tracked = await env.track_until("tok-m", "fixed_remotely")
        assert tracked["history"][-1]["status"] == "fixed_remotely"
    record = await store.get_report("rep_merged")
    assert record is not None and record.run_id not in (None, "R-old")
    assert record.history["refiled"] == 1
    run = await store.get_run(record.run_id)
    assert run is not None and run.outcome == "fixed"
    assert [r["report_id"] for r in run.data["reports"]] == ["rep_merged"]
