"""Micro-benchmark: CPU cost of handling one incoming OCPP request, library path vs ours.

(a) library: ``unpack`` (json) → ``validate_payload`` (jsonschema in the thread pool) →
    ``camel_to_snake_case`` → handler → ``serialize_as_dict``/``remove_nones``/
    ``snake_to_camel_case`` → ``validate_payload`` of the response → ``to_json``
    (the steps of ``ocpp.charge_point.ChargePoint._handle_call``).
(b) ours: ``keys.loads`` → ``PayloadValidator.validate`` (with the real-world tolerance) →
    ``keys.to_snake`` → handler → ``keys.payload_from_dataclass`` → ``validate`` of the
    response → ``keys.dumps``.

Both run as coroutines awaited in one event loop; both produce the same response text
(checked before timing). Run: ``PYTHONPATH=. python benchmarks/dispatch_cost.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ocpp.v16.call_result as result16
import ocpp.v201.call_result as result201
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.messages import Call, CallResult, unpack, validate_payload

from csms.protocol.keys import dumps, loads, payload_from_dataclass, to_snake
from csms.protocol.validation import PayloadValidator, tolerance_for

NOW = "2024-05-01T12:00:00.000Z"


def _heartbeat_16(**_: Any) -> Any:
    return result16.Heartbeat(current_time=NOW)


def _meter_values_16(**_: Any) -> Any:
    return result16.MeterValues()


def _heartbeat_201(**_: Any) -> Any:
    return result201.Heartbeat(current_time=NOW)


def _meter_values_201(**_: Any) -> Any:
    return result201.MeterValues()


METER_16 = (
    '[2,"7c1b7a4e-0d51-4d5c-9b0a-3f1f3e2d9a10","MeterValues",{"connectorId":1,'
    '"transactionId":123456,"meterValue":[{"timestamp":"2024-05-01T12:00:00.000Z",'
    '"sampledValue":['
    '{"value":"12345.6","context":"Sample.Periodic","format":"Raw",'
    '"measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"},'
    '{"value":"7360.2","context":"Sample.Periodic","format":"Raw",'
    '"measurand":"Power.Active.Import","location":"Outlet","unit":"W"},'
    '{"value":"31.9","context":"Sample.Periodic","format":"Raw",'
    '"measurand":"Current.Import","phase":"L1","location":"Outlet","unit":"A"}'
    "]}]}]"
)
METER_201 = (
    '[2,"7c1b7a4e-0d51-4d5c-9b0a-3f1f3e2d9a10","MeterValues",{"evseId":1,'
    '"meterValue":[{"timestamp":"2024-05-01T12:00:00.000Z","sampledValue":['
    '{"value":12345.6,"context":"Sample.Periodic",'
    '"measurand":"Energy.Active.Import.Register","location":"Outlet",'
    '"unitOfMeasure":{"unit":"Wh"}},'
    '{"value":7360.2,"context":"Sample.Periodic","measurand":"Power.Active.Import",'
    '"location":"Outlet","unitOfMeasure":{"unit":"W"}},'
    '{"value":31.9,"context":"Sample.Periodic","measurand":"Current.Import",'
    '"phase":"L1","location":"Outlet","unitOfMeasure":{"unit":"A"}}'
    "]}]}]"
)


@dataclass(frozen=True)
class Case:
    label: str
    version: str
    raw: str
    handler: Callable[..., Any]


CASES = [
    Case("1.6 Heartbeat", "1.6", '[2,"19223201","Heartbeat",{}]', _heartbeat_16),
    Case("1.6 MeterValues (3 samples)", "1.6", METER_16, _meter_values_16),
    Case("2.0.1 Heartbeat", "2.0.1", '[2,"19223201","Heartbeat",{}]', _heartbeat_201),
    Case("2.0.1 MeterValues (3 samples)", "2.0.1", METER_201, _meter_values_201),
]


async def library_path(case: Case) -> str:
    message = unpack(case.raw)
    await validate_payload(message, case.version)
    response = case.handler(**camel_to_snake_case(message.payload))
    payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
    result = message.create_call_result(payload)
    await validate_payload(result, case.version)
    text: str = result.to_json()
    return text


def our_path_factory(case: Case) -> Callable[[Case], Awaitable[str]]:
    validator = PayloadValidator(case.version)
    _, _, action, _ = loads(case.raw)
    tolerate = tolerance_for(case.version, action)

    async def our_path(case: Case) -> str:
        frame = loads(case.raw)
        message = Call(frame[1], frame[2], frame[3])
        validator.validate(message, tolerate=tolerate)
        response = case.handler(**to_snake(message.payload))
        result = CallResult(message.unique_id, payload_from_dataclass(response), message.action)
        validator.validate(result)
        return dumps(result)

    return our_path


async def time_per_call(
    run: Callable[[Case], Awaitable[str]], case: Case, seconds: float, repeats: int
) -> float:
    """Median over ``repeats`` runs of the mean µs per call (each run ≈ ``seconds``)."""
    for _ in range(50):  # warm up: compile, thread pool start, caches
        await run(case)
    start = time.perf_counter()
    calibration = 0
    while time.perf_counter() - start < 0.05:
        await run(case)
        calibration += 1
    per_call = (time.perf_counter() - start) / calibration
    loops = max(20, int(seconds / per_call))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            await run(case)
        samples.append((time.perf_counter() - start) / loops * 1e6)
    return statistics.median(samples)


async def time_stages(case: Case, loops: int = 2000) -> dict[str, float]:
    """µs per stage of our path (synchronous stages, best of 3)."""
    validator = PayloadValidator(case.version)
    frame = loads(case.raw)
    message = Call(frame[1], frame[2], frame[3])
    tolerate = tolerance_for(case.version, message.action)
    response = case.handler(**to_snake(message.payload))
    result = CallResult(message.unique_id, payload_from_dataclass(response), message.action)
    stages: dict[str, Callable[[], object]] = {
        "loads": lambda: loads(case.raw),
        "validate req": lambda: validator.validate(message, tolerate=tolerate),
        "to_snake": lambda: to_snake(message.payload),
        "from_dataclass": lambda: payload_from_dataclass(response),
        "validate resp": lambda: validator.validate(result),
        "dumps": lambda: dumps(result),
    }
    out = {}
    for name, stage in stages.items():
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(loops):
                stage()
            best = min(best, (time.perf_counter() - start) / loops * 1e6)
        out[name] = best
    return out


async def main(seconds: float, repeats: int) -> int:
    print(f"python {sys.version.split()[0]}; {seconds:.2f} s x {repeats} runs per cell, median")
    print()
    header = f"{'message':<31} {'library µs':>11} {'ours µs':>9} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        ours = our_path_factory(case)
        expected, got = await library_path(case), await ours(case)
        if expected != got:
            print(f"output mismatch for {case.label}: {expected} != {got}", file=sys.stderr)
            return 1
        library_us = await time_per_call(library_path, case, seconds, repeats)
        ours_us = await time_per_call(ours, case, seconds, repeats)
        print(f"{case.label:<31} {library_us:>11.1f} {ours_us:>9.1f} {library_us / ours_us:>7.1f}x")
    print()
    names = list((await time_stages(CASES[0], 10)).keys())
    print(f"{'our stages, µs':<31} " + " ".join(f"{n:>14}" for n in names))
    for case in CASES:
        stages = await time_stages(case)
        print(f"{case.label:<31} " + " ".join(f"{stages[n]:>14.2f}" for n in names))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.6, help="per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell")
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.seconds, arguments.repeats)))
