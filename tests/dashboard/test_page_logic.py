"""The dashboard's own logic, run in Chromium on the served modules: SLA countdown rules (the
same as ``diagnostics.tickets.sla_breaches``), the stream parser, and how a breached ticket
with a charger-supplied title is rendered."""

from __future__ import annotations

import re
from typing import Any

import pytest

from csms.app import CentralSystem
from tests.dashboard.browser import VIEWPORT, chromium, eventually

BREACH_RGB = "rgb(183, 28, 28)"
"""``--breach`` (#b71c1c) in dashboard.css."""

SLA_CASES_JS = """async () => {
  const { slaCountdown } = await import('/static/js/sla.js');
  const now = Date.parse('2026-01-01T12:00:00Z');
  const at = (seconds) => new Date(now + seconds * 1000).toISOString();
  const ticket = (status, sla) => ({ status, sla });
  const sla = (response, onSite, resolution) => ({
    policy: 'standard', response_by: at(response), on_site_by: onSite === null ? null : at(onSite),
    resolution_by: at(resolution), support: '24/7', contract: null,
  });
  return [
    slaCountdown(ticket('open', sla(900, 7200, 86400)), now),
    slaCountdown(ticket('open', sla(-65, 7200, 86400)), now),
    slaCountdown(ticket('acknowledged', sla(-65, 1800, 86400)), now),
    slaCountdown(ticket('acknowledged', sla(-65, -10, 86400)), now),
    slaCountdown(ticket('dispatched', sla(-65, -10, 7200)), now),
    slaCountdown(ticket('open', sla(-600, -300, -5)), now),
    slaCountdown(ticket('acknowledged', sla(-65, null, 3 * 86400 + 7200)), now),
    slaCountdown(ticket('resolved', sla(-65, -10, -5)), now),
    slaCountdown(ticket('open', null), now),
  ].map(({ text, breached }) => [text, breached]);
}"""

PARSER_JS = """async () => {
  const { EventParser } = await import('/static/js/stream.js');
  const events = [];
  const parser = new EventParser((name, data) => events.push([name, data]));
  for (const chunk of ['event: station.status\\r', '\\ndata: {"station_id"', ':"A"}\\r\\n\\r\\n',
                       ': heartbeat\\n\\n', 'event: x\\ndata: 1\\ndata: 2\\n', '\\n',
                       'data: plain\\n\\nevent: overflow\\ndata: {"dropped":3}\\n\\n']) {
    parser.push(chunk);
  }
  return events;
}"""

RENDER_JS = """async () => {
  const { renderTickets } = await import('/static/js/views.js');
  const now = Date.now();
  const at = (seconds) => new Date(now + seconds * 1000).toISOString();
  renderTickets([{
    ticket_id: 'T-1', station_id: 'CS-<b>1</b>', connector: 1, fault_class: 'ground_failure',
    title: '<script>window.__xss = 1</script>Ground fault', status: 'open', priority: 'P1',
    opened_at: at(-3600), updated_at: at(-3600),
    sla: { policy: 'standard', response_by: at(-90), on_site_by: at(3600),
           resolution_by: at(7200), support: '24/7', contract: null },
    breaches: ['response'],
  }]);
  const row = document.querySelector('#tickets-body tr');
  const sla = row.querySelector('.sla');
  return {
    breachedRow: row.classList.contains('breached'),
    slaText: sla.textContent,
    slaColour: getComputedStyle(sla).color,
    title: row.cells[2].textContent,
    station: row.cells[1].textContent,
    elements: row.querySelectorAll('script, b').length,
    injected: window.__xss ?? null,
  };
}"""


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_page_logic_in_chromium(api_central: CentralSystem, viewer_token: str) -> None:
    base = f"http://127.0.0.1:{api_central.http.port}"
    async with chromium() as browser:
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/#token={viewer_token}")
        await eventually(page, lambda s: s["connection"] == "live", what="the live dashboard")

        cases: list[list[Any]] = await page.evaluate(SLA_CASES_JS)
        assert cases == [
            ["response in 15m 00s", False],
            ["response overdue 1m 05s", True],
            ["on site in 30m 00s", False],  # acknowledged: the response deadline is met
            ["on site overdue 10s", True],
            ["resolution in 2h 00m 00s", False],  # dispatched: only resolution is left
            ["response, on site, resolution overdue 10m 00s", True],
            ["resolution in 3d 02h 00m", False],
            ["\u2013", False],  # resolved: no deadline applies
            ["no SLA", False],
        ]

        events = await page.evaluate(PARSER_JS)
        assert events == [
            ["station.status", {"station_id": "A"}],
            ["x", "1\n2"],
            ["message", "plain"],
            ["overflow", {"dropped": 3}],
        ]

        shown = await page.evaluate(RENDER_JS)
        assert shown["breachedRow"] is True
        assert re.fullmatch(r"response overdue 1m \d\ds", shown["slaText"]), shown
        assert shown["slaColour"] == BREACH_RGB
        assert shown["title"] == "<script>window.__xss = 1</script>Ground fault"
        assert shown["station"] == "CS-<b>1</b>"
        assert shown["elements"] == 0
        assert shown["injected"] is None
        assert not errors
