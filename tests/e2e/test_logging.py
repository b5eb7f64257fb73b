"""Structured logs: the charger id and message id are bound on every line of a session,
including lines that the ocpp and websockets libraries log through the stdlib."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from csms.logs import configure_logging
from csms.settings import LoggingSettings
from tests.conftest import MakeCentral
from tests.e2e.rawclient import BOOT_16, call, open_raw


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="debug", frames=True), stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_charger_and_message_id_on_every_session_line(
    make_central: MakeCentral, json_logs: io.StringIO
) -> None:
    central = await make_central(logging=LoggingSettings(frames=True))
    ws = await open_raw(central.ocpp_url, "LOG-1")
    try:
        await call(ws, "BootNotification", BOOT_16, unique_id="boot-1")
        await call(ws, "Heartbeat", {"bad": 1}, unique_id="bad-1")
        logging.getLogger("ocpp").warning("library line")  # outside a session: no charger id
    finally:
        await ws.close()
    lines = _lines(json_logs.getvalue())
    refused = [line for line in lines if line.get("event") == "call_refused"]
    assert refused and refused[0]["charger_id"] == "LOG-1"
    assert refused[0]["message_id"] == "bad-1"
    assert refused[0]["code"] == "FormatViolation"
    frames = [line for line in lines if line.get("event") == "frame_out"]
    assert {line["message_id"] for line in frames if "message_id" in line} >= {"boot-1"}
    assert all(line["charger_id"] == "LOG-1" for line in frames)
    library = [line for line in lines if line.get("event") == "library line"]
    assert library and library[0]["logger"] == "ocpp" and library[0]["level"] == "warning"


def test_stdlib_lines_inherit_bound_context(json_logs: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(charger_id="CTX-1", message_id="m-9")
    try:
        logging.getLogger("websockets.server").warning("handshake trouble")
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = [x for x in _lines(json_logs.getvalue()) if x["event"] == "handshake trouble"]
    assert line["charger_id"] == "CTX-1" and line["message_id"] == "m-9"
    assert "timestamp" in line
