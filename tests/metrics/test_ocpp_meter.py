"""The hot-path meter on its own: histogram buckets and the bounded action cache."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from csms.metrics.ocpp import CALL_BUCKETS, OcppMeter, Timing


def test_bucket_bounds_are_inclusive() -> None:
    timing = Timing((0.1, 1.0))
    for seconds in (0.1, 0.5, 1.0, 7.0):
        timing.observe(seconds)
    assert timing.counts == [1, 2, 1]
    assert timing.cumulative() == [("0.1", 1), ("1.0", 3), ("+Inf", 4)]
    assert timing.count == 4
    assert timing.total == pytest.approx(8.6)


def test_unknown_actions_do_not_grow_the_cache() -> None:
    meter = OcppMeter().version("2.0.1")
    for n in range(1000):
        meter.action(f"Action{n}").received()
    assert meter.action("Heartbeat") is meter.action("Heartbeat")
    assert [label for label, _ in meter.actions()] == ["Heartbeat", "unknown"]
    assert meter.action("unknown").calls_in == 1000


def test_exposition_of_a_round_trip() -> None:
    ocpp = OcppMeter()
    registry = CollectorRegistry()
    registry.register(ocpp)
    action = ocpp.version("1.6").action("Reset")
    action.call_answered(action.call_sent(), error=True)
    action.call_timed_out(action.call_sent())
    families = {f.name: f for f in text_string_to_metric_families(
        generate_latest(registry).decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in families.values() for s in family.samples}
    labels = (("action", "Reset"), ("version", "1.6"))
    assert samples[("csms_ocpp_messages_total",
                    (("action", "Reset"), ("direction", "out"), ("type", "call"),
                     ("version", "1.6")))] == 2
    assert samples[("csms_ocpp_messages_total",
                    (("action", "Reset"), ("direction", "in"), ("type", "callerror"),
                     ("version", "1.6")))] == 1
    assert samples[("csms_ocpp_call_timeouts_total", labels)] == 1
    assert samples[("csms_ocpp_call_duration_seconds_count", labels)] == 2
    buckets = [s for s in families["csms_ocpp_call_duration_seconds"].samples
               if s.name.endswith("_bucket")]
    assert len(buckets) == len(CALL_BUCKETS) + 1
    assert families["csms_ocpp_request_duration_seconds"].samples == []
