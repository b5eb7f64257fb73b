"""Every simulator fault scenario on both OCPP versions through the real server (the rows of
``scripts/scenario_table.py``): the outcome, the commands the charger received and the ticket
must all be what the scenario expects."""

from __future__ import annotations

import pytest

from scripts.scenario_table import EXPECTED, run_row

TIME_SCALE = 0.004
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
async def test_scenario_outcome(scenario: str, version: str) -> None:
    row = await run_row(scenario, version, TIME_SCALE, timeout=30.0)
    assert row.right, (row.outcome, row.problems, row.commands)
