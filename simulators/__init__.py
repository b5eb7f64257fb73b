"""Simulated OCPP 1.6J and 2.0.1 charging stations for testing the CSMS the way real chargers
do (see :mod:`simulators.base`), with named fault scenarios (:mod:`simulators.scenarios`) and
security profiles 1 to 3 (Basic auth, ``wss://``, client certificates: :mod:`simulators.tls`).
Imports nothing from ``csms`` or ``diagnostics``."""

from simulators.base import (
    BootTimeout,
    CallErrorResponse,
    Frame,
    NotConnectedError,
    ReceivedCommand,
    SentMessage,
    Session,
    SessionRejected,
    StationBase,
    StationError,
)
from simulators.behaviour import Behaviour, Mode
from simulators.scenarios import SCENARIOS, Fault, Scenario, ScenarioError, safety_fault
from simulators.station16 import Station16
from simulators.station201 import Station201
from simulators.tls import TlsConfigError, TlsOptions

__all__ = [
    "SCENARIOS",
    "Behaviour",
    "BootTimeout",
    "CallErrorResponse",
    "Fault",
    "Frame",
    "Mode",
    "NotConnectedError",
    "ReceivedCommand",
    "Scenario",
    "ScenarioError",
    "SentMessage",
    "Session",
    "SessionRejected",
    "Station16",
    "Station201",
    "StationBase",
    "StationError",
    "TlsConfigError",
    "TlsOptions",
    "safety_fault",
]
