"""OCPP traffic counters on the message hot path, exposed as a Prometheus collector.

``prometheus_client``'s counters and histograms take a lock per update (about 0.7 µs per
``inc``, 1.2 µs per ``observe``); a session updates three of them per message. Here a
session holds one :class:`ActionMeter` per action (a dict lookup, cached per version and
bounded by the actions the version defines) whose updates are plain integer and float
additions on the event loop thread; :meth:`OcppMeter.collect` turns them into metric
families when Prometheus scrapes.

Families:

- ``csms_ocpp_messages_total{version,action,direction,type}``: ``direction`` ``in`` (from the
  charger) or ``out``; ``type`` ``call``, ``callresult`` or ``callerror``. A charger's CALL
  and our answer carry the CALL's action, as do our CALLs and the charger's answers. An
  action the version does not define is counted as ``unknown`` (it is answered with a
  CALLERROR, OCPP-J 1.6 §4.2.3, 2.0.1 Part 4 §4.2.3).
- ``csms_ocpp_call_duration_seconds{version,action}``: CSMS→charger CALL round trip, until
  the CALLRESULT, CALLERROR or the call timeout.
- ``csms_ocpp_call_timeouts_total{version,action}``: our CALLs left unanswered.
- ``csms_ocpp_request_duration_seconds{version,action}``: from a charger's CALL to our answer
  being sent (validation, storing, the handler).
- ``csms_ocpp_malformed_frames_total{version}``: frames without a readable CALL or answer.
- ``csms_ocpp_connections_refused_total{reason}``: handshakes refused.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from time import perf_counter
from typing import Final

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from csms.metrics.labels import ACTIONS, OTHER, REFUSALS, UNKNOWN, VERSIONS, refusal
from csms.metrics.limits import LimitMeter

CALL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; charger round trips over mobile networks are tens to hundreds of ms."""
REQUEST_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
"""Seconds; answering a CALL includes a database write (record before answer)."""


class Timing:
    """A histogram cell: counts per bucket (the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one duration (bucket ``le`` is inclusive, as in Prometheus)."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs for the exposition."""
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


class ActionMeter:
    """Counters of one action of one version (see the module docstring)."""

    __slots__ = (
        "call_time",
        "calls_in",
        "calls_out",
        "errors_in",
        "errors_out",
        "request_time",
        "results_in",
        "results_out",
        "timeouts",
    )

    def __init__(self) -> None:
        self.calls_in = 0
        self.results_out = 0
        self.errors_out = 0
        self.calls_out = 0
        self.results_in = 0
        self.errors_in = 0
        self.timeouts = 0
        self.request_time = Timing(REQUEST_BUCKETS)
        self.call_time = Timing(CALL_BUCKETS)

    def received(self) -> float:
        """A charger's CALL arrived; returns the start time for :meth:`answered`."""
        self.calls_in += 1
        return perf_counter()

    def answered(self, started: float) -> None:
        """Our CALLRESULT to the charger's CALL was sent."""
        self.results_out += 1
        self.request_time.observe(perf_counter() - started)

    def refused(self, started: float) -> None:
        """Our CALLERROR to the charger's CALL was sent."""
        self.errors_out += 1
        self.request_time.observe(perf_counter() - started)

    def call_sent(self) -> float:
        """We send a CALL; returns the start time of the round trip."""
        self.calls_out += 1
        return perf_counter()

    def call_answered(self, started: float, error: bool) -> None:
        """The charger answered our CALL (CALLERROR when ``error``)."""
        if error:
            self.errors_in += 1
        else:
            self.results_in += 1
        self.call_time.observe(perf_counter() - started)

    def call_timed_out(self, started: float) -> None:
        """The charger did not answer our CALL within the call timeout."""
        self.timeouts += 1
        self.call_time.observe(perf_counter() - started)


