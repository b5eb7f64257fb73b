"""Settings precedence: defaults < file < environment < explicit overrides; secrets env-only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from csms.cli import main
from csms.settings import (
    LimitsSettings,
    RuntimeSettings,
    Settings,
    SettingsError,
    load_settings,
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "csms.toml"
    path.write_text(text)
    return path


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no config/csms.toml here
    settings = load_settings()
    assert settings.ocpp.port == 9000
    assert settings.http.port == 8080
    assert settings.ocpp.path_prefix == "/ocpp"
    assert settings.ocpp.unknown_stations == "accept"
    assert settings.ocpp.compression is False
    assert settings.database_url == "sqlite+aiosqlite:///data/csms.db"


def test_file_overrides_defaults_and_env_overrides_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _write(tmp_path, '[ocpp]\nport = 9100\nheartbeat_interval = 60\n'
                  '[database]\nurl = "postgresql+asyncpg://u@127.0.0.1/db"\n')
    settings = load_settings(path)
    assert settings.ocpp.port == 9100 and settings.ocpp.heartbeat_interval == 60
    monkeypatch.setenv("CSMS_OCPP__PORT", "9200")
    settings = load_settings(path)
    assert settings.ocpp.port == 9200
    assert settings.ocpp.heartbeat_interval == 60  # the file still applies to other keys
    settings = load_settings(path, ocpp={"port": 9300})
    assert settings.ocpp.port == 9300 and settings.ocpp.heartbeat_interval == 60


def test_config_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CSMS_CONFIG", str(_write(tmp_path, "[ocpp]\npath_prefix = 'ws/'\n")))
    assert load_settings().ocpp.path_prefix == "/ws"


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\npassword = "hunter2"\n')
    with pytest.raises(SettingsError, match="CSMS_DATABASE__PASSWORD"):
        load_settings(path)


def test_secret_from_environment_goes_into_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE__URL", "postgresql+asyncpg://csms@127.0.0.1/csms")
    monkeypatch.setenv("CSMS_DATABASE__PASSWORD", "s3cr:t")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://csms:s3cr%3At@127.0.0.1/csms"
    assert "s3cr" not in repr(settings)


def test_unknown_key_and_bad_value_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        load_settings(_write(tmp_path, "[ocpp]\nprot = 1\n"))
    with pytest.raises(ValidationError):
        load_settings(_write(tmp_path, '[ocpp]\nunknown_stations = "maybe"\n'))
    with pytest.raises(SettingsError):
        load_settings(_write(tmp_path, "[ocpp\n"))


def test_cli_reports_invalid_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "[ocpp]\nport = -1\n")
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_repository_config_file_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config" / "csms.toml")
    assert settings.ocpp.port == 9000
    assert settings.runtime == RuntimeSettings() and settings.limits == LimitsSettings()


def test_repository_config_file_has_every_section() -> None:
    """The shipped file documents every key: at least every table is there."""
    root = Path(__file__).resolve().parents[2]
    tables = set(tomllib.loads((root / "config" / "csms.toml").read_text()))
    sections = {name for name, field in Settings.model_fields.items()
                if isinstance(field.default, BaseModel)}
    assert sections <= tables, sections - tables


def test_gc_thresholds_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        RuntimeSettings(gc_threshold=(0, 10, 10))
    assert RuntimeSettings(gc_threshold=None).gc_threshold is None
