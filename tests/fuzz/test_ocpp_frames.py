"""Property-based fuzzing of OCPP-J frame handling, 1.6 and 2.0.1, against a running server over
real websockets.

Each example sends one frame (random text or bytes, random JSON, or a schema-valid CALL of a
charger action, valid or mutated: see :mod:`tests.fuzz.frames`) on a booted connection, then a
Heartbeat as a sentinel, and reads everything up to the sentinel's answer. Properties:

- a CALL (``[2, MessageId, ...]`` with a readable MessageId) gets exactly one answer, a
  CALLRESULT or a CALLERROR with its MessageId (OCPP-J 1.6 §4.2, 2.0.1 Part 4 §4.2);
- an answer to a CALL never sent (``[3|4, MessageId, ...]``) gets nothing; any other frame at
  most one CALLERROR;
- no answer is an ``InternalError`` (a handler that failed) and every frame the server sends
  is a well-formed OCPP-J message;
- the connection stays open, and two bystander chargers (one per version) connected to the
  same server keep getting answers to Heartbeat.

The budget is bounded (``max_examples``; no deadline): a few hundred examples per version, a
few seconds each test. Hypothesis prints the seed of a failure (``--hypothesis-seed`` replays
it) and the shrunk frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from csms.app import CentralSystem
from csms.settings import LimitsSettings
from tests.conftest import MakeCentral
from tests.e2e.rawclient import BOOT_16, BOOT_201, open_raw
from tests.fuzz.frames import MAX_ID, Frame, mutated_frames, random_frames, regressions

VERSIONS = {"1.6": ("ocpp1.6", BOOT_16), "2.0.1": ("ocpp2.0.1", BOOT_201)}
READ_TIMEOUT = 5.0
EXAMPLES = {"random": 150, "mutated": 300}
"""Examples per test (each test runs on both databases, for both versions)."""


def expectation(frame: Frame) -> tuple[str, str | None]:
    """What the server owes a frame: ``("call", id)`` one answer with ``id``; ``("answer",
    id)`` nothing; ``("other", None)`` at most one CALLERROR."""
    data = frame.data
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "other", None
    if (
        isinstance(value, list) and len(value) >= 2 and type(value[0]) is int
        and isinstance(value[1], str) and 1 <= len(value[1]) <= MAX_ID
    ):
        if value[0] == 2:
            return "call", value[1]
        if value[0] in (3, 4) and len(value) >= 3:
            return "answer", value[1]
    return "other", None


def check_message(message: Any) -> None:
    """A well-formed OCPP-J answer from the server, not an InternalError."""
    assert isinstance(message, list) and message, message
    kind = message[0]
    assert kind in (3, 4), message
    assert isinstance(message[1], str) and message[1], message
    if kind == 3:
        assert len(message) == 3 and isinstance(message[2], dict), message
    else:
        assert len(message) == 5, message
        assert isinstance(message[2], str) and isinstance(message[3], str), message
        assert isinstance(message[4], dict), message
        assert message[2] != "InternalError", f"a handler failed: {message}"


class Harness:
    """The fuzzed connection and the bystanders, on the server's event loop."""

    def __init__(self, central: CentralSystem, version: str) -> None:
        self.central = central
        self.version = version
        self.ws: ClientConnection | None = None
        self.bystanders: list[ClientConnection] = []
        self.sent = 0
        self.reconnects = -1
        self.answers: Counter[str] = Counter()
        """What the fuzzed frames got: ``result``, an error code, or ``nothing``."""

    async def _connect(self, version: str, station_id: str) -> ClientConnection:
        protocol, boot = VERSIONS[version]
        ws = await open_raw(self.central.ocpp_url, station_id, [protocol])
        await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
        answer = await self._until(ws, "boot")
        assert answer[0] == 3, answer
        return ws

    async def start(self) -> None:
        self.bystanders = [await self._connect(version, f"BYSTANDER-{version}")
                           for version in VERSIONS]

    async def stop(self) -> None:
        for ws in [*self.bystanders, *([self.ws] if self.ws else [])]:
            await ws.close()

    async def _until(self, ws: ClientConnection, unique_id: str) -> list[Any]:
        """Read up to the answer with ``unique_id``; returns it."""
        for _ in range(100):
            message = json.loads(await asyncio.wait_for(ws.recv(), READ_TIMEOUT))
            if isinstance(message, list) and len(message) > 1 and message[0] in (3, 4) \
                    and message[1] == unique_id:
                return message
        raise AssertionError(f"no answer to {unique_id}")

    async def example(self, frame: Frame) -> None:
        """Send ``frame`` and check the properties (the frame is in the failure message)."""
        try:
            await self._example(frame)
        except AssertionError as exc:
            raise AssertionError(f"{frame.kind} frame {frame.data!r:.3000}: {exc}") from None

    async def _example(self, frame: Frame) -> None:
        if self.ws is None or self.ws.state is not State.OPEN:
            self.ws = await self._connect(self.version, f"FUZZ-{self.version}")
            self.reconnects += 1
        ws = self.ws
        self.sent += 1
        expected, expected_id = expectation(frame)
        sentinel = f"sentinel-{self.sent}"
        if sentinel == expected_id:
            sentinel += "+"
        await ws.send(frame.data)
        await ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
        received: list[Any] = []
        try:
            for _ in range(100):
                raw = await asyncio.wait_for(ws.recv(), READ_TIMEOUT)
                message = json.loads(raw)
                assert isinstance(message, list) and message, raw
                if message[0] == 2:
                    continue  # a CALL of the server's own (the engine asking something)
                check_message(message)
                if message[1] == sentinel:
                    break
                received.append(message)
            else:
                raise AssertionError("no answer to the sentinel")
        except TimeoutError:
            raise AssertionError(f"no answer within {READ_TIMEOUT} s; got {received}") from None
        except Exception as exc:
            if ws.state is not State.OPEN:
                raise AssertionError(
                    f"connection closed: {ws.close_code} {ws.close_reason!r}") from exc
            raise
        self.answers.update([("result" if m[0] == 3 else m[2]) for m in received] or ["nothing"])
        if expected == "call":
            assert [m[1] for m in received] == [expected_id], received
        elif expected == "answer":
            assert received == [], received
        else:
            assert len(received) <= 1 and all(m[0] == 4 for m in received), received
        for n, bystander in enumerate(self.bystanders):
            unique_id = f"alive-{self.sent}-{n}"
            await bystander.send(json.dumps([2, unique_id, "Heartbeat", {}]))
            answer = await self._until(bystander, unique_id)
            assert answer[0] == 3, answer


