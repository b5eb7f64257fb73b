"""The dashboard at ``/`` in real headless Chromium against the real central system: simulated
chargers (one healthy 2.0.1 charger with a hostile id, one 1.6 charger, one never-fixed 1.6
charger), the real API and live stream; changes appear without reloading, and the screenshot
shows them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageStat
from playwright.async_api import Browser, ConsoleMessage, FloatRect, Page

from csms.app import CentralSystem
from simulators import Station16, Station201
from simulators.base import StationBase
from tests.api.conftest import auth
from tests.dashboard.browser import (
    NO_VALUE,
    VIEWPORT,
    Snapshot,
    chromium,
    eventually,
    snapshot,
)

#: A charger-supplied id that is HTML: it must show as text, never as markup.
HOSTILE_ID = "DASH-<img src=x onerror=window.__xss=1>"
PLAIN_ID = "DASH-B"
NEVER_FIXED_ID = "DASH-NEVER"
FAULTED_RGB = (198, 40, 40)
"""``--faulted`` (#c62828) in dashboard.css: the faulted state badge."""
LADDER_STEPS = {"status", "configuration", "log", "unlock", "soft reset", "hard reset", "ticket"}
"""The steps of the connector lock playbook, as the page words them."""
HEARTBEAT = 1.0
"""Seconds: well within the engine's silence timeout at time scale 0.004 (3.6 s)."""
SLA_TEXT = re.compile(r"^(response|on site|resolution) in (\d+h )?(\d+m )?\d+s$")


def station(snap: Snapshot, station_id: str) -> dict[str, object]:
    row: dict[str, object] = snap["stations"][station_id]
    return row


async def open_dashboard(browser: Browser, base: str, fragment: str = "") -> tuple[Page, list[str]]:
    """A fresh browser context on the dashboard; the list collects page errors and console
    errors (CSP violations included)."""
    context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", console)
    await page.goto(f"{base}/{fragment}")
    return page, problems


async def test_live_dashboard_in_chromium(
    api_central: CentralSystem, viewer_token: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{api_central.http.port}"
    url = api_central.ocpp_url
    stations: list[StationBase] = [
        Station201(HOSTILE_ID, url, vendor="<b>Evil</b> & Co", heartbeat_interval=HEARTBEAT),
        Station16(PLAIN_ID, url, heartbeat_interval=HEARTBEAT),
    ]
    try:
        for charger in stations:
            await charger.start()
        async with chromium() as browser:
            page, problems = await open_dashboard(browser, base, f"#token={viewer_token}")

            # The token moved from the URL fragment to local storage.
            assert "token" not in page.url
            stored = await page.evaluate("localStorage.getItem('csms.dashboard.token')")
            assert stored == viewer_token

            shown = await eventually(
                page, lambda s: s["tiles"]["online"] == "2" and len(s["stations"]) == 2,
                what="two online stations")
            assert shown["tiles"]["offline"] == "0"
            assert shown["tiles"]["faulted"] == "0"
            assert [shown["tiles"][p] for p in ("p1", "p2", "p3", "p4")] == ["0"] * 4
            assert station(shown, HOSTILE_ID)["badge"] == "available"
            assert station(shown, PLAIN_ID)["badge"] == "available"
            cells = station(shown, HOSTILE_ID)["cells"]
            assert isinstance(cells, list)
            assert cells[0] == HOSTILE_ID  # the id as text, not markup
            assert cells[2] == "OCPP 2.0.1"
            await eventually(page, lambda s: s["connection"] == "live", what="a live stream")

            await page.evaluate("window.__marker = 1")

            # A charger whose fault survives every remote step: it appears, faults, the
            # ladder runs step by step, and it ends in a ticket, all without a reload.
            never = Station16(NEVER_FIXED_ID, url, scenario="never-fixed",
                              heartbeat_interval=HEARTBEAT)
            stations.append(never)
            await never.start()
            shown = await eventually(
                page, lambda s: station(s, NEVER_FIXED_ID)["badge"] == "faulted",
                what="the new charger faulted")
            assert shown["tiles"]["online"] == "3"
            shown = await eventually(
                page, lambda s: any(r["station"] == NEVER_FIXED_ID and r["step"] != NO_VALUE
                                    for r in s["runs"]),
                what="a running diagnostic step")
            run = next(r for r in shown["runs"] if r["station"] == NEVER_FIXED_ID)
            assert run["fault"] == "connector lock failure", run
            assert run["step"] in LADDER_STEPS, run
            assert run["phase"] in ("command", "verify", "log wait"), run

            shown = await eventually(
                page, lambda s: any(t["station"] == NEVER_FIXED_ID for t in s["tickets"]),
                timeout=30.0, what="the ticket")
            ticket = next(t for t in shown["tickets"] if t["station"] == NEVER_FIXED_ID)
            assert ticket["status"] == "open"
            assert SLA_TEXT.match(ticket["sla"]), ticket
            assert not ticket["breached"]
            priority = ticket["priority"]
            await eventually(page, lambda s: s["tiles"][priority.lower()] == "1",
                             what=f"one {priority} ticket")
            # The countdown ticks every second.
            await eventually(
                page, lambda s: next(t["sla"] for t in s["tickets"]
                                     if t["station"] == NEVER_FIXED_ID) != ticket["sla"],
                timeout=3.0, what="the SLA countdown moving")
            # Share of faults fixed remotely: none of one decided run.
            fleet = (await client.get("/api/v1/fleet", headers=auth(viewer_token))).json()
            await eventually(page, lambda s: s["tiles"]["remote"] == (
                f"{round(fleet['remote_fix_share'] * 100)}%"), what="the remote fix share")

            # A charger drops off the network: its row and the tiles follow.
            await stations[1].go_offline()
            shown = await eventually(
                page, lambda s: station(s, PLAIN_ID)["badge"] == "offline"
                and s["tiles"]["offline"] == "1", what="the charger offline")
            # A charger reports a fault: its badge turns red.
            await stations[0].inject_fault(1, "ConnectorLockFailure", "CX001")
            shown = await eventually(
                page, lambda s: station(s, HOSTILE_ID)["badge"] == "faulted"
                and s["tiles"]["faulted"] == "2", what="the hostile-id charger faulted")

            assert shown["marker"] == 1, "the page was reloaded"
            assert shown["injected"] is None
            assert shown["tablesHtmlElements"] == 0

            badge = page.locator("#stations-body tr[data-state='faulted'] .badge").first
            colour = await badge.evaluate("(node) => getComputedStyle(node).backgroundColor")
            assert colour == "rgb({}, {}, {})".format(*FAULTED_RGB)
            box = await badge.bounding_box()
            assert box is not None
            path = tmp_path / "dashboard.png"
            await page.screenshot(path=str(path))
            check_screenshot(path, box)
            assert (await snapshot(page))["marker"] == 1
            assert not problems, problems
    finally:
        for charger in stations:
            await charger.stop()


def check_screenshot(path: Path, badge: FloatRect) -> None:
    """A real PNG of the viewport, not blank, with the faulted badge colour where the badge
    is."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        rgb = image.convert("RGB")
    colours = rgb.getcolors(maxcolors=1 << 20)
    assert colours is not None
    assert len(colours) > 100, f"only {len(colours)} colours"
    most = max(count for count, _ in colours)
    assert most < 0.8 * rgb.width * rgb.height, "one colour covers most of the image"
    assert max(ImageStat.Stat(rgb).stddev) > 20
    red = sum(count for count, colour in colours if colour == FAULTED_RGB)
    assert red >= 100, f"{red} pixels of the faulted colour"
    area = rgb.crop((int(badge["x"]), int(badge["y"]), int(badge["x"] + badge["width"]),
                     int(badge["y"] + badge["height"])))
    inside = sum(count for count, colour in area.getcolors(maxcolors=1 << 16) or ()
                 if colour == FAULTED_RGB)
    assert inside >= 0.3 * area.width * area.height, "the badge is not red in the image"


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_token_prompt(
    api_central: CentralSystem, viewer_token: str
) -> None:
    base = f"http://127.0.0.1:{api_central.http.port}"
    async with chromium() as browser:
        page, problems = await open_dashboard(browser, base)
        shown = await eventually(page, lambda s: s["loginVisible"], what="the token form")
        await page.fill("#token-input", "csms_unknown.secret")
        await page.click("#login-form button[type=submit]")
        shown = await eventually(page, lambda s: s["loginVisible"] and s["loginError"],
                                 what="the token refused")
        assert "refused" in shown["loginError"]
        assert await page.evaluate("localStorage.getItem('csms.dashboard.token')") is None
        await page.fill("#token-input", viewer_token)
        await page.click("#login-form button[type=submit]")
        shown = await eventually(
            page, lambda s: not s["loginVisible"] and s["tiles"]["online"] == "0",
            what="the dashboard")
        assert shown["stations"] == {}
        await page.reload()  # the token is remembered
        await eventually(page, lambda s: not s["loginVisible"] and s["connection"] == "live",
                         what="the dashboard after a reload")
        # Console errors from the refused token (401 responses) are expected here.
        assert not [p for p in problems if p.startswith("page error")], problems
