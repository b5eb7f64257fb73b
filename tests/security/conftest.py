"""Fixtures of the TLS tests: a session-wide throwaway PKI and TLS central systems."""

from __future__ import annotations

from typing import Any

import pytest

from csms.app import CentralSystem
from csms.settings import HttpSettings
from tests.conftest import MakeCentral
from tests.security.pki import Pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """CAs, a server certificate for 127.0.0.1/localhost, charger certificates on demand."""
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_options(pki: Pki, **ocpp: Any) -> dict[str, Any]:
    """``ocpp`` overrides for ``make_central``: ``ws://`` on ``port`` and ``wss://`` (with
    client certificates from the test CA) on ``tls_port``."""
    return {"tls_cert": pki.server.cert, "tls_key": pki.server.key, "tls_ca": pki.ca,
            "tls_port": 0, **ocpp}


@pytest.fixture
async def tls_central(make_central: MakeCentral, pki: Pki) -> CentralSystem:
    """A central system with a plain and a TLS listener (both databases)."""
    return await make_central(**tls_options(pki))


def https_settings(pki: Pki) -> dict[str, Any]:
    """``settings`` for ``make_central``: HTTPS on the HTTP side."""
    return {"http": HttpSettings(host="127.0.0.1", port=0, tls_cert=pki.server.cert,
                                 tls_key=pki.server.key)}