FUZZ_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    print_blob=True,
    verbosity=Verbosity.quiet,  # the failure message has the frame (no 40 kB reprs)
    # Shrinking replays failing examples, each up to READ_TIMEOUT when the server went quiet:
    # off unless asked for (CSMS_FUZZ_SHRINK=1); the failure message shows the whole frame.
    phases=[Phase.explicit, Phase.reuse, Phase.generate,
            *([Phase.shrink] if os.environ.get("CSMS_FUZZ_SHRINK") == "1" else [])],
)


async def _fuzz(
    make_central: MakeCentral, version: str, strategy: st.SearchStrategy[Frame], examples: int
) -> Harness:
    """Run ``examples`` frames drawn from ``strategy`` through a :class:`Harness`.

    Hypothesis drives from a worker thread; each example runs on this test's event loop, where
    the server runs too."""
    # The per-connection message rate would answer most frames with "Too many messages"
    # (tests/limits covers it): off here, so that the frame handling itself is exercised.
    central = await make_central(settings={"limits": LimitsSettings(ocpp_messages_per_second=0)})
    harness = Harness(central, version)
    await harness.start()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def run(frame: Frame) -> None:
        asyncio.run_coroutine_threadsafe(harness.example(frame), loop).result(2 * READ_TIMEOUT)

    test: Callable[[], None] = given(frame=strategy)(run)
    for frame in regressions(version):
        test = example(frame=frame)(test)
    test = settings(FUZZ_SETTINGS, max_examples=examples)(test)

    def finish(error: BaseException | None) -> None:
        if not done.done():
            done.set_result(None) if error is None else done.set_exception(error)

    def worker() -> None:
        error: BaseException | None = None
        try:
            test()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone (the test timed out)
            loop.call_soon_threadsafe(finish, error)

    # A daemon thread: should the test time out, it does not hold the process up.
    threading.Thread(target=worker, name=f"fuzz-{version}", daemon=True).start()
    try:
        await done
    finally:
        await harness.stop()
    assert harness.sent >= examples
    return harness


@pytest.mark.parametrize("version", list(VERSIONS))
async def test_random_frames(make_central: MakeCentral, version: str) -> None:
    harness = await _fuzz(make_central, version, random_frames(), EXAMPLES["random"])
    assert harness.reconnects == 0


@pytest.mark.parametrize("version", list(VERSIONS))
async def test_mutated_frames(make_central: MakeCentral, version: str) -> None:
    harness = await _fuzz(make_central, version, mutated_frames(version), EXAMPLES["mutated"])
    assert harness.reconnects == 0
    print(version, sorted(harness.answers.items()))
    # The valid CALLs among them reached the handlers and were answered.
    assert harness.answers["result"] >= EXAMPLES["mutated"] // 20