class VersionMeter:
    """The action meters of one OCPP version; names the version does not define share the
    ``unknown`` meter, so the cache holds at most one entry per defined action."""

    __slots__ = ("_actions", "_known", "malformed", "version")

    def __init__(self, version: str, known: frozenset[str]) -> None:
        self.version = version
        self.malformed = 0
        self._known = known
        self._actions: dict[str, ActionMeter] = {}

    def action(self, name: str) -> ActionMeter:
        """The meter of ``name`` (a dict lookup once the action was seen)."""
        meter = self._actions.get(name)
        if meter is None:
            label = name if name in self._known else UNKNOWN
            meter = self._actions.get(label)
            if meter is None:
                meter = self._actions[label] = ActionMeter()
        return meter

    def actions(self) -> list[tuple[str, ActionMeter]]:
        """``(action label, meter)`` of every action seen, by label."""
        return sorted(self._actions.items())


class OcppMeter(Collector):
    """OCPP traffic of this node: one :class:`VersionMeter` per version, and refusals."""

    def __init__(self) -> None:
        self.versions = {version: VersionMeter(version, ACTIONS[version]) for version in VERSIONS}
        self.refusals = dict.fromkeys((*REFUSALS, OTHER), 0)
        self.limits = LimitMeter()
        """Refusals by the abuse limits (its own collector, registered beside this one)."""

    def version(self, version: str) -> VersionMeter:
        """The meter of a version this server speaks (``1.6`` or ``2.0.1``)."""
        return self.versions[version]

    def connection_refused(self, reason: str) -> None:
        """Count a refused handshake; ``reason`` as the server logs it."""
        label = refusal(reason)
        self.refusals[label] = self.refusals.get(label, 0) + 1

    def describe(self) -> Iterator[Metric]:
        """The families without samples (for the registry's name check)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """The families with the current values."""
        messages, calls, timeouts, requests, malformed, refused = self._families()
        for version, meters in self.versions.items():
            malformed.add_metric([version], meters.malformed)
            for action, meter in meters.actions():
                for direction, kind, value in (
                    ("in", "call", meter.calls_in),
                    ("out", "callresult", meter.results_out),
                    ("out", "callerror", meter.errors_out),
                    ("out", "call", meter.calls_out),
                    ("in", "callresult", meter.results_in),
                    ("in", "callerror", meter.errors_in),
                ):
                    if value:
                        messages.add_metric([version, action, direction, kind], value)
                if meter.calls_out:
                    timeouts.add_metric([version, action], meter.timeouts)
                for family, timing in ((calls, meter.call_time), (requests, meter.request_time)):
                    if timing.count:
                        family.add_metric([version, action], timing.cumulative(), timing.total)
        for reason, count in self.refusals.items():
            refused.add_metric([reason], count)
        yield from (messages, calls, timeouts, requests, malformed, refused)

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily, HistogramMetricFamily, CounterMetricFamily,
        HistogramMetricFamily, CounterMetricFamily, CounterMetricFamily,
    ]:
        return (
            CounterMetricFamily(
                "csms_ocpp_messages", "OCPP-J messages by version, action, direction and type.",
                labels=["version", "action", "direction", "type"],
            ),
            HistogramMetricFamily(
                "csms_ocpp_call_duration_seconds",
                "Round trip of CSMS-to-charger CALLs until the answer or the call timeout.",
                labels=["version", "action"],
            ),
            CounterMetricFamily(
                "csms_ocpp_call_timeouts", "CSMS-to-charger CALLs left unanswered.",
                labels=["version", "action"],
            ),
            HistogramMetricFamily(
                "csms_ocpp_request_duration_seconds",
                "Time from a charger's CALL to our answer (validation, storing, handler).",
                labels=["version", "action"],
            ),
            CounterMetricFamily(
                "csms_ocpp_malformed_frames",
                "Frames that are not a readable OCPP-J CALL or answer.", labels=["version"],
            ),
            CounterMetricFamily(
                "csms_ocpp_connections_refused", "Charger connection attempts refused.",
                labels=["reason"],
            ),
        )
