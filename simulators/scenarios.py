"""Named, scriptable fault scenarios for the simulated stations (both OCPP versions).

A :class:`Scenario` is a small declarative description of how a station misbehaves and what heals
it: a :class:`Fault` (1.6 ``errorCode`` + ``vendorErrorCode``; 2.0.1 StatusNotification
``Faulted`` + NotifyEvent on ``component.variable`` with ``techCode``), the remote actions that
clear it (``healed_by``), timers (clears by itself, comes back, goes offline, boot loop), upload
behaviour and answer quirks. Apply it with ``Station16(..., scenario="fixed-by-unlock")``,
``Station201(..., scenario=my_scenario)`` or ``scenario.apply(station)`` before ``start()``.

Heals (``healed_by``):

* ``unlock``: UnlockConnector answered ``Unlocked`` for the fault's connector (2.0.1 ``evseId``);
* ``availability``: ChangeAvailability ``Operative`` accepted for the connector or the station;
* ``soft_reset`` / ``hard_reset``: Reset ``Soft`` / ``Hard`` (1.6), ``OnIdle`` / ``Immediate``
  (2.0.1); the station reboots and comes back healthy.

Rules, the same on both versions:

* The fault is reported at every boot until healed: a reset that does not heal re-reports it.
* A heal by command is reported as a follow-up of that command: 1.6 StatusNotification
  ``Available``/``NoError``; 2.0.1 StatusNotification ``Available`` + NotifyEvent ``cleared=true``
  (so with ``notify_before_result`` these arrive before the CALLRESULT). A heal by reset shows in
  the statuses sent after the reboot (2.0.1 also sends the NotifyEvent ``cleared=true``).
* An UnlockConnector / ChangeAvailability on the faulted connector that does not heal is followed
  by the fault reported again (the CSMS sees at once that it did not help).
* ChangeAvailability ``Inoperative`` on a faulted connector is Accepted; the connector keeps
  reporting ``Faulted`` (``inoperative_status="Faulted"``, default) or reports ``Unavailable``
  with the error code / NotifyEvent still active (``inoperative_status="Unavailable"``).
* What healed it is recorded on the station: ``station.healed_by`` (last) and ``station.heals``
  (all, in order; ``self`` = cleared on its own).
* Simulated upload failures and unsupported upload protocols fail at once (no retries).

This module imports nothing from ``csms`` or ``diagnostics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulators.behaviour import Mode

if TYPE_CHECKING:
    from simulators.base import FollowUp, Reply, StationBase

log = logging.getLogger("simulators.scenarios")

HEALS = ("unlock", "availability", "soft_reset", "hard_reset")
"""Remote actions a scenario can list in ``healed_by``."""
UPLOAD_SCHEMES: dict[str, frozenset[str]] = {
    "http": frozenset({"http", "https"}),
    "ftp": frozenset({"ftp"}),
}
"""``upload_protocol`` -> URL schemes the station can upload to."""


class ScenarioError(ValueError):
    """Invalid scenario definition."""


@dataclass(frozen=True)
class Fault:
    """A persistent fault on one connector (1.6) / EVSE (2.0.1).

    ``component``/``variable`` choose the 2.0.1 NotifyEvent target; by default it follows the
    error code (``simulators.station201.ERROR_COMPONENTS``: ConnectorLockFailure ->
    ConnectorPlugRetentionLock.Problem, InternalError -> ChargingStation.Problem,
    OverCurrentFailure -> OverCurrentProtection.Tripped, ...).
    """

    error_code: str
    """1.6 ``ChargePointErrorCode`` (also selects the 2.0.1 component by default)."""
    vendor_code: str | None = None
    """1.6 ``vendorErrorCode`` / 2.0.1 ``techCode`` (ChargeX MREC ``CX001``...)."""
    info: str | None = None
    """1.6 ``info`` (at most 50 characters) / 2.0.1 ``techInfo``."""
    component: str | None = None
    variable: str | None = None
    connector: int = 1


@dataclass(frozen=True)
class Scenario:
    """How a simulated station misbehaves and what heals it (see the module docstring)."""

    name: str
    description: str = ""
    fault: Fault | None = None
    healed_by: frozenset[str] = frozenset()
    """Subset of :data:`HEALS`."""
    clears_after: float | None = None
    """The fault clears on its own this many seconds after it was first reported."""
    returns_after: float | None = None
    """Flapping: after a heal the fault comes back this many seconds later (counted from the
    reboot for a reset, from the command otherwise)."""
    returns: int | None = None
    """How many times the fault comes back (None: every time)."""
    offline_after: float | None = None
    """Seconds after the first boot the station loses its connection."""
    offline_for: float | None = None
    """Seconds it stays away (None: for good)."""
    offline_mode: str = "drop"
    """``drop``: the TCP connection is aborted; ``silent``: it stays open but the station sends
    and answers nothing (hung), the WebSocket layer still answers pings."""
    offline_reboot: bool = False
    """Comes back with a BootNotification (power loss) rather than a plain reconnect."""
    reboot_every: float | None = None
    """Boot loop: reboot this many seconds after each boot."""
    reboot_times: int | None = None
    """Number of loop reboots (None: forever)."""
    boot_reason: str = "Watchdog"
    """2.0.1 boot reason of loop reboots (1.6 has none)."""
    inoperative_status: str = "Faulted"
    """Status of the faulted connector once set Inoperative: ``Faulted`` or ``Unavailable``."""
    upload_protocol: str | None = None
    """``http`` (PUT, http/https) or ``ftp`` (STOR): the only protocol the station uploads with;
    another location scheme gives UploadFailed / UploadFailure. None: both."""
    upload: str = "ok"
    """``ok``; ``fail``: every upload fails (UploadFailed / UploadFailure); ``hang``: Uploading,
    then no upload and no final status."""
    log_text: str | None = None
    """Lines of the generated diagnostics log, each prefixed with a timestamp (1 s apart,
    leading up to the OCPP frame trace that follows them); ``{station_id}``, ``{connector}``,
    ``{error_code}``, ``{vendor_code}`` are replaced; lines starting with ``#`` are kept as they
    are. None: a line derived from the fault."""
    modes: Mapping[str, str] = field(default_factory=dict)
    """Behaviour answer modes per action (``{"Reset": "reject"}``, ``"timeout"`` ...)."""
    delays: Mapping[str, float] = field(default_factory=dict)
    notify_before_result: bool = False
    skip_final_log_status: bool = False
    duplicate_progress: bool = False

    def __post_init__(self) -> None:
        bad = set(self.healed_by) - set(HEALS)
        if bad:
            raise ScenarioError(f"{self.name}: unknown heals {sorted(bad)}; use {HEALS}")
        for action, mode in self.modes.items():
            try:
                Mode(mode)
            except ValueError:
                raise ScenarioError(f"{self.name}: bad mode {mode!r} for {action}") from None
        choices = {
            "offline_mode": ("drop", "silent"),
            "upload": ("ok", "fail", "hang"),
            "inoperative_status": ("Faulted", "Unavailable"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ScenarioError(f"{self.name}: {name} must be one of {allowed}")
        if self.upload_protocol is not None and self.upload_protocol not in UPLOAD_SCHEMES:
            raise ScenarioError(f"{self.name}: upload_protocol must be http, ftp or None")
        if self.fault is not None and self.fault.connector < 1:
            raise ScenarioError(f"{self.name}: fault connector must be >= 1")
        for f in dataclasses.fields(self):
            value: Any = getattr(self, f.name)
            if f.type in ("float | None", "int | None") and value is not None:
                integral = f.type == "int | None"
                number = isinstance(value, int) or (not integral and isinstance(value, float))
                if isinstance(value, bool) or not number or value < 0:
                    kind = "an integer" if integral else "a number"
                    raise ScenarioError(f"{self.name}: {f.name} must be {kind} >= 0 or None")
            elif f.type == "bool" and not isinstance(value, bool):
                raise ScenarioError(f"{self.name}: {f.name} must be true or false")

    # ---------------------------------------------------------------- building

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build from plain data (JSON): ``fault`` a dict, ``healed_by`` a list."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ScenarioError(f"unknown scenario fields {sorted(unknown)}")
        values = dict(data)
        fault = values.get("fault")
        if isinstance(fault, Mapping):
            fault_fields = {f.name for f in dataclasses.fields(Fault)}
            if set(fault) - fault_fields:
                raise ScenarioError(f"unknown fault fields {sorted(set(fault) - fault_fields)}")
            values["fault"] = Fault(**fault)
        if "healed_by" in values:
            heals = values["healed_by"]
            values["healed_by"] = frozenset([heals] if isinstance(heals, str) else heals)
        for name in ("modes", "delays"):
            if name in values:
                values[name] = dict(values[name])
        if "name" not in values:
            raise ScenarioError("a scenario needs a name")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ScenarioError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (inverse of :meth:`from_dict`)."""
        data = dataclasses.asdict(self)
        data["healed_by"] = sorted(self.healed_by)
        return data

    def with_(self, **changes: Any) -> Scenario:
        """Copy with some fields changed (values as in :meth:`from_dict`)."""
        return Scenario.from_dict({**self.to_dict(), **changes})

    def apply(self, station: StationBase) -> ScenarioRun:
        """Attach to ``station`` (normally before ``start()``): merges the answer quirks into its
        Behaviour (a copy), sets the fault so the first boot reports it, arms the timers."""
        if station.scenario_run is not None:
            raise RuntimeError(f"{station.station_id} already runs a scenario")
        if self.fault is not None and self.fault.connector > station.connectors:
            raise ScenarioError(f"{self.name}: connector {self.fault.connector} > "
                                f"{station.connectors}")
        b = station.behaviour
        station.behaviour = dataclasses.replace(
            b,
            modes={**b.modes, **self.modes},
            delays={**b.delays, **self.delays},
            notify_before_result=b.notify_before_result or self.notify_before_result,
            skip_final_log_status=b.skip_final_log_status or self.skip_final_log_status,
            duplicate_progress=b.duplicate_progress or self.duplicate_progress,
        )
        station.inoperative_fault_status = self.inoperative_status
        run = ScenarioRun(self, station)
        station.scenario = self
        station.scenario_run = run
        if self.fault is not None:
            run.set_fault_state()
            if station.connected:
                run.spawn(station._report_current(self.fault.connector))
        return run


