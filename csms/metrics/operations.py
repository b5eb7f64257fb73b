"""Counters of operations events, fed by the event bus (one notice = a few dict lookups).

Families with few label values are created with all of them at zero, so that ``rate()`` sees
the first increment and dashboards show zeros rather than gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from csms.bus import Notice, Topic
from csms.metrics.labels import (
    COMMAND_RESULTS,
    COMMAND_SOURCES,
    COMMANDS,
    LOG_UPLOAD_RESULTS,
    OTHER,
    PRIORITIES,
    REPORT_CATEGORIES,
    RUN_OUTCOMES,
    VERSIONS,
    bounded,
)


def _counter(
    registry: CollectorRegistry, name: str, documentation: str,
    labels: Sequence[str] = (), values: Sequence[Sequence[str]] = (),
) -> Counter:
    """A counter with every combination in ``values`` (one tuple per label) bound at zero."""
    counter = Counter(name, documentation, labelnames=labels, registry=registry)
    if values:
        combinations: list[tuple[str, ...]] = [()]
        for options in values:
            combinations = [(*combo, option) for combo in combinations for option in options]
        for combo in combinations:
            counter.labels(*combo)
    return counter


class OperationsMetrics:
    """Runs, remote actions, tickets, log uploads, driver reports and connections."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = _counter(
            registry, "csms_ocpp_connections_total",
            "Charger websocket connections accepted, by OCPP version.",
            ["version"], [VERSIONS],
        )
        self.runs = _counter(
            registry, "csms_diagnostics_runs_total",
            "Diagnostics runs finished on this node, by outcome.",
            ["outcome"], [(*RUN_OUTCOMES, OTHER)],
        )
        self.remote_actions = _counter(
            registry, "csms_remote_actions_total",
            "Remote actions (commands) sent to chargers, by action, result and source.",
            ["action", "result", "source"],
        )
        """Series appear on first use (11 actions x 6 results x 2 sources would be 132 zeros)."""
        self.tickets_opened = _counter(
            registry, "csms_tickets_opened_total", "Field-service tickets opened, by priority.",
            ["priority"], [PRIORITIES],
        )
        self.tickets_resolved = _counter(
            registry, "csms_tickets_resolved_total",
            "Field-service tickets resolved (the fault went away), by priority.",
            ["priority"], [PRIORITIES],
        )
        self.log_uploads = _counter(
            registry, "csms_log_uploads_total",
            "Diagnostics log uploads: files received (uploaded) or failures the charger "
            "reported (failed).",
            ["result"], [LOG_UPLOAD_RESULTS],
        )
        self.log_bytes = _counter(
            registry, "csms_log_uploaded_bytes_total", "Bytes of diagnostics logs received.",
        )
        self.log_findings = _counter(
            registry, "csms_log_findings_total",
            "Known signatures found in uploaded diagnostics logs.",
        )
        self.reports = _counter(
            registry, "csms_driver_reports_total", "Driver fault reports received, by category.",
            ["category"], [REPORT_CATEGORIES],
        )
        self._handlers: dict[tuple[Topic, str], Callable[[Notice], None]] = {
            (Topic.STATION, "connected"): self._connected,
            (Topic.RUN, "finished"): self._run_finished,
            (Topic.COMMAND, "finished"): self._command_finished,
            (Topic.TICKET, "opened"): self._ticket_opened,
            (Topic.TICKET, "resolved"): self._ticket_resolved,
            (Topic.LOG, "uploaded"): self._log_uploaded,
            (Topic.LOG, "upload_failed"): self._log_failed,
            (Topic.LOG, "analysed"): self._log_analysed,
            (Topic.REPORT, "received"): self._report_received,
        }

    def __call__(self, notice: Notice) -> None:
        """The bus subscriber: count ``notice`` if it is one we count (this node's own only:
        Prometheus adds the nodes up)."""
        if notice.origin is not None:
            return
        handler = self._handlers.get((notice.topic, notice.kind))
        if handler is not None:
            handler(notice)

    def _connected(self, notice: Notice) -> None:
        version = bounded(notice.data.get("protocol"), VERSIONS, fallback="")
        if version:
            self.connections.labels(version).inc()

    def _run_finished(self, notice: Notice) -> None:
        self.runs.labels(bounded(notice.data.get("outcome"), RUN_OUTCOMES)).inc()

    def _command_finished(self, notice: Notice) -> None:
        data = notice.data
        action = bounded(data.get("action"), COMMANDS, fallback="")
        result = bounded(data.get("result"), COMMAND_RESULTS, fallback="")
        source = bounded(data.get("source"), COMMAND_SOURCES, fallback="")
        if action and result and source:
            self.remote_actions.labels(action, result, source).inc()

    def _ticket_opened(self, notice: Notice) -> None:
        priority = bounded(notice.data.get("priority"), PRIORITIES, fallback="")
        if priority:
            self.tickets_opened.labels(priority).inc()

    def _ticket_resolved(self, notice: Notice) -> None:
        priority = bounded(notice.data.get("priority"), PRIORITIES, fallback="")
        if priority:
            self.tickets_resolved.labels(priority).inc()

    def _log_uploaded(self, notice: Notice) -> None:
        self.log_uploads.labels("uploaded").inc()
        size = _number(notice.data.get("size"))
        if size > 0:
            self.log_bytes.inc(size)

    def _log_failed(self, notice: Notice) -> None:
        self.log_uploads.labels("failed").inc()

    def _log_analysed(self, notice: Notice) -> None:
        findings = notice.data.get("findings")
        if isinstance(findings, list) and findings:
            self.log_findings.inc(len(findings))

    def _report_received(self, notice: Notice) -> None:
        self.reports.labels(bounded(notice.data.get("category"), REPORT_CATEGORIES)).inc()


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
