"""Prometheus metrics of the central system at ``GET /metrics``.

- :mod:`csms.metrics.ocpp`: OCPP traffic counted on the message hot path (messages, call and
  request durations, refusals) with a lock-free collector;
- :mod:`csms.metrics.operations`: runs, remote actions, tickets, log uploads, driver reports
  and connections, counted from the event bus;
- :mod:`csms.metrics.limits`: refusals by the abuse limits (:mod:`csms.security.limits`);
- :mod:`csms.metrics.fleet`: fleet gauges (stations by state, open tickets, SLA breaches)
  read from the database every few seconds;
- :mod:`csms.metrics.component`: the per-central-system registry, the route, the refresh task.

Names follow the Prometheus conventions: prefix ``csms_``, base units (seconds, bytes),
counters end in ``_total``, and no label carries a station id or any other unbounded value.
"""

from csms.metrics.component import MetricsComponent, install
from csms.metrics.ocpp import OcppMeter

__all__ = ["MetricsComponent", "OcppMeter", "install"]
