"""Loading and validating the TOML configuration; signatures; timings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from diagnostics import ConfigError, Priority
from diagnostics.config import (
    load_playbooks,
    load_signatures,
    load_sla,
    parse_duration,
    parse_playbooks,
    parse_signatures,
    parse_sla,
)
from diagnostics.playbooks import Detection, StepAction
from diagnostics.signatures import Severity, SignatureRule, match_log
from diagnostics.timings import Timings
from tests.diagnostics.harness import CONFIG, PLAYBOOKS

PLAYBOOKS_TEXT = (CONFIG / "playbooks.toml").read_text()


def test_shipped_files_load() -> None:
    playbooks = load_playbooks(CONFIG / "playbooks.toml")
    sla = load_sla(CONFIG / "sla.toml")
    signatures = load_signatures(CONFIG / "log_signatures.toml")
    assert playbooks.default.name == "unknown_fault"
    assert sla.default == "standard"
    assert len(signatures.rules) >= 8
    parse_signatures(
        (CONFIG / "log_signatures.toml").read_text(), fault_classes=playbooks
    )


@pytest.mark.parametrize(
    ("code", "component", "variable", "vendor", "expected"),
    [
        ("ConnectorLockFailure", None, None, None, "connector_lock_failure"),
        ("OtherError", None, None, "CX001", "connector_lock_failure"),
        ("OtherError", None, None, "cx004", "over_current"),
        ("InternalError", None, None, "E-77", "internal_error"),
        ("ResetFailure", None, None, None, "internal_error"),
        ("PowerContactor.Problem", "PowerContactor", "Problem", None, "power_switch_failure"),
        ("RCD.Tripped", "RCD", "Tripped", None, "ground_failure"),
        ("ChargingStation.Problem", "ChargingStation", "Problem", None, "internal_error"),
        ("Foo.Problem", "Foo", "Problem", "CX003", "high_temperature"),
        ("Error", None, None, None, "unknown_fault"),
    ],
)
def test_classification(
    code: str, component: str | None, variable: str | None, vendor: str | None, expected: str
) -> None:
    assert PLAYBOOKS.classify(code, component, variable, vendor).name == expected


def test_defaults_follow_the_ocpp_notes() -> None:
    def actions(name: str) -> list[str]:
        playbook = PLAYBOOKS.get(name)
        assert playbook is not None
        return [s.action.value for s in playbook.steps]

    assert actions("connector_lock_failure") == ["unlock", "soft_reset", "hard_reset", "ticket"]
    assert actions("internal_error") == ["soft_reset", "hard_reset", "ticket"]
    assert actions("reader_failure") == ["soft_reset", "ticket"]
    assert actions("power_meter_failure") == ["soft_reset", "ticket"]
    for name in ("over_current", "power_switch_failure", "ground_failure"):
        playbook = PLAYBOOKS.get(name)
        assert playbook is not None and playbook.safety
        assert "set_inoperative" in actions(name)
        assert not {"soft_reset", "hard_reset"} & set(actions(name))
    ev = PLAYBOOKS.get("ev_communication_error")
    assert ev is not None and ev.hold_while_plugged
    assert PLAYBOOKS.for_detection(Detection.OFFLINE).name == "offline"
    assert PLAYBOOKS.for_detection(Detection.SILENT).steps[0].action is StepAction.PROBE


def broken(old: str, new: str) -> str:
    assert old in PLAYBOOKS_TEXT
    return PLAYBOOKS_TEXT.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (broken("resets_per_day = 3", "resets_per_day = 3\nresets = 4"), "unknown key(s) 'resets'"),
        (broken('steps = ["unlock"', 'steps = ["reboot"'), "'reboot' is not one of"),
        (
            broken('steps = ["ticket", "set_inoperative"]', 'steps = ["soft_reset", "ticket"]'),
            "over_current",
        ),
        (broken('{ action = "wait", timeout = "30m" }', '{ action = "wait", timeout = "30x" }'),
         "expected a duration"),
        (broken('detections = ["offline"]', "detections = []"), "offline"),
        (broken('codes = ["InternalError"', 'codes = ["ConnectorLockFailure"'),
         "matches both"),
        (broken('default_class = "unknown_fault"', 'default_class = "nope"'), "'nope'"),
        (broken('priority = "P4"', 'priority = "P9"'), "'P9' is not one of"),
        (broken('diagnose = ["status", "log"]', 'diagnose = ["unlock"]'), "diagnose step"),
        (broken('name = "offline"', 'name = "bad name"'), "name must be"),
        (PLAYBOOKS_TEXT + "\n[oops\n", "not valid TOML"),
    ],
)
def test_playbook_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_playbooks(text, "playbooks.toml")
    assert message in str(error.value)
    assert str(error.value).startswith("playbooks.toml")


def test_safety_class_with_reset_names_the_step() -> None:
    text = broken('steps = ["ticket", "set_inoperative"]', 'steps = ["soft_reset", "ticket"]')
    with pytest.raises(ConfigError, match=r"steps\[0\] \(soft_reset\): a safety fault class"):
        parse_playbooks(text, "p.toml")


def test_no_remote_fix_after_the_ticket() -> None:
    text = broken('steps = ["soft_reset", "hard_reset", "ticket"]',
                  'steps = ["soft_reset", "ticket", "hard_reset"]')
    with pytest.raises(ConfigError, match="no remote fix after the ticket"):
        parse_playbooks(text)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_playbooks(CONFIG / "missing.toml")


SLA_TEXT = (CONFIG / "sla.toml").read_text()


def test_sla_errors() -> None:
    with pytest.raises(ConfigError, match="no targets for P4"):
        parse_sla(SLA_TEXT.replace('P4 = { response = "1d", resolution = "10d" }', ""))
    with pytest.raises(ConfigError, match="unknown SLA policy 'gold'"):
        parse_sla(SLA_TEXT + '\n[[assign]]\npolicy = "gold"\n')
    with pytest.raises(ConfigError, match="missing key 'resolution'"):
        parse_sla(SLA_TEXT.replace(', resolution = "10d"', ""))
    with pytest.raises(ConfigError, match="unknown key"):
        parse_sla(SLA_TEXT.replace('support = "24/7"', 'support = "24/7"\nfoo = 1'))


def test_sla_deadlines_by_priority() -> None:
    sla = load_sla(CONFIG / "sla.toml")
    from datetime import UTC, datetime

    at = datetime(2025, 1, 1, tzinfo=UTC)
    deadlines = sla.deadlines(None, Priority.P1, at)
    assert deadlines.response_by == at + timedelta(hours=1)
    assert deadlines.on_site_by == at + timedelta(hours=8)
    assert sla.deadlines(None, Priority.P4, at).on_site_by is None


def test_signature_errors() -> None:
    with pytest.raises(ConfigError, match="invalid regular expression"):
        parse_signatures('[[signature]]\nid = "x"\npattern = "("\nfinding = "f"\n')
    with pytest.raises(ConfigError, match="used twice"):
        parse_signatures('[[signature]]\nid = "x"\npattern = "a"\nfinding = "f"\n' * 2)
    with pytest.raises(ConfigError, match="'fatal' is not one of"):
        parse_signatures('[[signature]]\nid = "x"\npattern = "a"\nfinding = "f"\n'
                         'severity = "fatal"\n')
    with pytest.raises(ConfigError, match="unknown fault class 'nope'"):
        parse_signatures('[[signature]]\nid = "x"\npattern = "a"\nfinding = "f"\n'
                         'fault_class = "nope"\n', fault_classes=PLAYBOOKS)


def test_match_log_orders_by_severity_and_counts() -> None:
    rules = [
        SignatureRule("warn", r"fan slow", "fan", Severity.WARNING),
        SignatureRule("boom", r"^PANIC", "panic", Severity.SAFETY, ignore_case=False),
        SignatureRule("none", r"never", "never"),
    ]
    text = "boot\nFan slow 1\npanic lower\nPANIC here\nfan slow 2\n"
    findings = match_log(rules, text)
    assert [(f.rule_id, f.line, f.count) for f in findings] == [("boom", 4, 1), ("warn", 2, 2)]
    assert findings[1].excerpt == "Fan slow 1"
    assert match_log(rules, "") == []


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(30, 30), (1.5, 1.5), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
     ("250ms", 0.25), (" 10 m ", 600)],
)
def test_parse_duration(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["", "5", "m5", "5 minutes", True, -1, "1h-"])
def test_parse_duration_rejects(raw: object) -> None:
    with pytest.raises(ConfigError):
        parse_duration(raw)


def test_timings_scaled_and_from_seconds() -> None:
    fast = Timings().scaled(0.001)
    assert fast.grace == timedelta(seconds=0.3)
    assert fast.playbook(timedelta(minutes=30), fast.grace) == timedelta(seconds=1.8)
    assert fast.playbook(None, fast.grace) == fast.grace
    custom = Timings.from_seconds(grace=1, settle=0.5)
    assert (custom.grace, custom.settle, custom.scale) == (
        timedelta(seconds=1), timedelta(seconds=0.5), 1.0,
    )
