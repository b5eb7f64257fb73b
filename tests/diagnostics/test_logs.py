"""Log requests, upload progress quirks, and findings as evidence."""

from __future__ import annotations

from diagnostics import Priority
from diagnostics.commands import ChangeAvailability, HardReset, RequestLog, SoftReset
from diagnostics.model import StepResult
from diagnostics.tickets import TicketReason
from tests.diagnostics.harness import SIGNATURES, Harness


def at_log_step(code: str = "ConnectorLockFailure") -> tuple[Harness, int]:
    """A fault diagnosed up to the RequestLog (sent, no outcome yet)."""
    h = Harness()
    h.online()
    h.fault(1, code)
    h.advance(minutes=5)
    h.finish()  # status
    h.finish()  # configuration
    log = h.last()
    assert isinstance(log.command, RequestLog)
    return h, log.command.request_id


def log_step(h: Harness):  # type: ignore[no-untyped-def]
    return next(s for s in h.engine.runs()[0].steps if s.action == "log")


def test_log_request_ids_are_deterministic_ints() -> None:
    first, request_id = at_log_step()
    second, again = at_log_step()
    assert request_id == again == 1
    assert first.last().command == second.last().command


def test_uploaded_and_analysed_log_ends_the_step() -> None:
    h, request_id = at_log_step()
    h.finish()
    h.log_progress("Uploading", request_id)
    h.log_progress("Uploaded", request_id)
    assert h.commands()[-1] == "RequestLog"  # waits for the analysis
    h.log_analysed(request_id, [], "uploads/CP1/1.log")
    assert h.commands()[-1] == "UnlockConnector"
    step = h.engine.runs()[0].steps[2]
    assert (step.result, step.data["log_ref"]) == (StepResult.DONE, "uploads/CP1/1.log")


def test_final_log_status_never_comes_times_out() -> None:
    h, request_id = at_log_step()
    h.finish()
    h.log_progress("Uploading", request_id)
    h.advance(minutes=14)
    assert h.commands()[-1] == "RequestLog"
    h.advance(minutes=1)
    assert h.commands()[-1] == "UnlockConnector"
    step = log_step(h)
    assert step.result is StepResult.FAILED
    assert step.detail is not None and step.detail.startswith("no final log status")


def test_uploaded_but_never_analysed_times_out_too() -> None:
    h, request_id = at_log_step()
    h.finish()
    h.log_progress("Uploaded", request_id)
    h.advance(minutes=15)
    step = log_step(h)
    assert step.detail is not None and step.detail.startswith("log uploaded but not analysed")


def test_upload_failure_moves_on_at_once() -> None:
    h, request_id = at_log_step()
    h.finish()
    h.log_progress("UploadFailure", request_id)
    assert h.commands()[-1] == "UnlockConnector"
    assert log_step(h).detail == "log upload: UploadFailure"


def test_request_log_rejected_moves_on() -> None:
    from diagnostics.commands import OutcomeStatus

    h, _ = at_log_step()
    h.finish(status=OutcomeStatus.NOT_SUPPORTED)
    assert h.commands()[-1] == "UnlockConnector"
    assert log_step(h).result is StepResult.FAILED


def test_notifications_before_the_callresult() -> None:
    h, request_id = at_log_step()
    h.log_progress("Uploading", request_id)
    h.log_progress("UploadFailed", request_id)
    assert h.commands()[-1] == "RequestLog"
    h.finish()
    assert h.commands()[-1] == "UnlockConnector"
    assert log_step(h).result is StepResult.FAILED


def test_analysis_before_the_callresult() -> None:
    h, request_id = at_log_step()
    h.log_progress("Uploaded", request_id)
    h.log_analysed(request_id, SIGNATURES.match("watchdog reset\n"))
    h.finish()
    assert h.commands()[-1] == "UnlockConnector"
    assert [f.finding.rule_id for f in h.engine.runs()[0].findings] == ["watchdog"]


def test_duplicate_and_out_of_order_progress() -> None:
    h, request_id = at_log_step()
    h.finish()
    for status in ("Uploading", "Uploading", "Uploaded", "Uploaded", "Uploading", "UploadFailed"):
        h.log_progress(status, request_id)
    assert h.commands()[-1] == "RequestLog"  # Uploaded is final: the late failure is ignored
    entries = [e.text for e in h.engine.timeline("CP1") if e.kind == "log"]
    assert entries == [f"log {request_id}: Uploading", f"log {request_id}: Uploaded"]


def test_v16_diagnostics_status_without_request_id() -> None:
    h, _request_id = at_log_step()
    h.finish()
    h.log_progress("UploadFailed", None)
    assert h.commands()[-1] == "UnlockConnector"


def test_progress_for_unknown_request_is_ignored() -> None:
    h, request_id = at_log_step()
    h.finish()
    h.log_progress("UploadFailed", request_id + 99)
    h.log_analysed(request_id + 99, SIGNATURES.match("watchdog reset"))
    assert h.commands()[-1] == "RequestLog"


def test_finding_reclassifies_the_fault() -> None:
    h, request_id = at_log_step("InternalError")
    h.finish()
    h.log_analysed(request_id, SIGNATURES.match("12:00 lock motor timeout\n"))
    [run] = h.engine.runs()
    assert run.fault_class == "connector_lock_failure"
    # diagnostics already done are not repeated: straight to the lock ladder
    assert h.commands()[-1] == "UnlockConnector"


def test_safety_finding_stops_resets_and_opens_p1_ticket() -> None:
    h, request_id = at_log_step("InternalError")
    h.finish()
    h.log_analysed(request_id, SIGNATURES.match("K2: contactor feedback mismatch (welded?)"))
    [ticket] = h.opened
    assert (ticket.priority, ticket.reason) == (Priority.P1, TicketReason.LOG_FINDING)
    assert h.last().command == ChangeAvailability(operative=False, connector_id=1)
    h.finish()
    h.advance(hours=2)
    assert not any(isinstance(s.command, SoftReset | HardReset) for s in h.sent)
    assert ticket.findings[0].finding.rule_id == "contactor-welded"


def test_escalating_finding_skips_remaining_remote_steps() -> None:
    h, request_id = at_log_step("InternalError")
    h.finish()
    h.log_analysed(request_id, SIGNATURES.match("write failed: No space left on device"))
    [ticket] = h.opened
    assert ticket.reason is TicketReason.LOG_FINDING
    assert ticket.priority is Priority.P3
    assert "SoftReset" not in h.commands()


def test_late_findings_are_added_to_the_ticket() -> None:
    h, request_id = at_log_step("ReaderFailure")
    h.finish()
    h.advance(minutes=15)  # log wait times out, soft reset next
    h.finish()
    h.advance(minutes=10)  # not verified: ticket
    [ticket] = h.opened
    assert ticket.findings == ()
    h.log_analysed(request_id, SIGNATURES.match("RFID reader init failed"), "late.log")
    latest = h.ticket()
    assert [f.log_ref for f in latest.findings] == ["late.log"]
    assert latest.notes[-1].text.startswith("log findings: error")
