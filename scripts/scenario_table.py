"""Run every simulator fault scenario on both OCPP versions against the real server and print
the outcome table: fixed remotely / ticketed / left alone, or WRONG when the outcome, the
commands sent or the ticket differ from what the scenario expects.

Each row starts its own central system (SQLite in a temporary folder, loopback ports, the
diagnostics clock shrunk by ``--time-scale``) and one simulated station, waits for the
expected end, and checks the commands the station received and the tickets in the database.

    python scripts/scenario_table.py [--time-scale 0.004] [--only NAME ...] [--protocol 1.6]

Exits 1 if any row is wrong. ``tests/e2e/test_scenario_table.py`` runs the same rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from csms.app import CentralSystem  # noqa: E402
from csms.logs import configure_logging  # noqa: E402
from csms.settings import (  # noqa: E402
    DatabaseSettings,
    DiagnosticsSettings,
    HttpSettings,
    LoggingSettings,
    OcppSettings,
    Settings,
    UploadSettings,
)
from simulators import Station16, Station201  # noqa: E402
from simulators.base import StationBase  # noqa: E402
from simulators.scenarios import SCENARIOS  # noqa: E402

FIXED, TICKETED, LEFT_ALONE = "fixed remotely", "ticketed", "left alone"
RESETS = {"soft": {"1.6": "Reset:Soft", "2.0.1": "Reset:OnIdle"},
          "hard": {"1.6": "Reset:Hard", "2.0.1": "Reset:Immediate"}}


@dataclass(frozen=True)
class Expectation:
    """What a scenario must end in.

    ``remote`` is the exact sequence of remote actions the charger must receive (``unlock``,
    ``soft``, ``hard``, ``inoperative``); ``log`` whether a diagnostics log is requested;
    ``healed`` whether the simulated fault is gone at the end; ``priority`` the ticket's
    priority when one is expected; ``findings`` whether the uploaded log must yield findings.
    """

    outcome: str
    remote: tuple[str, ...] = ()
    log: bool = True
    healed: bool = False
    priority: str | None = None
    upload_protocol: Literal["ftp", "http"] = "ftp"
    findings: bool = False
    settle: float = 1.0
    """Seconds to keep watching after the outcome (nothing else may happen)."""
    overrides: tuple[tuple[str, object], ...] = ()
    """Scenario fields changed for this row (so that it fits the shrunk clock)."""


EXPECTED: dict[str, Expectation] = {
    "fixed-by-unlock": Expectation(FIXED, ("unlock",), healed=True),
    "fixed-by-soft-reset": Expectation(FIXED, ("soft",), healed=True),
    "fixed-by-hard-reset": Expectation(FIXED, ("soft", "hard"), healed=True),
    "never-fixed": Expectation(TICKETED, ("unlock", "soft", "hard")),
    "safety-fault": Expectation(TICKETED, ("inoperative",), priority="P1"),
    "safety-welded-contactor": Expectation(TICKETED, ("inoperative",), priority="P1"),
    # Clears within the grace period (1.2 s at the default scale): nothing is done.
    "clears-by-itself": Expectation(LEFT_ALONE, (), log=False, healed=True, settle=2.0,
                                    overrides=(("clears_after", 0.4),)),
    # Back within the flap window after a verified fix: ticket, no reset loop.
    "flapping": Expectation(TICKETED, ("soft",)),
    # An offline charger cannot be reached: ticket after its own grace period.
    "goes-offline": Expectation(TICKETED, (), log=False),
    "boot-loop": Expectation(TICKETED, (), overrides=(("reboot_every", 0.4),)),
    "log-upload-http": Expectation(FIXED, ("soft",), healed=True, upload_protocol="http",
                                   findings=True),
    "log-upload-ftp": Expectation(FIXED, ("soft",), healed=True, findings=True),
    "upload-fails": Expectation(FIXED, ("soft",), healed=True),
    "final-log-status-never-sent": Expectation(FIXED, ("soft",), healed=True),
    "reset-rejected": Expectation(TICKETED, ("soft", "hard")),
    # Unanswered commands: the ladder gives up on an unresponsive charger and tickets it.
    "command-times-out": Expectation(TICKETED, ("unlock", "soft")),
    "notify-before-result": Expectation(FIXED, ("unlock",), healed=True),
}


@dataclass
class Row:
    scenario: str
    version: str
    outcome: str = "?"
    seconds: float = 0.0
    commands: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    findings: int = 0
    healed: bool = False

    @property
    def right(self) -> bool:
        return not self.problems


def _names(station: StationBase) -> list[str]:
    names = []
    for command in station.received:
        if command.action == "Reset":
            names.append(f"Reset:{command.payload['type']}")
        elif command.action == "ChangeAvailability":
            state = command.payload.get("type") or command.payload.get("operationalStatus")
            names.append(f"ChangeAvailability:{state}")
        else:
            names.append(command.action)
    return names


REMOTE = {"UnlockConnector": "unlock", "Reset:Soft": "soft", "Reset:OnIdle": "soft",
          "Reset:Hard": "hard", "Reset:Immediate": "hard",
          "ChangeAvailability:Inoperative": "inoperative"}
LOGS = {"GetDiagnostics", "GetLog"}


async def run_row(scenario: str, version: str, time_scale: float, timeout: float) -> Row:
    """One scenario on one version against a fresh central system."""
    expected = EXPECTED[scenario]
    row = Row(scenario, version)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            node_id="table",
            ocpp=OcppSettings(host="127.0.0.1", port=0, call_timeout=2.0),
            http=HttpSettings(host="127.0.0.1", port=0),
            uploads=UploadSettings(ftp_host="127.0.0.1", ftp_port=0),
            diagnostics=DiagnosticsSettings(time_scale=time_scale,
                                            upload_protocol=expected.upload_protocol),
            database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp}/csms.db"),
        )
        station_type: type[StationBase] = Station16 if version == "1.6" else Station201
        station_id = f"{scenario}-{version}"
        async with CentralSystem(settings) as central:
            runner = central.diagnostics
            assert runner is not None
            started = time.monotonic()
            script = SCENARIOS[scenario].with_(**dict(expected.overrides))
            station = station_type(station_id, central.ocpp_url, scenario=script)
            await station.start()
            try:
                deadline = started + timeout
                while time.monotonic() < deadline:
                    tickets = await central.store.tickets(station_id)
                    fixed = [r for r in runner.finished_runs
                             if r.station_id == station_id and r.outcome == "fixed"]
                    if tickets:
                        row.outcome = TICKETED
                        break
                    if fixed and expected.outcome == FIXED:
                        row.outcome = FIXED
                        break
                    if expected.outcome == LEFT_ALONE and station.healed_by is not None:
                        row.outcome = LEFT_ALONE
                        break
                    await asyncio.sleep(0.05)
                row.seconds = time.monotonic() - started
                await asyncio.sleep(expected.settle)
                row.commands = _names(station)
                tickets = await central.store.tickets(station_id)
                row.findings = sum(len(r.findings) for r in runner.finished_runs
                                   if r.station_id == station_id)
                row.healed = station.healed_by is not None and not station.faults
            finally:
                await station.stop()
    _check(row, expected, tickets)
    return row


def _check(row: Row, expected: Expectation, tickets: Sequence[object]) -> None:
    if row.outcome != expected.outcome:
        row.problems.append(f"expected {expected.outcome}")
    if expected.outcome == TICKETED and len(tickets) != 1:
        row.problems.append(f"{len(tickets)} tickets")
    if expected.outcome != TICKETED and tickets:
        row.problems.append("unexpected ticket")
    remote = tuple(REMOTE[c] for c in row.commands if c in REMOTE)
    if remote != expected.remote:
        row.problems.append(f"remote actions {list(remote)}, expected {list(expected.remote)}")
    if expected.log != any(c in LOGS for c in row.commands):
        row.problems.append("log requested" if not expected.log else "no log requested")
    if expected.healed != row.healed:
        row.problems.append("still faulted" if expected.healed else "fault healed")
    if expected.priority and tickets:
        priority = getattr(tickets[0], "priority", None)
        if priority != expected.priority:
            row.problems.append(f"priority {priority}")
    if expected.findings and not row.findings:
        row.problems.append("no log findings")


def print_table(rows: list[Row]) -> None:
    print(f"{'scenario':<28} {'OCPP':<6} {'outcome':<16} {'seconds':>7}  commands sent")
    for row in rows:
        outcome = row.outcome if row.right else f"WRONG ({'; '.join(row.problems)})"
        commands = ", ".join(c for c in row.commands if c != "TriggerMessage") or "-"
        print(f"{row.scenario:<28} {row.version:<6} {outcome:<16} {row.seconds:7.1f}  {commands}")
    wrong = sum(not r.right for r in rows)
    print(f"\n{len(rows) - wrong} right, {wrong} wrong")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=0.004)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--only", nargs="*", default=sorted(EXPECTED))
    parser.add_argument("--protocol", choices=["1.6", "2.0.1"], nargs="*",
                        default=["1.6", "2.0.1"])
    args = parser.parse_args()
    configure_logging(LoggingSettings(level="error"))
    rows = []
    for scenario in args.only:
        for version in args.protocol:
            rows.append(await run_row(scenario, version, args.time_scale, args.timeout))
    print_table(rows)
    return 0 if all(r.right for r in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
