"""End-to-end fixtures: the real central system on port 0, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from csms.app import CentralSystem
from csms.settings import (
    DatabaseSettings,
    DiagnosticsSettings,
    HttpSettings,
    LoggingSettings,
    OcppSettings,
    Settings,
    UploadSettings,
)
from csms.store import Database

MakeCentral = Callable[..., Awaitable[CentralSystem]]


@pytest.fixture
async def make_central(database: Database, tmp_path: Path) -> AsyncIterator[MakeCentral]:
    """Start central systems on loopback port 0 over the test database (both backends).

    Keyword arguments override ``ocpp`` settings (short call timeout by default);
    ``logging`` replaces the logging settings; ``diagnostics_time_scale`` shrinks every wait
    of the diagnostics engine; ``settings`` gives other top-level settings (``{"mqtt":
    MqttSettings(...), "webhook": ..., "api": ...}``).
    """
    started: list[CentralSystem] = []

    async def factory(
        *,
        logging: LoggingSettings | None = None,
        diagnostics_time_scale: float = 1.0,
        settings: dict[str, Any] | None = None,
        **ocpp: Any,
    ) -> CentralSystem:
        options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "call_timeout": 2.0}
        options.update(ocpp)
        config = Settings(
            **(settings or {}),
            data_dir=tmp_path,
            node_id="test-node",
            logging=logging or LoggingSettings(),
            ocpp=OcppSettings(**options),
            http=HttpSettings(host="127.0.0.1", port=0),
            uploads=UploadSettings(ftp_host="127.0.0.1", ftp_port=0),
            diagnostics=DiagnosticsSettings(time_scale=diagnostics_time_scale),
            database=DatabaseSettings(
                url=database.url.render_as_string(hide_password=False), auto_migrate=False
            ),
        )
        central = CentralSystem(config)
        await central.start()
        started.append(central)
        return central

    yield factory
    for central in reversed(started):
        await central.stop()


@pytest.fixture
async def central(make_central: MakeCentral) -> CentralSystem:
    """One running central system with default settings."""
    return await make_central()
