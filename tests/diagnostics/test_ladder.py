"""Every path of the remediation ladder, with the shipped playbooks and production timings
(the clock is passed in, so minutes take no time)."""

from __future__ import annotations

from datetime import timedelta

from diagnostics import Priority, StationInfo, TicketStatus
from diagnostics.commands import (
    ChangeAvailability,
    GetConfiguration,
    HardReset,
    OutcomeStatus,
    RequestLog,
    SoftReset,
    TriggerKind,
    TriggerMessage,
    UnlockConnector,
)
from diagnostics.model import StepResult
from diagnostics.playbooks import Limits, PlaybookSet
from diagnostics.tickets import TicketReason
from tests.diagnostics.harness import CONFIG, PLAYBOOKS, SLA, T0, UPLOAD, Harness

DIAGNOSE = ["TriggerMessage", "GetConfiguration", "RequestLog"]


def lock_failure_until_unlock() -> Harness:
    """A 1.6 station with a lock failure on connector 1, diagnosed, UnlockConnector sent."""
    h = Harness()
    h.online()
    h.fault(1, "ConnectorLockFailure", "CX001")
    assert h.commands() == []
    h.advance(minutes=5)
    h.complete_diagnosis()
    assert h.commands() == [*DIAGNOSE, "UnlockConnector"]
    return h


def reboot(h: Harness, status: str = "Available", error: str = "NoError") -> None:
    h.disconnect()
    h.advance(seconds=20)
    h.connect()
    h.boot()
    h.status(1, status, error)
    h.status(2, "Available")


def test_fixed_by_unlock() -> None:
    h = lock_failure_until_unlock()
    unlock = h.last()
    assert unlock.command == UnlockConnector(connector_id=1)
    h.finish()
    h.status(1, "Available")
    h.advance(minutes=1)
    assert h.finished() == []
    h.advance(minutes=1)
    [run] = h.finished()
    assert run.outcome == "fixed"
    assert [s.result for s in run.steps][-1] is StepResult.VERIFIED
    assert h.opened == []
    assert h.commands() == [*DIAGNOSE, "UnlockConnector"]
    assert h.engine.runs() == []


def test_diagnosis_commands_address_the_connector_and_upload_endpoint() -> None:
    h = lock_failure_until_unlock()
    trigger, config, log = (s.command for s in h.sent[:3])
    assert trigger == TriggerMessage(TriggerKind.STATUS_NOTIFICATION, connector_id=1)
    assert isinstance(config, GetConfiguration)
    assert "UnlockConnectorOnEVSideDisconnect" in config.keys
    assert isinstance(log, RequestLog)
    assert log.location == f"{UPLOAD}/CP1/{log.request_id}"
    assert log.since == T0 + timedelta(minutes=5) - timedelta(days=1)


def test_fixed_by_soft_reset() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.advance(minutes=5)  # unlock accepted, still faulted: not verified
    assert h.commands()[-1] == "SoftReset"
    assert h.last().command == SoftReset()
    h.finish()
    reboot(h)
    h.advance(minutes=2)
    [run] = h.finished()
    assert run.outcome == "fixed"
    assert [(s.action, s.result) for s in run.steps[3:]] == [
        ("unlock", StepResult.NOT_VERIFIED),
        ("soft_reset", StepResult.VERIFIED),
    ]
    assert h.opened == []


def test_reset_needs_a_reboot_to_count() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.advance(minutes=5)
    h.finish()  # soft reset accepted
    h.status(1, "Faulted", "ConnectorLockFailure")
    h.advance(minutes=9)
    h.status(1, "Available")  # no reboot: the reset is not what fixed it
    h.advance(minutes=1)  # reset timeout (10 min): not verified, next step
    assert h.commands()[-1] == "HardReset"
    soft = h.engine.runs()[0].steps[-2]
    assert (soft.action, soft.result, soft.detail) == (
        "soft_reset", StepResult.NOT_VERIFIED, "no reboot seen",
    )


def test_healed_without_reboot_is_recovered_not_reset_again() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.advance(minutes=5)
    h.finish()  # soft reset accepted
    h.status(1, "Available")  # healthy, but no reboot
    h.advance(minutes=10)
    [run] = h.finished()
    assert run.outcome == "recovered"
    assert "HardReset" not in h.commands()
    assert run.steps[-1].result is StepResult.NOT_VERIFIED


