"""``csms_limit_refusals_total{limit}``: what the abuse limits refused (:mod:`csms.security`).

Counted with plain integer additions (refusals come in floods: a lock per update would cost
more than the refusal) and turned into a metric family when Prometheus scrapes. Every label
value is one of :data:`~csms.metrics.labels.LIMITS`, all exported from zero.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from csms.metrics.labels import LIMITS, OTHER, bounded

LIMITS_KEY = "limit_meter"
"""Where the central system's :class:`LimitMeter` is kept in ``ApiContext.extras`` (the HTTP
limits count their refusals there)."""


class LimitMeter(Collector):
    """Refusals by limit (``ocpp_message_rate``, ``api_body_size``...)."""

    def __init__(self) -> None:
        self.refusals = dict.fromkeys((*LIMITS, OTHER), 0)

    def refused(self, limit: str) -> None:
        """Count one refusal by ``limit`` (a name of :data:`LIMITS`, else ``other``)."""
        self.refusals[bounded(limit, LIMITS)] += 1

    def upload_refused(self, protocol: str, reason: str) -> None:
        """An upload request refused by HTTP or FTP: for its rate (``reason`` ``"rate"``, FTP
        connections; the HTTP middleware counts its own), else for its credentials (unknown,
        used, expired, busy token or FTP login: one request per location)."""
        self.refusals["upload_rate" if reason == "rate" else "upload_token"] += 1

    def describe(self) -> Iterator[Metric]:
        """The family without samples (for the registry's name check)."""
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        """The family with the current counts."""
        family = self._family()
        for limit, count in self.refusals.items():
            family.add_metric([limit], count)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "csms_limit_refusals",
            "Messages, handshakes and requests refused by an abuse limit, by limit.",
            labels=["limit"],
        )
