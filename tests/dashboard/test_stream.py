"""``GET /api/v1/stream`` over real HTTP: bus notices arrive as Server-Sent Events, with the
viewer token, topic filter, heartbeats, bounded queues and clean unsubscription."""

from __future__ import annotations

import httpx
import pytest

from csms.api.stream import EXTRAS_KEY, QUEUE_SIZE, StreamClient, StreamHub
from csms.app import CentralSystem
from csms.bus import Notice, Topic
from simulators import Station16
from tests.api.conftest import auth
from tests.dashboard.sse import SseReader
from tests.e2e.helpers import until

STREAM = "/api/v1/stream"
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
"""For the stream's own mechanics, which do not touch the database."""


def hub_of(central: CentralSystem) -> StreamHub:
    hub = central.api.extras[EXTRAS_KEY]
    assert isinstance(hub, StreamHub)
    return hub


async def test_refused_without_a_valid_token(client: httpx.AsyncClient) -> None:
    missing = await client.get(STREAM)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await client.get(STREAM, headers=auth("csms_nope.not-a-secret"))
    assert wrong.status_code == 401


async def test_a_bus_notice_arrives_as_an_event(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    notice = Notice(Topic.STATION, "status", "CS-<b>1</b>",
                    {"evse_id": 1, "connector_id": 1, "status": "Faulted",
                     "error_code": "GroundFailure", "info": "line\nbreak"})
    async with client.stream("GET", STREAM, headers=auth(viewer_token)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"].startswith("no-cache")
        sse = SseReader(response.aiter_lines())
        ready = await sse.event()
        assert ready.name == "ready"
        assert set(ready.data["topics"]) == {t.value for t in Topic}
        api_central.bus.publish(notice)
        event = await sse.event()
    assert event.name == "station.status"
    assert event.data == notice.to_dict()


async def test_a_charger_connecting_is_streamed(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    async with client.stream("GET", STREAM, headers=auth(viewer_token)) as response:
        sse = SseReader(response.aiter_lines())
        assert (await sse.event()).name == "ready"
        async with Station16("SSE-LIVE-1", api_central.ocpp_url):
            connected = await sse.until("station.connected")
            status = await sse.until("station.status")
    assert connected.data["station_id"] == "SSE-LIVE-1"
    assert connected.data["topic"] == "station"
    assert status.data["station_id"] == "SSE-LIVE-1"
    assert status.data["data"]["status"] == "Available"


@SQLITE_ONLY
async def test_topics_filter(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    bad = await client.get(STREAM, params={"topics": "station,bogus"},
                           headers=auth(viewer_token))
    assert bad.status_code == 422
    async with client.stream("GET", STREAM, params={"topics": "ticket,run"},
                             headers=auth(viewer_token)) as response:
        sse = SseReader(response.aiter_lines())
        ready = await sse.event()
        assert ready.data["topics"] == ["run", "ticket"]
        api_central.bus.emit(Topic.STATION, "connected", "CS-1", {})
        api_central.bus.emit(Topic.FAULT, "reported", "CS-1", {})
        api_central.bus.emit(Topic.TICKET, "opened", "CS-1", {"ticket_id": "T-1"})
        event = await sse.event()
    assert event.name == "ticket.opened"
    assert event.data["data"] == {"ticket_id": "T-1"}


@SQLITE_ONLY
async def test_heartbeat_comments(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    hub_of(api_central).heartbeat = 0.1
    async with client.stream("GET", STREAM, headers=auth(viewer_token)) as response:
        sse = SseReader(response.aiter_lines())
        assert (await sse.event()).name == "ready"
        assert await sse.next(comment=True) == "heartbeat"
        assert await sse.next(comment=True) == "heartbeat"


@SQLITE_ONLY
async def test_a_slow_client_loses_its_oldest_events_and_gets_an_overflow_hint(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    extra = 25
    async with client.stream("GET", STREAM, headers=auth(viewer_token)) as response:
        sse = SseReader(response.aiter_lines())
        assert (await sse.event()).name == "ready"
        # Published in one go: the stream cannot send anything in between, so the client's
        # queue fills up; publishing never waits for it.
        for n in range(QUEUE_SIZE + extra):
            api_central.bus.emit(Topic.RUN, "step", "CS-1", {"n": n})
        overflow = await sse.event()
        first = await sse.event()
        numbers = [first.data["data"]["n"]]
        while numbers[-1] < QUEUE_SIZE + extra - 1:
            numbers.append((await sse.event()).data["data"]["n"])
        api_central.bus.emit(Topic.RUN, "step", "CS-1", {"n": -1})
        after = await sse.event()
    assert overflow.name == "overflow"
    assert overflow.data == {"dropped": extra}
    assert numbers == list(range(extra, QUEUE_SIZE + extra))
    assert after.name == "run.step"
    assert after.data["data"] == {"n": -1}


@SQLITE_ONLY
async def test_closing_the_connection_unsubscribes(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    hub = hub_of(api_central)
    before = len(api_central.bus)
    async with client.stream("GET", STREAM, headers=auth(viewer_token)) as response:
        sse = SseReader(response.aiter_lines())
        assert (await sse.event()).name == "ready"
        assert len(api_central.bus) == before + 1
        assert len(hub.clients) == 1
    await until(lambda: len(api_central.bus) == before and not hub.clients)
    api_central.bus.emit(Topic.STATION, "connected", "CS-1", {})  # nobody left to feed


@SQLITE_ONLY
async def test_stopping_the_hub_ends_open_streams(
    api_central: CentralSystem, client: httpx.AsyncClient, viewer_token: str
) -> None:
    hub = hub_of(api_central)
    async with client.stream("GET", STREAM, headers=auth(viewer_token)) as response:
        sse = SseReader(response.aiter_lines())
        assert (await sse.event()).name == "ready"
        api_central.bus.emit(Topic.TICKET, "updated", "CS-1", {})
        await hub.stop()
        assert (await sse.event()).name == "ticket.updated"
        with pytest.raises(AssertionError, match="the stream ended"):
            await sse.event()
    assert not hub.clients
    refused = await client.get(STREAM, headers=auth(viewer_token))
    assert refused.status_code == 503


def test_client_queue_is_bounded_and_the_end_marker_comes_last() -> None:
    client = StreamClient(frozenset({Topic.RUN}), size=3)
    for n in range(5):
        client.offer(Notice(Topic.RUN, "step", "CS-1", {"n": n}))
    client.offer(Notice(Topic.STATION, "status", "CS-1", {}))  # not asked for
    assert client.dropped == 2
    client.close()
    client.offer(Notice(Topic.RUN, "step", "CS-1", {"n": 99}))  # after the end: ignored
    queued = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    assert [None if item is None else item.data["n"] for item in queued] == [3, 4, None]
    assert client.dropped == 3