def test_fixed_only_by_hard_reset() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.advance(minutes=5)
    h.finish()  # soft reset accepted
    reboot(h, "Faulted", "ConnectorLockFailure")
    h.advance(minutes=10)
    assert h.commands()[-1] == "HardReset"
    h.finish()
    reboot(h)
    h.advance(minutes=2)
    [run] = h.finished()
    assert run.outcome == "fixed"
    assert run.steps[-1].action == "hard_reset"
    assert h.opened == []
    assert h.commands() == [*DIAGNOSE, "UnlockConnector", "SoftReset", "HardReset"]


def never_fixed() -> Harness:
    h = Harness()
    h.engine.set_station_info(
        StationInfo("CP1", site="Depot Noord", owner="Acme Parking", location="Kade 1, Utrecht",
                    contract="SLA-42")
    )
    h.online()
    h.fault(1, "ConnectorLockFailure", "CX001")
    h.advance(minutes=5)
    h.complete_diagnosis("08:01 lock motor timeout on connector 1\n")
    h.finish()  # unlock
    h.advance(minutes=5)
    h.finish()  # soft reset
    reboot(h, "Faulted", "ConnectorLockFailure")
    h.advance(minutes=10)
    h.finish()  # hard reset
    reboot(h, "Faulted", "ConnectorLockFailure")
    assert h.opened == []
    h.advance(minutes=10)
    return h


def test_never_fixed_opens_one_ticket_with_all_evidence() -> None:
    h = never_fixed()
    ticket = h.ticket()
    assert ticket.reason is TicketReason.STEPS_EXHAUSTED
    assert (ticket.station_id, ticket.connector, ticket.fault_class) == (
        "CP1", 1, "connector_lock_failure",
    )
    assert ticket.priority is Priority.P3
    assert ticket.tier == "field_service"
    assert "ConnectorLockFailure" in ticket.codes
    assert ticket.vendor_codes == ("CX001",)
    assert [s.action for s in ticket.steps] == [
        "status", "configuration", "log", "unlock", "soft_reset", "hard_reset",
    ]
    assert all(s.finished_at is not None for s in ticket.steps)
    assert all(s.command_ids for s in ticket.steps[:6])
    [finding] = ticket.findings
    assert finding.finding.rule_id == "lock-motor-timeout"
    assert finding.log_ref == "log-1"
    assert "lock actuator" in ticket.suggested_action
    assert "connector lock actuator" in ticket.parts
    kinds = {e.kind for e in ticket.timeline}
    assert {"status", "fault", "boot", "command", "outcome"} <= kinds
    assert ticket.station is not None and ticket.station.owner == "Acme Parking"
    assert ticket.sla is not None
    assert ticket.sla.policy == "standard"
    assert ticket.sla.contract == "SLA-42"
    assert ticket.sla.response_by == ticket.opened_at + timedelta(hours=8)
    assert ticket.sla.on_site_by == ticket.opened_at + timedelta(days=2)
    assert ticket.status is TicketStatus.OPEN
    # the run now watches the charger; a repeat adds to the same ticket
    h.fault(1, "ConnectorLockFailure", "CX001")
    h.advance(hours=3)
    assert len(h.opened) == 1


def test_ticket_resolves_when_healthy_again() -> None:
    h = never_fixed()
    ticket_id = h.opened[0].ticket_id
    h.status(1, "Available")
    h.advance(minutes=1)
    assert h.resolved == []
    h.advance(minutes=1)
    [resolve] = h.resolved
    assert resolve.ticket_id == ticket_id
    assert resolve.ticket.status is TicketStatus.RESOLVED
    assert h.finished()[-1].outcome == "resolved"


def test_healthy_again_but_flickering_does_not_resolve() -> None:
    h = never_fixed()
    h.status(1, "Available")
    h.advance(minutes=1)
    h.fault(1, "ConnectorLockFailure")
    h.advance(minutes=5)
    assert h.resolved == []


