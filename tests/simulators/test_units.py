"""Network-free units: Behaviour, configuration stores, upload helpers."""

from __future__ import annotations

import pytest

from simulators import Behaviour, Mode
from simulators.config import ConfigStore16, VariableStore201
from simulators.upload import UploadError, default_uploader, upload_target


def test_behaviour_modes() -> None:
    b = Behaviour.with_modes(Reset="reject", GetLog=Mode.TIMEOUT)
    assert b.mode_for("Reset") is Mode.REJECT
    assert b.mode_for("GetLog") is Mode.TIMEOUT
    assert b.mode_for("ClearCache") is Mode.ACCEPT
    b.delays["Reset"] = 0.5
    assert (b.delay_for("Reset"), b.delay_for("X")) == (0.5, 0.0)
    with pytest.raises(ValueError):
        Behaviour(default_mode="sometimes").mode_for("X")


def test_config16_change_rules() -> None:
    cfg = ConfigStore16(connectors=1, password="pw")
    assert cfg.change("LocalPreAuthorize", "TRUE") == "Accepted"
    assert cfg.get("LocalPreAuthorize") == "true"
    assert cfg.change("LocalPreAuthorize", "yes") == "Rejected"
    assert cfg.change("SupportedFeatureProfiles", "Core") == "Rejected"
    assert cfg.get_configuration(["AuthorizationKey"]) == {
        "configurationKey": [{"key": "AuthorizationKey", "readonly": False}]}
    assert cfg.get("ConnectorPhaseRotation") == "0.RST,1.RST"


def test_variables201_report() -> None:
    store = VariableStore201(station_id="S", evses=1, vendor="V", model="M", serial="SN",
                             firmware="1", password="secret")
    data = store.report_data()
    password = next(d for d in data if d["variable"]["name"] == "BasicAuthPassword")
    assert "value" not in password["variableAttribute"][0]
    assert store.get("ChargingStation", "VendorName") == "V"
    assert store.get("EVSE", "Power", evse=1) == "22000"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://h/up/", "http://h/up/f.log"),
        ("http://h/up", "http://h/up/f.log"),
        ("ftp://u:p@h:21/dir/?x=1", "ftp://u:p@h:21/dir/f.log?x=1"),
    ],
)
def test_upload_target(location: str, expected: str) -> None:
    assert upload_target(location, "f.log") == expected
    assert upload_target(location, "f.log", append_filename=False) == location


async def test_unsupported_scheme() -> None:
    with pytest.raises(UploadError):
        await default_uploader("gopher://127.0.0.1/x", b"")
