"""A webhook URL without a signing secret refuses to start, naming the variable to set."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from csms.app import CentralSystem
from csms.settings import DatabaseSettings, Settings, SettingsError, WebhookSettings
from csms.webhook import WebhookDispatcher
from tests.e2e.process import console_script, free_port


@pytest.mark.parametrize("secret", [None, ""])
def test_url_without_secret_is_refused(tmp_path: Path, secret: str | None) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"),
        webhook=WebhookSettings(url="https://fsm.example/hooks/csms",
                                secret=None if secret is None else SecretStr(secret)),
    )
    with pytest.raises(SettingsError, match="CSMS_WEBHOOK__SECRET"):
        CentralSystem(settings)


def test_no_url_means_no_webhook(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"),
    )
    central = CentralSystem(settings)
    assert "webhook" not in central.api.extras
    assert not any(isinstance(c, WebhookDispatcher) for c in central.components)


async def test_serve_exits_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env["CSMS_WEBHOOK__URL"] = "https://fsm.example/hooks/csms"
    process = await asyncio.create_subprocess_exec(
        *console_script("csms"), "serve", "--host", "127.0.0.1",
        "--ocpp-port", str(free_port()), "--http-port", str(free_port()),
        "--ftp-port", str(free_port()), "--data-dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "CSMS_WEBHOOK__SECRET" in stderr.decode(), stderr.decode()