def test_safety_fault_no_reset_inoperative_and_p1_ticket_at_once() -> None:
    h = Harness()
    h.online()
    out = h.fault(1, "OverCurrentFailure")
    assert [t.priority for t in h.opened] == [Priority.P1]
    assert h.opened[0].reason is TicketReason.SAFETY
    assert h.commands() == ["ChangeAvailability"]
    assert h.last().command == ChangeAvailability(operative=False, connector_id=1)
    assert any(a for a in out)
    h.finish()
    h.complete_diagnosis()
    for _ in range(4):
        h.advance(hours=1)
    assert not any(isinstance(s.command, SoftReset | HardReset) for s in h.sent)
    assert h.commands() == ["ChangeAvailability", "TriggerMessage", "RequestLog"]
    # the steps after the ticket are appended to it
    notes = [n.text for n in h.ticket().notes]
    assert "set_inoperative: done" in notes
    # no auto-resolve for a safety fault: it needs a technician
    h.status(1, "Available")
    h.advance(hours=1)
    assert h.resolved == []


def test_welded_contactor_is_safety() -> None:
    h = Harness(v2=True)
    h.online()
    h.problem(1, "PowerContactor")
    assert [t.priority for t in h.opened] == [Priority.P1]
    assert h.last().command == ChangeAvailability(operative=False, evse_id=1)


def test_ground_fault_waits_for_rcd_then_safety_ticket() -> None:
    h = Harness()
    h.online()
    h.fault(1, "GroundFailure")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.advance(minutes=10)
    assert [t.priority for t in h.opened] == [Priority.P1]
    assert h.commands()[-1] == "ChangeAvailability"
    assert not any(isinstance(s.command, SoftReset | HardReset) for s in h.sent)


def test_ground_fault_rearms_during_wait() -> None:
    h = Harness()
    h.online()
    h.fault(1, "GroundFailure")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.status(1, "Available")
    h.advance(minutes=3)
    assert h.finished()[-1].outcome == "recovered"
    assert h.opened == []


