"""Stopping background tasks without swallowing the stopper's own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

log = structlog.get_logger(__name__)


STOP_TIMEOUT = 10.0
"""Seconds a cancelled task gets to finish before it is reported and left behind."""


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, timeout: float = STOP_TIMEOUT) -> None:
    """Cancel ``tasks`` (``None`` entries are skipped) and wait until all have finished.

    ``with suppress(CancelledError): await task`` also swallows a cancellation aimed at the
    *caller* while it waits, which leaves a stopping component running forever. Waiting with
    :func:`asyncio.wait` lets the caller's cancellation through and never raises the tasks' own.
    A task that ended with an error other than cancellation is logged, not raised, and so is
    one still running after ``timeout`` seconds (with where it is stuck): stopping goes on with
    the next component either way.
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=timeout)
    for task in stuck:
        log.error("task_ignored_cancellation", task=task.get_name(), timeout=timeout,
                  stack=_where(task))
    for task in set(pending) - stuck:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("task_failed_while_stopping", task=task.get_name(),
                      error=f"{type(error).__name__}: {error}")


def stop_if_cancelled(error: BaseException) -> None:
    """Raise CancelledError when the current task was asked to stop.

    For retry loops that catch ``Exception``: a library may turn the cancellation it received
    into its own error (aiomqtt raises MqttError when the disconnect it tries on the way out
    times out), and retrying then would keep a stopping task alive for ever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error


def _where(task: asyncio.Task[Any]) -> str:
    frames = task.get_stack()
    return " <- ".join(f"{f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}"
                       for f in reversed(frames)) or "unknown"