# ------------------------------------------------------------------------------------------
# Runtime
# ------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _chain(first: FollowUp | None, extra: FollowUp) -> FollowUp:
    if first is None:
        return extra

    async def both() -> None:
        await first()
        await extra()

    return both


class ScenarioRun:
    """State of one scenario on one station; the station calls the hooks."""

    def __init__(self, scenario: Scenario, station: StationBase) -> None:
        self.scenario = scenario
        self.station = station
        self.returned = 0
        """Times the fault came back (flapping)."""
        self.loop_reboots = 0
        """Reboots done by the boot loop."""
        self.went_offline = False
        self._booted_once = False
        self._return_on_boot = False
        self._loop_healed = False
        self._loop_task: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- fault state

    @property
    def fault_present(self) -> bool:
        """True while the scenario's fault is active on the station."""
        fault = self.scenario.fault
        return fault is not None and fault.connector in self.station.faults

    def set_fault_state(self) -> None:
        """Put the fault into the station's state (reported at the next boot)."""
        fault = self.scenario.fault
        assert fault is not None
        st = self.station
        st.faults[fault.connector] = fault.error_code
        st.fault_details[fault.connector] = (fault.vendor_code, fault.info)
        if fault.component is not None:
            st.set_fault_component(fault.connector, fault.component, fault.variable or "Problem")

    def _clear_fault_state(self) -> None:
        fault = self.scenario.fault
        assert fault is not None
        for table in (self.station.faults, self.station.fault_details,
                      self.station.fault_components):
            table.pop(fault.connector, None)

    async def _report(self) -> None:
        fault = self.scenario.fault
        if fault is not None and self.station.connected:
            with contextlib.suppress(ConnectionError):
                await self.station._report_current(fault.connector)

    async def _report_healed(self) -> None:
        fault = self.scenario.fault
        st = self.station
        if fault is not None and st.connected:
            with contextlib.suppress(ConnectionError):
                await st.set_status(fault.connector, st._normal_status(fault.connector), "NoError")

    def _healed(self, how: str) -> None:
        self.station.healed_by = how
        self.station.heals.append(how)
        log.info("%s: scenario %s healed by %s", self.station.station_id, self.scenario.name, how)

    def _after_heal(self, *, by_reset: bool) -> None:
        sc = self.scenario
        if sc.returns_after is None or (sc.returns is not None and self.returned >= sc.returns):
            return
        if by_reset:
            self._return_on_boot = True
        else:
            self.spawn(self._return_later())

    def _fault_appeared(self) -> None:
        if self.scenario.clears_after is not None:
            self.spawn(self._clear_later())

    # ---------------------------------------------------------------- station hooks

    def on_boot(self) -> None:
        """After an accepted BootNotification and the initial statuses."""
        sc = self.scenario
        if not self._booted_once:
            self._booted_once = True
            if self.fault_present:
                self._fault_appeared()
            if sc.offline_after is not None:
                self.spawn(self._offline_later())
        if self._return_on_boot:
            self._return_on_boot = False
            self.spawn(self._return_later())
        if (
            sc.reboot_every is not None
            and not self._loop_healed
            and (sc.reboot_times is None or self.loop_reboots < sc.reboot_times)
        ):
            if self._loop_task is not None:
                self._loop_task.cancel()
            self._loop_task = self.spawn(self._reboot_later(sc.reboot_every))

    def on_reset(self, *, hard: bool) -> None:
        """Just before a reset drops the connection: heal what this reset heals."""
        how = "hard_reset" if hard else "soft_reset"
        if how not in self.scenario.healed_by:
            return
        healed = False
        if self.fault_present:
            self._clear_fault_state()  # comes back healthy; the boot statuses show it
            healed = True
        if self.scenario.reboot_every is not None and not self._loop_healed:
            self._loop_healed = True
            if self._loop_task is not None:
                self._loop_task.cancel()
            healed = True
        if healed:
            self._healed(how)
            self._after_heal(by_reset=True)

    def adjust_reply(self, action: str, payload: Mapping[str, Any], reply: Reply) -> Reply:
        """Add the heal (or the fault re-report) to the follow-ups of UnlockConnector /
        ChangeAvailability aimed at the faulted connector."""
        fault = self.scenario.fault
        if fault is None or not self.fault_present:
            return reply
        status = reply.payload.get("status")
        v16 = self.station.ocpp_version == "1.6"
        how: str | None = None
        if action == "UnlockConnector" and status == "Unlocked":
            target = payload.get("connectorId" if v16 else "evseId")
            if target != fault.connector:
                return reply
            how = "unlock"
        elif action == "ChangeAvailability" and status == "Accepted":
            if v16:
                target, kind = payload.get("connectorId"), payload.get("type")
            else:
                evse = payload.get("evse")
                target = 0 if evse is None else evse.get("id")
                kind = payload.get("operationalStatus")
            if target not in (0, fault.connector):
                return reply
            how = "availability" if kind == "Operative" else None
        else:
            return reply
        if how is not None and how in self.scenario.healed_by:
            self._clear_fault_state()
            self._healed(how)
            self._after_heal(by_reset=False)
            extra = self._report_healed
        else:
            extra = self._report
        return dataclasses.replace(reply, first=_chain(reply.first, extra))

    @property
    def upload_hangs(self) -> bool:
        """Uploading, then nothing."""
        return self.scenario.upload == "hang"

    def upload_refusal(self, target: str) -> str | None:
        """Why an upload to ``target`` fails at once, or None to upload."""
        sc = self.scenario
        if sc.upload == "fail":
            return "simulated upload failure"
        if sc.upload_protocol is not None:
            scheme = urlsplit(target).scheme.lower()
            if scheme not in UPLOAD_SCHEMES[sc.upload_protocol]:
                return f"station uploads over {sc.upload_protocol} only, not {scheme!r}"
        return None

    def log_lines(self) -> list[str]:
        """Timestamped scenario lines of the generated log."""
        sc, fault = self.scenario, self.scenario.fault
        text = sc.log_text
        if text is None:
            if fault is None:
                return []
            text = (f"ERROR connector {{connector}}: {{error_code}} ({{vendor_code}}) "
                    f"{fault.info or ''}").rstrip()
        values = {
            "{station_id}": self.station.station_id,
            "{connector}": str(fault.connector if fault else 0),
            "{error_code}": fault.error_code if fault else "NoError",
            "{vendor_code}": (fault.vendor_code or "-") if fault else "-",
        }
        lines = [line for line in text.splitlines() if line.strip()]
        # the story leads up to the first frame of the kept trace, one line a second
        frames = self.station.frames[-200:]
        end = (frames[0].timestamp if frames else datetime.now(UTC)) - timedelta(seconds=1)
        out = []
        for i, line in enumerate(lines):
            for key, value in values.items():
                line = line.replace(key, value)
            stamp = end - timedelta(seconds=len(lines) - 1 - i)
            out.append(line if line.startswith("#") else f"{_iso(stamp)} {line}")
        return out

    async def stop(self) -> None:
        """Cancel the timers (station stopped)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- timers

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Station-scoped task (survives reconnects, cancelled by ``station.stop()``)."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: scenario task failed", self.station.station_id,
                      exc_info=task.exception())

    async def _clear_later(self) -> None:
        assert self.scenario.clears_after is not None
        await asyncio.sleep(self.scenario.clears_after)
        if self.fault_present:
            self._clear_fault_state()
            self._healed("self")
            self._after_heal(by_reset=False)
            await self._report_healed()

    async def _return_later(self) -> None:
        assert self.scenario.returns_after is not None
        await asyncio.sleep(self.scenario.returns_after)
        if self.fault_present:
            return
        self.returned += 1
        self.set_fault_state()
        log.info("%s: scenario %s fault is back (%d)", self.station.station_id,
                 self.scenario.name, self.returned)
        self._fault_appeared()
        await self._report()

    async def _offline_later(self) -> None:
        sc = self.scenario
        assert sc.offline_after is not None
        await asyncio.sleep(sc.offline_after)
        self.went_offline = True
        if sc.offline_mode == "silent":
            self.station.go_silent()
        else:
            await self.station.go_offline()
        if sc.offline_for is not None:
            await asyncio.sleep(sc.offline_for)
            await self.station.come_back(boot=sc.offline_reboot, wait=False)

    async def _reboot_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.loop_reboots += 1
        await self.station.reboot(reason=self.scenario.boot_reason, wait=False)


# ------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------

LOCK_LOG = """\
INFO connector {connector}: plug inserted, locking
ERROR lock motor timeout on connector {connector} ({vendor_code})
WARN lock feedback switch open after 3 attempts
ERROR connector {connector}: ConnectorLockFailure, charging inhibited
"""
INTERNAL_LOG = """\
WARN ocpp task unresponsive for 30 s
ERROR watchdog reset pending: main loop stalled
ERROR controller fault {vendor_code}: heap exhausted (free 512 bytes)
ERROR connector {connector}: InternalError, charging inhibited
"""
OVERCURRENT_LOG = """\
INFO connector {connector}: charging at 31.8 A
CRITICAL overcurrent protection tripped on L1: 43.7 A > 40 A ({vendor_code})
ERROR contactor opened by protection, breaker must be re-armed on site
"""
WELDED_LOG = """\
INFO connector {connector}: session ended, opening contactor
CRITICAL contactor weld detected: voltage present with contactor open ({vendor_code})
ERROR connector {connector}: PowerSwitchFailure, output isolated
"""
GROUND_LOG = """\
INFO connector {connector}: charging at 16.0 A
CRITICAL RCD trip: residual current 31 mA AC ({vendor_code})
ERROR RCD did not re-arm after unplug
"""
TEMPERATURE_LOG = """\
WARN power module temperature 78 C, derating to 16 A
ERROR over-temperature shutdown ({vendor_code}): 86 C
"""
BOOT_LOOP_LOG = """\
ERROR watchdog reset: firmware task 'ocpp' blocked
INFO boot reason=Watchdog, uptime 0 s
ERROR watchdog reset: firmware task 'ocpp' blocked
"""
OFFLINE_LOG = """\
WARN modem: signal weak -109 dBm (CX007)
ERROR LTE link lost, backend unreachable
"""

LOCK = Fault("ConnectorLockFailure", "CX001", "lock motor timeout")
INTERNAL = Fault("InternalError", "SIM-INT-101", "watchdog: main loop stalled")
INTERNAL_HARD = Fault("InternalError", "SIM-INT-102", "controller: flash I/O error",
                      component="Controller", variable="Problem")
FLAPPING = Fault("InternalError", "SIM-INT-103", "controller: bus error")
TEMPERATURE = Fault("HighTemperature", "CX003", "power module 86 C")
RESETS = frozenset({"soft_reset", "hard_reset"})

SAFETY_FAULTS: dict[str, tuple[Fault, str, str]] = {
    "overcurrent": (Fault("OverCurrentFailure", "CX004", "overcurrent L1 43.7 A"),
                    OVERCURRENT_LOG, "OverCurrentProtection.Tripped"),
    "welded-contactor": (Fault("PowerSwitchFailure", "SIM-PSW-201", "contactor welded"),
                         WELDED_LOG, "PowerContactor.Problem"),
    "ground-fault": (Fault("GroundFailure", "CX002", "RCD tripped, not re-armed"), GROUND_LOG,
                     "RCD.Tripped"),
}
"""Safety faults of :func:`safety_fault`: 2.0.1 OverCurrentProtection.Tripped,
PowerContactor.Problem, RCD.Tripped."""


def safety_fault(
    kind: str = "overcurrent", *, name: str | None = None, inoperative_status: str = "Faulted"
) -> Scenario:
    """Safety fault that never heals remotely; ChangeAvailability Inoperative is Accepted and
    the connector keeps reporting ``inoperative_status`` (``Faulted`` or ``Unavailable``)."""
    fault, text, component = SAFETY_FAULTS[kind]
    return Scenario(
        name or f"safety-{kind}",
        f"{fault.error_code} {fault.vendor_code} (2.0.1 {component}), never healed remotely; "
        f"Inoperative accepted, connector stays {inoperative_status}",
        fault=fault,
        inoperative_status=inoperative_status,
        log_text=text,
    )


def _internal(name: str, description: str, **extra: Any) -> Scenario:
    """InternalError SIM-INT-101 healed by a soft (or hard) reset, plus ``extra``."""
    return Scenario(name, description, fault=INTERNAL, healed_by=RESETS, log_text=INTERNAL_LOG,
                    **extra)


_REGISTRY = [
    Scenario("fixed-by-unlock",
             "ConnectorLockFailure CX001 on connector 1, cleared by UnlockConnector",
             fault=LOCK, healed_by=frozenset({"unlock"}), log_text=LOCK_LOG),
    _internal("fixed-by-soft-reset",
              "InternalError SIM-INT-101; unlock does not help, a soft/OnIdle reset fixes it"),
    Scenario("fixed-by-hard-reset",
             "InternalError SIM-INT-102 (2.0.1 Controller.Problem); survives a soft reset, "
             "fixed by a hard/Immediate reset",
             fault=INTERNAL_HARD, healed_by=frozenset({"hard_reset"}), log_text=INTERNAL_LOG),
    Scenario("never-fixed",
             "ConnectorLockFailure CX001 that survives unlock, availability cycle and resets",
             fault=LOCK, log_text=LOCK_LOG),
    safety_fault("overcurrent", name="safety-fault"),
    safety_fault("welded-contactor"),
    safety_fault("ground-fault"),
    Scenario("clears-by-itself",
             "HighTemperature CX003 that clears on its own after clears_after (3 s)",
             fault=TEMPERATURE, clears_after=3.0, log_text=TEMPERATURE_LOG),
    Scenario("flapping",
             "InternalError SIM-INT-103 fixed by a soft reset, back returns_after (2 s) later",
             fault=FLAPPING, healed_by=RESETS, returns_after=2.0, log_text=INTERNAL_LOG),
    Scenario("goes-offline",
             "drops its connection offline_after (1 s) after boot and stays away "
             "(offline_for: back after N s; offline_mode silent: hangs)",
             offline_after=1.0, log_text=OFFLINE_LOG),
    Scenario("boot-loop",
             "reboots (BootNotification reason Watchdog) reboot_every (2 s), reboot_times "
             "times or forever",
             reboot_every=2.0, log_text=BOOT_LOOP_LOG),
    _internal("log-upload-http",
              "InternalError SIM-INT-101 (soft reset fixes); logs uploaded by HTTP PUT only",
              upload_protocol="http"),
    _internal("log-upload-ftp",
              "InternalError SIM-INT-101 (soft reset fixes); logs uploaded by FTP STOR only",
              upload_protocol="ftp"),
    _internal("upload-fails",
              "InternalError SIM-INT-101 (soft reset fixes); every log upload fails",
              upload="fail"),
    _internal("final-log-status-never-sent",
              "InternalError SIM-INT-101 (soft reset fixes); log uploaded, final status never "
              "sent (upload=hang: nothing uploaded either)",
              skip_final_log_status=True),
    _internal("reset-rejected",
              "InternalError SIM-INT-101 a reset would fix, but Reset is answered Rejected",
              modes={"Reset": "reject"}),
    Scenario("command-times-out",
             "ConnectorLockFailure CX001; Reset and UnlockConnector never answered (modes)",
             fault=LOCK, healed_by=frozenset({"unlock"}) | RESETS, log_text=LOCK_LOG,
             modes={"Reset": "timeout", "UnlockConnector": "timeout"}),
    Scenario("notify-before-result",
             "ConnectorLockFailure CX001 fixed by unlock; follow-up notifications (statuses, "
             "log status) sent before the CALLRESULT",
             fault=LOCK, healed_by=frozenset({"unlock"}), log_text=LOCK_LOG,
             notify_before_result=True),
]

SCENARIOS: dict[str, Scenario] = {sc.name: sc for sc in _REGISTRY}
"""Named scenarios; add your own (``SCENARIOS["mine"] = Scenario("mine", ...)``)."""


def get_scenario(name: str) -> Scenario:
    """Registered scenario ``name`` (ScenarioError listing the names if unknown)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read scenarios from a JSON file (one object, a list, or ``{name: fields}``) and register
    them in :data:`SCENARIOS`; return them."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, Mapping) and "name" not in data:
        items = [{"name": name, **fields} for name, fields in data.items()]
    elif isinstance(data, list):
        items = data
    else:
        items = [data]
    loaded = [Scenario.from_dict(item) for item in items]
    for sc in loaded:
        SCENARIOS[sc.name] = sc
    return loaded