def test_safety_fault_blocks_resets_for_other_connectors() -> None:
    h = Harness()
    h.online()
    h.fault(1, "OverCurrentFailure")
    h.finish()
    h.fault(2, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()
    for _ in range(5):
        h.complete_diagnosis()
        h.advance(minutes=10)
    assert not any(isinstance(s.command, SoftReset | HardReset) for s in h.sent)
    internal = [t for t in h.opened if t.fault_class == "internal_error"]
    assert len(internal) == 1
    assert {s.result for s in internal[0].steps if s.action.endswith("reset")} == {
        StepResult.SKIPPED
    }


def test_fault_that_clears_in_grace_never_becomes_anything() -> None:
    h = Harness()
    h.online()
    h.fault(1, "ConnectorLockFailure")
    h.advance(minutes=3)
    h.status(1, "Available")
    h.advance(hours=2)
    assert h.sent == []
    assert h.opened == []
    [run] = h.finished()
    assert run.outcome == "cleared"


def test_flapping_after_a_remote_fix_escalates() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.status(1, "Available")
    h.advance(minutes=2)
    assert h.finished()[-1].outcome == "fixed"
    sent_before = len(h.sent)
    h.advance(minutes=20)
    h.fault(1, "ConnectorLockFailure")
    [ticket] = h.opened
    assert ticket.reason is TicketReason.FLAPPING
    assert any("after unlock" in n.text for n in ticket.notes)
    # no unlock/reset loop: only diagnostics after the ticket
    h.complete_diagnosis()
    assert h.commands()[sent_before:] == DIAGNOSE


def test_fault_back_after_flap_window_gets_a_normal_ladder() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.status(1, "Available")
    h.advance(minutes=2)
    h.advance(hours=2)
    h.fault(1, "ConnectorLockFailure")
    h.advance(minutes=5)
    assert h.opened == []
    assert h.commands()[-1] == "TriggerMessage"


def internal_error_harness(limits: Limits | None = None) -> Harness:
    playbooks = PLAYBOOKS
    if limits is not None:
        playbooks = PlaybookSet(list(PLAYBOOKS), limits=limits, default="unknown_fault")
    h = Harness(playbooks=playbooks)
    h.online()
    h.fault(1, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()
    assert h.commands()[-1] == "SoftReset"
    return h


def test_reset_budget_exhausted_goes_to_the_ticket() -> None:
    h = internal_error_harness(Limits(resets_per_day=1))
    h.finish()
    reboot(h, "Faulted", "InternalError")
    h.advance(minutes=10)
    assert h.commands()[-1] == "SoftReset"
    ticket = h.ticket()
    hard = next(s for s in ticket.steps if s.action == "hard_reset")
    assert hard.result is StepResult.SKIPPED
    assert hard.detail is not None and "budget" in hard.detail


def test_reset_budget_is_per_station_per_day() -> None:
    h = internal_error_harness(Limits(resets_per_day=2))
    h.finish()
    reboot(h)
    h.advance(minutes=2)  # fixed by the soft reset: one reset used
    h.advance(hours=2)
    h.fault(1, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.finish()  # second soft reset
    reboot(h, "Faulted", "InternalError")
    h.advance(minutes=10)  # the hard reset would be the third within 24 h
    assert h.commands().count("HardReset") == 0
    assert len(h.opened) == 1
    h.advance(hours=24)
    h.status(1, "Available")
    h.advance(minutes=2)
    h.fault(1, "InternalError")  # a day later (and after a resolution, not flapping)
    h.advance(hours=2)
    h.advance(minutes=5)


def test_reset_rejected_goes_to_next_step() -> None:
    h = internal_error_harness()
    h.finish(status=OutcomeStatus.REJECTED, station_status="Rejected")
    assert h.commands()[-1] == "HardReset"
    step = h.engine.runs()[0].steps[-2]
    assert (step.action, step.result, step.outcome) == ("soft_reset", StepResult.FAILED, "rejected")


def test_reset_timeout_goes_to_next_step() -> None:
    h = internal_error_harness()
    h.advance(minutes=1)
    assert h.commands()[-1] == "SoftReset"
    h.advance(minutes=1)  # engine-side command timeout
    assert h.commands()[-1] == "HardReset"
    # the late outcome of the soft reset is ignored
    late = h.sent[-2]
    h.finish(late)
    assert h.commands()[-1] == "HardReset"
    assert len(h.sent) == 5


def test_reset_offline_waits_for_reconnect_and_tickets_offline() -> None:
    h = internal_error_harness()
    h.finish(status=OutcomeStatus.OFFLINE)
    h.connected = False  # (no more heartbeats from the harness)
    assert h.commands()[-1] == "SoftReset"  # the hard reset waits for the station
    view = next(r for r in h.engine.runs() if r.fault_class == "internal_error")
    assert view.wait_reason == "station offline"
    h.advance(minutes=15)
    [offline] = h.opened
    assert (offline.fault_class, offline.priority, offline.reason) == (
        "offline", Priority.P2, TicketReason.OFFLINE,
    )
    h.connect()
    assert h.commands()[-1] == "HardReset"


def test_live_session_blocks_reset_until_idle() -> None:
    h = Harness()
    h.online()
    h.status(2, "Preparing")
    h.tx_start(2, "tx-1")
    h.status(2, "Charging")
    h.fault(1, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()
    assert h.commands() == DIAGNOSE
    assert h.engine.runs()[0].wait_reason == "session live on the station"
    h.advance(minutes=30)
    assert h.commands() == DIAGNOSE
    h.tx_end("tx-1", 12_000)
    h.status(2, "Finishing")
    assert h.commands()[-1] == "SoftReset"


def test_live_session_past_idle_limit_skips_resets() -> None:
    h = Harness()
    h.online()
    h.tx_start(2, "tx-1")
    h.status(2, "Charging")
    h.fault(1, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.advance(minutes=61)
    assert "SoftReset" not in h.commands()
    ticket = h.ticket()
    skipped = [s for s in ticket.steps if s.result is StepResult.SKIPPED]
    assert [s.action for s in skipped] == ["soft_reset", "hard_reset"]


def test_ev_communication_error_while_plugged_does_nothing() -> None:
    h = Harness()
    h.online()
    h.status(1, "Preparing")
    h.status(1, "SuspendedEV", "EVCommunicationError")
    h.advance(minutes=5)
    h.advance(hours=1)
    assert h.sent == []
    assert h.engine.runs()[0].phase == "hold_plugged"
    h.status(1, "Available")
    assert h.finished()[-1].outcome == "cleared"
    assert h.sent == [] and h.opened == []


def test_ev_communication_error_without_a_car_gets_the_ladder() -> None:
    h = Harness()
    h.online()
    h.status(1, "Preparing", "EVCommunicationError")
    h.advance(minutes=6)
    assert h.sent == []
    h.fault(1, "EVCommunicationError")  # the car left, still faulted
    assert h.commands() == ["TriggerMessage"]


def test_ev_communication_error_repeating_across_vehicles_tickets() -> None:
    h = Harness()
    h.online()
    for _ in range(4):
        h.status(1, "Charging", "EVCommunicationError")
        h.advance(minutes=1)
        h.status(1, "Available")
        h.advance(hours=1)
    assert h.opened == []
    h.status(1, "Charging", "EVCommunicationError")
    assert [t.reason for t in h.opened] == [TicketReason.RECURRENCE]


def test_high_temperature_waits_then_tickets_when_it_recurs() -> None:
    h = Harness()
    h.online()
    h.fault(1, "HighTemperature")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.status(1, "Available")
    h.advance(minutes=2)
    assert h.finished()[-1].outcome == "recovered"
    h.advance(hours=3)
    h.fault(1, "HighTemperature")
    assert [t.reason for t in h.opened] == [TicketReason.RECURRENCE]


def test_undervoltage_that_persists_tickets_the_electrician() -> None:
    h = Harness()
    h.online()
    h.fault(0, "UnderVoltage")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.advance(minutes=30)
    ticket = h.ticket()
    assert (ticket.tier, ticket.priority, ticket.connector) == ("site_electrician", Priority.P2, 0)
    assert not any(isinstance(s.command, SoftReset | HardReset) for s in h.sent)


def test_offline_tickets_after_its_own_grace_then_resolves() -> None:
    h = Harness()
    h.online()
    h.disconnect()
    h.advance(minutes=14)
    assert h.opened == []
    h.advance(minutes=1)
    ticket = h.ticket()
    assert (ticket.fault_class, ticket.priority) == ("offline", Priority.P2)
    assert h.sent == []
    h.connect()
    h.boot()
    h.advance(minutes=2)
    [resolve] = h.resolved
    assert resolve.ticket_id == ticket.ticket_id


def test_short_disconnect_is_nothing() -> None:
    h = Harness()
    h.online()
    h.disconnect()
    h.advance(minutes=3)
    h.connect()
    h.advance(hours=1)
    assert h.opened == [] and h.sent == []
    assert h.finished()[-1].outcome == "cleared"


def test_reset_disconnect_is_not_offline() -> None:
    h = internal_error_harness()
    h.finish()
    h.disconnect()
    h.advance(minutes=9)
    assert [r.fault_class for r in h.engine.runs()] == ["internal_error"]
    h.advance(minutes=1)  # reset verification failed while offline: now it is offline
    assert {r.fault_class for r in h.engine.runs()} == {"internal_error", "offline"}
    h.advance(minutes=15)
    assert [t.fault_class for t in h.opened] == ["offline"]


def test_silent_station_is_probed_before_being_called_offline() -> None:
    h = Harness()
    h.online()
    h.advance(minutes=15, quiet=True)
    assert h.commands() == ["TriggerMessage"]
    assert h.last().command == TriggerMessage(TriggerKind.HEARTBEAT)
    h.finish()
    h.heartbeat()
    assert h.finished()[-1].outcome == "recovered"
    assert h.opened == []


def test_heartbeats_keep_a_station_from_being_silent() -> None:
    h = Harness()
    h.online()
    for _ in range(8):
        h.advance(minutes=5)
        h.heartbeat()
    assert h.sent == []


def test_silent_station_that_does_not_answer_is_ticketed() -> None:
    h = Harness()
    h.online()
    h.advance(minutes=15, quiet=True)
    h.finish(status=OutcomeStatus.TIMEOUT)
    assert h.commands() == ["TriggerMessage", "HardReset"]
    h.finish(status=OutcomeStatus.TIMEOUT)
    ticket = h.ticket()
    assert (ticket.fault_class, ticket.priority) == ("unresponsive", Priority.P2)


def test_boot_loop() -> None:
    h = Harness()
    h.online()
    h.advance(minutes=3)
    h.boot()
    assert h.engine.runs() == []
    h.advance(minutes=3)
    h.boot()
    [run] = h.engine.runs()
    assert run.fault_class == "boot_loop"
    assert h.commands() == ["RequestLog"]
    h.finish()
    for _ in range(2):
        h.advance(minutes=5)
        h.boot()  # still looping
    h.advance(minutes=5)  # no final log status within 15 minutes
    ticket = h.ticket()
    assert (ticket.priority, ticket.fault_class) == (Priority.P2, "boot_loop")
    h.advance(minutes=15)  # quiet for the boot-loop window: resolved
    assert len(h.resolved) == 1


def test_boots_after_our_resets_are_not_a_boot_loop() -> None:
    h = lock_failure_until_unlock()
    h.finish()
    h.advance(minutes=5)
    h.finish()
    reboot(h, "Faulted", "ConnectorLockFailure")
    h.advance(minutes=10)
    h.finish()
    reboot(h)
    assert "boot_loop" not in {r.fault_class for r in h.engine.runs()}


def test_failed_sessions_start_a_run() -> None:
    h = Harness()
    h.online()
    for index in range(3):
        h.status(1, "Preparing")
        h.tx_start(1, f"tx-{index}", meter=5000)
        h.tx_end(f"tx-{index}", 5010)
        h.status(1, "Available")
        h.advance(minutes=10)
    [run] = h.engine.runs()
    assert run.fault_class == "failed_sessions"
    h.complete_diagnosis()
    assert h.commands() == [*DIAGNOSE, "ChangeAvailability"]
    h.finish()
    assert h.last().command == ChangeAvailability(operative=True, connector_id=1)
    h.finish()
    h.advance(minutes=2)  # connector is Available: the cycle is verified
    assert h.finished()[-1].outcome == "fixed"


def test_stuck_in_preparing_counts_as_failed_session() -> None:
    h = Harness()
    h.online()
    for _ in range(3):
        h.status(1, "Preparing")
        h.advance(minutes=10)
        h.status(1, "Available")
    assert [r.fault_class for r in h.engine.runs()] == ["failed_sessions"]


def test_good_session_clears_failed_sessions_run() -> None:
    h = Harness()
    h.online()
    for index in range(3):
        h.tx_start(1, f"tx-{index}", meter=0)
        h.tx_end(f"tx-{index}", 3)
    h.tx_start(1, "ok", meter=0)
    h.tx_end("ok", 20_000)
    assert h.finished()[-1].outcome == "cleared"


def test_driver_reports_join_one_run() -> None:
    h = Harness()
    h.online()
    h.driver("wont_start", 1, "R1")
    h.driver("wont_start", 1, "R2")
    h.driver("display_or_reader", None, "R3")
    [run] = h.engine.runs()
    assert [r.report_id for r in run.reports] == ["R1", "R2", "R3"]
    assert h.commands() == ["TriggerMessage"]


def test_driver_report_never_fixed_tickets_with_reports() -> None:
    h = Harness()
    h.online()
    h.driver("wont_start", 1, "R1", "card not accepted")
    h.complete_diagnosis()
    h.finish()
    h.finish()  # availability cycle
    h.status(1, "Faulted")  # not healthy
    h.advance(minutes=5)
    h.finish()  # soft reset
    reboot(h, "Faulted")
    h.advance(minutes=10)
    ticket = next(t for t in h.opened if t.fault_class == "driver_wont_start")
    assert [r.report_id for r in ticket.reports] == ["R1"]


def test_physical_damage_goes_straight_to_a_ticket() -> None:
    h = Harness()
    h.online()
    h.fault(1, "InternalError")
    h.driver("physical_damage", 1, "R9", "bollard hit, cover cracked")
    [ticket] = h.opened
    assert (ticket.fault_class, ticket.priority, ticket.reason) == (
        "physical_damage", Priority.P1, TicketReason.PHYSICAL_DAMAGE,
    )
    assert [r.report_id for r in ticket.reports] == ["R9"]
    # and nobody resets a damaged station
    h.advance(minutes=5)
    for _ in range(6):
        h.complete_diagnosis()
        h.advance(minutes=10)
    assert not any(isinstance(s.command, SoftReset | HardReset) for s in h.sent)
    # a second damage report adds to the same ticket
    h.driver("physical_damage", 1, "R10")
    assert len([t for t in h.opened if t.fault_class == "physical_damage"]) == 1
    latest = h.engine.ticket(ticket.ticket_id)
    assert latest is not None
    assert [r.report_id for r in latest.reports] == ["R9", "R10"]


def test_billing_report_is_a_back_office_ticket() -> None:
    h = Harness()
    h.online()
    h.driver("payment", 1)
    ticket = h.ticket()
    assert (ticket.tier, ticket.priority) == ("back_office", Priority.P4)
    assert h.sent == []


def test_operator_diagnose_now() -> None:
    h = Harness()
    h.online()
    h.diagnose_now()
    assert h.commands() == ["TriggerMessage"]
    assert h.last().command == TriggerMessage(TriggerKind.STATUS_NOTIFICATION)
    h.complete_diagnosis()
    assert h.commands() == DIAGNOSE
    [run] = h.finished()
    assert run.outcome == "diagnosed"
    assert h.opened == []


def test_operator_diagnose_now_skips_the_grace_period() -> None:
    h = Harness()
    h.online()
    h.fault(1, "InternalError")
    h.diagnose_now(1)
    assert h.commands() == ["TriggerMessage"]
    assert len(h.engine.runs()) == 1


def test_v201_problem_ladder_and_cleared_event() -> None:
    h = Harness(v2=True)
    h.online()
    h.problem(1, "ConnectorPlugRetentionLock", tech_code="CX001")
    h.status(1, "Faulted")
    assert [r.fault_class for r in h.engine.runs()] == ["connector_lock_failure"]
    h.advance(minutes=5)
    assert h.last().command == TriggerMessage(
        TriggerKind.STATUS_NOTIFICATION, evse_id=1, connector_id=1
    )
    h.complete_diagnosis()
    assert h.last().command == UnlockConnector(connector_id=1, evse_id=1)
    h.finish()
    h.problem(1, "ConnectorPlugRetentionLock", cleared=True)
    h.advance(minutes=2)
    assert h.finished()[-1].outcome == "fixed"


def test_v201_faulted_status_then_problem_is_one_run() -> None:
    h = Harness(v2=True)
    h.online()
    h.status(1, "Faulted")
    h.problem(1, "RCD", "Tripped")
    [run] = h.engine.runs()
    assert run.fault_class == "ground_failure"


def test_v201_available_alone_does_not_clear_a_reader_problem() -> None:
    h = Harness(v2=True)
    h.online()
    h.problem(None, "TokenReader")
    h.status(1, "Available")
    h.advance(minutes=5)
    assert h.commands() == ["TriggerMessage"]


def test_unknown_vendor_code_gets_the_default_class() -> None:
    h = Harness()
    h.online()
    h.fault(1, "OtherError", "E-4711")
    [run] = h.engine.runs()
    assert run.fault_class == "unknown_fault"
    h.fault(2, "OtherError", "CX003")
    assert {r.fault_class for r in h.engine.runs()} == {"unknown_fault", "high_temperature"}


def test_faulted_without_code_is_generic() -> None:
    h = Harness()
    h.online()
    h.status(1, "Faulted")
    [run] = h.engine.runs()
    assert run.fault_class == "faulted"
    h.status(1, "Available")
    assert h.finished()[-1].outcome == "cleared"


def test_sla_policy_by_site() -> None:
    from diagnostics.config import parse_sla

    text = (CONFIG / "sla.toml").read_text() + '\n[[assign]]\npolicy = "premium"\nsites = ["Hub"]\n'
    sla = parse_sla(text)
    h = Harness(sla=sla)
    h.engine.set_station_info(StationInfo("CP1", site="Hub"))
    h.online()
    h.fault(1, "OverCurrentFailure")
    ticket = h.ticket()
    assert ticket.sla is not None
    assert (ticket.sla.policy, ticket.sla.support) == ("premium", "24/7")
    assert ticket.sla.response_by == ticket.opened_at + timedelta(minutes=15)
    assert SLA.select(None).name == "standard"


def test_reconnecting_message_is_applied_before_held_steps_resume() -> None:
    """Found by the property tests: a charging status from a station thought offline must
    block the held reset, not arrive just after it."""
    h = internal_error_harness()
    h.finish(status=OutcomeStatus.OFFLINE)
    h.connected = False
    h.status(2, "Charging")  # implicit reconnect, with a session live
    assert h.commands()[-1] == "SoftReset"
    [run] = [r for r in h.engine.runs() if r.fault_class == "internal_error"]
    assert run.wait_reason == "session live on the station"


def test_operator_diagnose_now_on_a_ticketed_run_refreshes_the_evidence() -> None:
    h = Harness()
    h.online()
    h.fault(1, "OverCurrentFailure")
    h.finish()
    h.complete_diagnosis()
    sent = len(h.sent)
    h.diagnose_now(1)
    h.complete_diagnosis()
    assert h.commands()[sent:] == DIAGNOSE
    assert len(h.opened) == 1
    assert h.engine.runs()[0].phase == "ticketed"


def test_run_changed_only_when_something_visible_changed() -> None:
    h = Harness()
    h.online()
    h.fault(1, "InternalError")
    before = len(h.views())
    for _ in range(5):
        h.heartbeat()
        h.status(2, "Available")
    assert len(h.views()) == before


def test_log_location_can_be_a_callable() -> None:
    from diagnostics import DiagnosticsEngine

    h = Harness()
    h.engine = DiagnosticsEngine(
        PLAYBOOKS, SLA, log_location=lambda station, request: f"ftp://u:tok{request}@h/{station}"
    )
    h.online()
    h.diagnose_now()
    h.finish()
    h.finish()
    log = h.last().command
    assert isinstance(log, RequestLog)
    assert log.location == "ftp://u:tok1@h/CP1"


def test_v201_ev_communication_problem_clears_when_the_car_leaves() -> None:
    h = Harness(v2=True)
    h.online()
    h.status(1, "Occupied")
    h.problem(1, "ConnectedEV")
    h.advance(minutes=10)
    assert h.sent == []
    h.status(1, "Available")
    assert h.finished()[-1].outcome == "cleared"


def test_ev_communication_hold_survives_a_reboot() -> None:
    h = Harness()
    h.online()
    h.status(1, "Charging", "EVCommunicationError")
    h.advance(minutes=6)
    h.boot()  # connector states unknown until the station reports them
    assert h.sent == []
    h.status(1, "Charging", "EVCommunicationError")
    h.advance(minutes=30)
    assert h.sent == []


def test_v201_faulted_then_safety_problem_acts_at_once() -> None:
    h = Harness(v2=True)
    h.online()
    h.status(1, "Faulted")
    h.problem(1, "OverCurrentProtection", "Tripped")
    assert [t.fault_class for t in h.opened] == ["over_current"]
    assert h.last().command == ChangeAvailability(operative=False, evse_id=1)


def test_flapping_in_201_when_the_status_comes_before_the_notify_event() -> None:
    """2.0.1 reports a fault as a Faulted status first (generic class) and then a NotifyEvent
    (specific class): the returning fault must still be recognised as flapping."""
    h = Harness(v2=True)
    h.online()
    h.status(1, "Faulted")
    h.problem(1, "ConnectorPlugRetentionLock", tech_code="CX001")
    h.advance(minutes=5)
    h.complete_diagnosis()
    assert h.commands()[-1] == "UnlockConnector"
    h.finish()
    h.problem(1, "ConnectorPlugRetentionLock", cleared=True, tech_code="CX001")
    h.status(1, "Available")
    h.advance(minutes=2)
    assert h.finished()[-1].outcome == "fixed"
    h.advance(minutes=20)
    h.status(1, "Faulted")
    h.problem(1, "ConnectorPlugRetentionLock", tech_code="CX001")
    [ticket] = h.opened
    assert ticket.reason is TicketReason.FLAPPING
    assert "UnlockConnector" not in h.commands()[h.commands().index("UnlockConnector") + 1:]
