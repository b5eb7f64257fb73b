"""The topic scheme, the buffer and the back-off, without a broker."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.bus import EventBus, Notice, Topic
from csms.mqtt import MqttPublisher, decode_level, encode_level, notice_topic
from csms.mqtt.backoff import backoff_delay
from csms.mqtt.outbox import Outbox, Outgoing
from csms.mqtt.topics import check_prefix, node_online_topic, station_online_topic
from csms.settings import MqttSettings, SettingsError

SAFE_LEVEL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%")


@pytest.mark.parametrize(("station_id", "level"), [
    ("CP-1", "CP-1"),
    ("site/bay 7", "site%2Fbay%207"),
    ("a+b#c", "a%2Bb%23c"),
    ("nul\x00", "nul%00"),
    ("Zürich", "Z%C3%BCrich"),
    ("100%", "100%25"),
    ("-", "%2D"),
    ("x\ud800", "x%ED%A0%80"),
])
def test_station_ids_become_one_safe_level(station_id: str, level: str) -> None:
    assert encode_level(station_id) == level
    assert decode_level(level) == station_id


@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_any_text_round_trips_through_one_level(value: str) -> None:
    """Even NUL and lone surrogates (ids come from URL paths) give one ASCII level."""
    level = encode_level(value)
    assert set(level) <= SAFE_LEVEL
    assert decode_level(level) == value


def test_documented_topics() -> None:
    def topic(topic: Topic, kind: str, station: str | None = "CP-1") -> str:
        return notice_topic("csms", Notice(topic, kind, station, {}))

    assert topic(Topic.STATION, "status") == "csms/station/CP-1/status"
    assert topic(Topic.FAULT, "reported") == "csms/fault/CP-1/reported"
    assert topic(Topic.RUN, "step") == "csms/run/CP-1/step"
    assert topic(Topic.COMMAND, "finished") == "csms/command/CP-1/finished"
    assert topic(Topic.TICKET, "opened") == "csms/ticket/CP-1/opened"
    assert topic(Topic.REPORT, "received") == "csms/report/CP-1/received"
    assert topic(Topic.LOG, "analysed") == "csms/log/CP-1/analysed"
    assert topic(Topic.REPORT, "received", None) == "csms/report/-/received"
    assert topic(Topic.FAULT, "reported", "a/b+") == "csms/fault/a%2Fb%2B/reported"
    assert notice_topic("site/a", Notice(Topic.RUN, "started", "X", {})) == \
        "site/a/run/X/started"
    assert station_online_topic("csms", "CP/1") == "csms/station/CP%2F1/online"
    assert node_online_topic("csms", "node-1") == "csms/node/node-1/online"


@pytest.mark.parametrize("prefix", ["", "/", "a/+", "#", "x\x00", "$SYS"])
def test_unusable_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(SettingsError):
        check_prefix(prefix)


def test_prefix_loses_surrounding_slashes() -> None:
    assert check_prefix("/site-a/csms/") == "site-a/csms"


def test_backoff_doubles_with_jitter_up_to_the_maximum() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (500, 30.0)]:
        for _ in range(50):
            delay = backoff_delay(failures, 0.5, 30.0, rng)
            assert ceiling / 2 <= delay <= ceiling
    delays = {backoff_delay(3, 0.5, 30.0, rng) for _ in range(20)}
    assert len(delays) > 1  # jittered
    with pytest.raises(ValueError):
        backoff_delay(0, 0.5, 30.0)


def test_outbox_drops_the_oldest_when_full() -> None:
    outbox = Outbox(3)
    messages = [Outgoing(f"t/{i}", b"x") for i in range(5)]
    for message in messages:
        outbox.append(message)
    assert list(outbox) == messages[2:] and outbox.dropped == 2
    assert outbox.head() is messages[2]
    assert outbox.acknowledge(messages[1]) is False  # already dropped: nothing removed
    assert outbox.acknowledge(messages[2]) is True and len(outbox) == 2


def test_publisher_buffers_without_a_connection_and_counts_drops() -> None:
    bus = EventBus()
    publisher = MqttPublisher(MqttSettings(enabled=True, buffer_size=4), bus, node_id="n-1")
    assert publisher.client_id == "csms-n-1"
    for index in range(5):
        bus.emit(Topic.RUN, "step", "CP-1", {"index": index})
    assert publisher.buffered == 4 and publisher.dropped == 1
    assert [m.topic for m in publisher.outbox] == ["csms/run/CP-1/step"] * 4
    head = publisher.outbox.head()
    assert head is not None and b'"index":1' in head.payload  # the oldest was dropped
    # A connection change also updates the retained online state.
    bus.emit(Topic.STATION, "connected", "CP/9", {})
    tail = list(publisher.outbox)[-2:]
    assert [(m.topic, m.payload, m.retain) for m in tail] == [
        ("csms/station/CP%2F9/connected", tail[0].payload, False),
        ("csms/station/CP%2F9/online", b"true", True),
    ]
    assert publisher.connected is False and publisher.published == 0


def test_unencodable_notice_is_counted_and_skipped() -> None:
    bus = EventBus()
    publisher = MqttPublisher(MqttSettings(enabled=True), bus, node_id="n")
    bus.emit(Topic.LOG, "analysed", "CP-1", {"bad": object()})
    bus.emit(Topic.LOG, "analysed", "CP-1", {"good": 1})
    assert publisher.unencodable == 1 and publisher.buffered == 1
