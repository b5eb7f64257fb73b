"""Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) and what the tests
read from the dashboard page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = ViewportSize(width=1280, height=800)

#: Everything the tests check, read from the DOM in one go.
SNAPSHOT_JS = """() => {
  const text = (node) => (node ? node.textContent.trim() : null);
  const tiles = {};
  for (const node of document.querySelectorAll('.tile-value')) {
    tiles[node.id.replace('tile-', '')] = text(node);
  }
  const stations = {};
  for (const row of document.querySelectorAll('#stations-body tr')) {
    stations[row.dataset.stationId] = {
      state: row.dataset.state,
      badge: text(row.querySelector('.badge')),
      cells: Array.from(row.cells, text),
    };
  }
  const runs = Array.from(document.querySelectorAll('#runs-body tr'), (row) => ({
    station: row.dataset.stationId,
    fault: text(row.cells[1]),
    phase: text(row.cells[2]),
    step: text(row.cells[3]),
    steps: Array.from(row.cells[4].querySelectorAll('.chip'), text),
  }));
  const tickets = Array.from(document.querySelectorAll('#tickets-body tr'), (row) => ({
    station: row.dataset.stationId,
    priority: text(row.cells[0]),
    title: text(row.cells[2]),
    status: text(row.cells[3]),
    sla: text(row.cells[4]),
    breached: row.classList.contains('breached'),
  }));
  return {
    tiles, stations, runs, tickets,
    connection: document.getElementById('connection').dataset.state,
    loginVisible: !document.getElementById('login').hidden,
    loginError: text(document.getElementById('login-error')),
    marker: window.__marker ?? null,
    injected: window.__xss ?? null,
    tablesHtmlElements: document.querySelectorAll('main tbody img, main tbody i').length,
  };
}"""

Snapshot = dict[str, Any]
NO_VALUE = "\u2013"
"""What the page shows for an empty value (an en dash)."""


def require_chromium() -> None:
    """Fail (never skip) without Debian's Chromium: CI installs it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless (no Playwright browser download)."""
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def snapshot(page: Page) -> Snapshot:
    """What the dashboard shows now."""
    result: Snapshot = await page.evaluate(SNAPSHOT_JS)
    return result


async def eventually(
    page: Page, check: Callable[[Snapshot], bool], timeout: float = 10.0, what: str = ""
) -> Snapshot:
    """Poll the page until ``check(snapshot)`` holds; fail with the last snapshot."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        shown = await snapshot(page)
        try:
            if check(shown):
                return shown
        except (KeyError, IndexError, TypeError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the page never showed {what or 'it'}: {shown}")
        await asyncio.sleep(0.1)
