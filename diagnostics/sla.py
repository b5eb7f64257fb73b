"""SLA policies (``config/sla.toml``): which deadlines a ticket gets.

Selection is a pure function of the station's :class:`~diagnostics.model.StationInfo`:
an explicit ``sla_policy`` wins, then the first assignment that names the station, its site
or its owner, then the default policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from diagnostics.exceptions import ConfigError
from diagnostics.model import Priority, StationInfo


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """Deadlines of one priority, counted from the ticket's opening.

    ``on_site`` is ``None`` when no visit is promised (back-office problems).
    """

    response: timedelta
    resolution: timedelta
    on_site: timedelta | None = None


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """A named service level: targets per priority and the support hours it promises."""

    name: str
    targets: Mapping[Priority, SlaTargets]
    description: str = ""
    support: str = ""
    """Support tier of the contract, e.g. ``"24/7"`` or ``"business hours"``."""


@dataclass(frozen=True, slots=True)
class SlaAssignment:
    """Stations, sites or owners that get a policy (first matching assignment wins)."""

    policy: str
    stations: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()

    def matches(self, info: StationInfo) -> bool:
        """Whether this assignment covers the station."""
        return (
            info.station_id in self.stations
            or (info.site is not None and info.site in self.sites)
            or (info.owner is not None and info.owner in self.owners)
        )


@dataclass(frozen=True, slots=True)
class SlaDeadlines:
    """The deadlines written on a ticket."""

    policy: str
    response_by: datetime
    resolution_by: datetime
    on_site_by: datetime | None = None
    support: str = ""
    contract: str | None = None


@dataclass(frozen=True, slots=True)
class SlaPolicies:
    """All policies, their assignments and the default."""

    policies: Mapping[str, SlaPolicy]
    default: str
    assignments: tuple[SlaAssignment, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.default not in self.policies:
            raise ConfigError(f"default SLA policy {self.default!r} is not defined")
        for index, assignment in enumerate(self.assignments):
            if assignment.policy not in self.policies:
                raise ConfigError(
                    f"assign[{index}]: unknown SLA policy {assignment.policy!r}"
                )
        for policy in self.policies.values():
            missing = [p.value for p in Priority if p not in policy.targets]
            if missing:
                raise ConfigError(
                    f"SLA policy {policy.name!r} has no targets for {', '.join(missing)}"
                )

    def select(self, info: StationInfo | None) -> SlaPolicy:
        """The policy of a station (default when nothing is known about it)."""
        if info is not None:
            if info.sla_policy is not None and info.sla_policy in self.policies:
                return self.policies[info.sla_policy]
            for assignment in self.assignments:
                if assignment.matches(info):
                    return self.policies[assignment.policy]
        return self.policies[self.default]

    def deadlines(
        self, info: StationInfo | None, priority: Priority, opened_at: datetime
    ) -> SlaDeadlines:
        """Deadlines of a ticket of ``priority`` opened at ``opened_at``."""
        policy = self.select(info)
        targets = policy.targets[priority]
        return SlaDeadlines(
            policy=policy.name,
            response_by=opened_at + targets.response,
            resolution_by=opened_at + targets.resolution,
            on_site_by=None if targets.on_site is None else opened_at + targets.on_site,
            support=policy.support,
            contract=None if info is None else info.contract,
        )

    @classmethod
    def single(cls, policy: SlaPolicy) -> SlaPolicies:
        """One policy for every station."""
        return cls(policies={policy.name: policy}, default=policy.name)
