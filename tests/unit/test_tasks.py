"""``cancel_and_wait``: stopping tasks never swallows the stopper's own cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from structlog.testing import capture_logs

from csms.tasks import cancel_and_wait, stop_if_cancelled


async def _slow_to_stop(stopped: asyncio.Event) -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        await asyncio.sleep(0.05)  # cleanup that takes a while (closing a connection, say)
        stopped.set()


async def test_cancels_and_waits_for_every_task() -> None:
    events = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(_slow_to_stop(e)) for e in events]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks[0], None, tasks[1])
    assert all(t.cancelled() for t in tasks) and all(e.is_set() for e in events)


async def test_the_callers_cancellation_gets_through() -> None:
    """The bug it replaces: a loop whose stop step was cancelled went on looping."""
    inner = asyncio.create_task(_slow_to_stop(asyncio.Event()))
    await asyncio.sleep(0)
    rounds = 0

    async def stopper() -> None:
        nonlocal rounds
        while True:  # keeps going unless its own cancellation reaches it
            rounds += 1
            await cancel_and_wait(inner)
            await asyncio.sleep(0.01)

    outer = asyncio.create_task(stopper())
    await asyncio.sleep(0.01)  # outer is now waiting for inner's slow cleanup
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(outer, 1.0)
    assert rounds == 1


async def test_the_old_pattern_swallowed_it() -> None:
    """Documents why the helper exists (if this ever fails, asyncio changed)."""
    inner = asyncio.create_task(_slow_to_stop(asyncio.Event()))
    await asyncio.sleep(0)

    async def stopper() -> str:
        inner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await inner
        return "went on"

    outer = asyncio.create_task(stopper())
    await asyncio.sleep(0.01)
    outer.cancel()
    assert await asyncio.wait_for(outer, 1.0) == "went on"


async def test_errors_are_logged_not_raised() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # does not raise
    assert isinstance(task.exception(), ValueError)


async def test_a_task_ignoring_cancellation_is_reported_and_left() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await cancel_and_wait(task, timeout=0.05)
    assert not task.done()
    [entry] = logs
    assert entry["event"] == "task_ignored_cancellation" and entry["task"] == "stubborn"
    assert "stubborn" in entry["stack"]
    release.set()
    await task


async def test_a_retry_loop_stops_when_its_cancellation_became_another_error() -> None:
    """aiomqtt turns a cancelled disconnect into MqttError; the loop must still end."""
    attempts = 0

    async def retrying() -> None:
        nonlocal attempts
        while True:
            attempts += 1
            try:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    raise ConnectionError("disconnect timed out") from None
            except ConnectionError as exc:
                stop_if_cancelled(exc)

    task = asyncio.create_task(retrying())
    await asyncio.sleep(0)
    await cancel_and_wait(task, timeout=1.0)
    assert task.cancelled() and attempts == 1
