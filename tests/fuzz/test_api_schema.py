"""Schemathesis against the OpenAPI document of the running central system: every operation,
with data valid for its schema and data that is not (positive and negative generation), sent
with an admin token to the real HTTP server; no answer may be a server error (5xx).

The per-address request limit would turn most requests into 429 (tests/limits covers it), so
loopback is exempt here. The budget is bounded: ``EXAMPLES`` per operation and mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from csms.app import CentralSystem
from csms.settings import LimitsSettings
from simulators import Station16, Station201
from tests.api.conftest import auth, create_token
from tests.conftest import MakeCentral

EXAMPLES = int(os.environ.get("CSMS_FUZZ_API_EXAMPLES", "40"))
"""Examples per operation (positive and negative mixed); more with CSMS_FUZZ_API_EXAMPLES."""
BACKENDS = os.environ.get("CSMS_FUZZ_API_DB", "postgres").split(",")
"""PostgreSQL by default (the stricter database: 32/64-bit integers, no NUL in text);
CSMS_FUZZ_API_DB=sqlite,postgres for both."""
SKIPPED = {
    # Server-sent events: the answer never ends.
    ("GET", "/api/v1/stream"),
}

API_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    verbosity=Verbosity.quiet,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate,
            *([Phase.shrink] if os.environ.get("CSMS_FUZZ_SHRINK") == "1" else [])],
)


# Schemathesis' own strategies use the ``random`` module (a Hypothesis deprecation warning).
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("db_backend", BACKENDS, indirect=True)
async def test_no_server_errors(make_central: MakeCentral) -> None:
    central = await make_central(
        diagnostics_time_scale=0.01,
        settings={"limits": LimitsSettings(exempt_networks=("127.0.0.1/32",))},
    )
    base = f"http://127.0.0.1:{central.http.port}"
    token = await create_token(central.store, "admin")
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:
        document = (await http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    async with (
        Station16("SCHEMA-16", central.ocpp_url),
        Station201("SCHEMA-201", central.ocpp_url),
    ):
        calls = await _run_in_thread(lambda: _exercise(schema, base, token))
    assert calls > 0
    await _still_serving(central, base, token)


def _exercise(schema: Any, base: str, token: str) -> int:
    """Every operation, positive and negative; the number of requests sent."""
    session = requests.Session()
    headers = auth(token)
    sent = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        strategies = [operation.as_strategy(generation_mode=mode)
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]

        @API_SETTINGS
        @given(case=st.one_of(strategies))
        def check(case: Case) -> None:
            nonlocal sent
            sent += 1
            case.call_and_validate(base_url=base, session=session, headers=headers,
                                   checks=[not_a_server_error], timeout=15)

        try:
            check()
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc))[-4000:]
            failures.append(f"{operation.method.upper()} {operation.path}: {detail}")
    assert not failures, "\n\n".join(failures)
    return sent


async def _run_in_thread(function: Callable[[], int]) -> int:
    """``function`` in a daemon thread (the server keeps running on this loop)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def finish(value: int | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value or 0)

    def worker() -> None:
        value, error = None, None
        try:
            value = function()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(finish, value, error)

    threading.Thread(target=worker, name="schemathesis", daemon=True).start()
    return await done


async def _still_serving(central: CentralSystem, base: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:
        assert (await http.get("/healthz")).status_code == 200
        answer = await http.get("/api/v1/stations", headers=auth(token))
    assert answer.status_code in (200, 401)  # the token may have been revoked by the fuzzer
