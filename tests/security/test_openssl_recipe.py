"""The openssl recipe of the README ("Security") is true: its commands are those of
``scripts/issue-certificates.sh``, and what the script issues lets a profile-3 charger (and a
profile-2 one) connect to a real central system over ``wss://``."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms.app import CentralSystem
from csms.cli import main as csms_main
from simulators import BootTimeout, Station16, Station201
from simulators import cli as sim_cli
from tests.conftest import MakeCentral
from tests.security.test_simulator_tls import run_cli_until_booted

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "issue-certificates.sh"
DOC = ROOT / "README.md"
ORG = "Recipe Test Operator"
CHARGERS = ("CP001", "RDAM 123")


def _commands(text: str) -> list[str]:
    """The ``openssl`` and ``printf`` commands of a shell text, continuation lines joined and
    blanks collapsed."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [" ".join(line.split()) for line in joined.splitlines()
            if line.strip().startswith(("openssl ", "printf "))]


def _doc_shell_blocks() -> str:
    return "\n".join(re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.DOTALL))


def test_the_documented_commands_are_the_scripts() -> None:
    documented = _commands(_doc_shell_blocks())
    assert len(documented) == 7  # CA: 1; server and charger: printf + 2 each
    assert documented == _commands(SCRIPT.read_text())
    assert "scripts/issue-certificates.sh" in DOC.read_text()


def _issue(pki: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args], env={**os.environ, "PKI_DIR": str(pki), "ORG": ORG},
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def recipe_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost/127.0.0.1 and two chargers' certificates,
    issued by the script (skipped when ``openssl`` is not installed)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    pki = tmp_path_factory.mktemp("recipe") / "pki"
    for args in (("ca",), ("server", "localhost", "127.0.0.1"),
                 *(("charger", charger) for charger in CHARGERS)):
        done = _issue(pki, *args)
        assert done.returncode == 0, done.stderr
    return pki


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_script_issues_what_the_docs_say(recipe_pki: Path) -> None:
    ca = _certificate(recipe_pki / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = _certificate(recipe_pki / "server.crt")
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    for charger in CHARGERS:
        cert = _certificate(recipe_pki / "chargers" / f"{charger}.crt")
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == charger
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert cert.issuer == ca.subject
        key = recipe_pki / "chargers" / f"{charger}.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list((recipe_pki / "chargers").glob("*.csr"))
    before = (recipe_pki / "ca.crt").read_bytes()
    again = _issue(recipe_pki, "ca")  # never replaces an existing CA
    assert again.returncode == 1 and "not replacing" in again.stderr
    assert (recipe_pki / "ca.crt").read_bytes() == before
    assert _issue(recipe_pki, "charger", "../escape").returncode == 2


async def _recipe_central(make_central: MakeCentral, pki: Path) -> tuple[CentralSystem, str]:
    """A central system serving ``wss://`` only, with the recipe's files as settings."""
    central = await make_central(tls_cert=pki / "server.crt", tls_key=pki / "server.key",
                                 tls_ca=pki / "ca.crt")
    return central, f"wss://localhost:{central.ocpp_port}/ocpp"


async def _csms(*argv: str) -> int:
    return await asyncio.to_thread(csms_main, list(argv))


async def test_profile_3_chargers_connect_with_the_recipe_certificates(
    make_central: MakeCentral, recipe_pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    central, url = await _recipe_central(make_central, recipe_pki)
    database = central.settings.database_url
    for charger in CHARGERS:
        assert await _csms("station", "add", charger, "--profile", "3",
                           "--database-url", database) == 0
    capsys.readouterr()

    # csms-sim exactly as the docs show it, with the {id} certificate paths.
    args = sim_cli.build_parser().parse_args([
        "--protocol", "1.6", "--count", "1", "--id-prefix", "CP", "--url", url,
        "--ca-file", str(recipe_pki / "ca.crt"),
        "--cert", str(recipe_pki / "chargers" / "{id}.crt"),
        "--key", str(recipe_pki / "chargers" / "{id}.key"),
        "--summary-interval", "0.1", "--start-timeout", "30",
    ])
    out, err = await run_cli_until_booted(args, capsys)
    assert "done: 1/1 stations booted" in out and "cannot connect" not in err

    # A 2.0.1 station through the Python API; its identity has a space (URL-encoded).
    chargers = recipe_pki / "chargers"
    async with Station201("RDAM 123", url, ca_file=recipe_pki / "ca.crt",
                          cert_file=chargers / "RDAM 123.crt",
                          key_file=chargers / "RDAM 123.key") as station:
        assert station.endpoint.endswith("/ocpp/RDAM%20123")

    # The certificate of one charger does not open the door to another.
    other = Station16("RDAM 123", url, ca_file=recipe_pki / "ca.crt",
                      cert_file=chargers / "CP001.crt", key_file=chargers / "CP001.key",
                      max_connect_attempts=1)
    with pytest.raises(BootTimeout, match="client certificate is for another charger"):
        await other.start(timeout=30)
    for charger, protocol in (("CP001", "1.6"), ("RDAM 123", "2.0.1")):
        station_row = await central.store.get_station(charger)
        assert station_row is not None and station_row.boot_count == 1
        assert station_row.protocol == protocol


async def test_profile_2_charger_connects_with_a_generated_password(
    make_central: MakeCentral, recipe_pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    central, url = await _recipe_central(make_central, recipe_pki)
    assert await _csms("station", "add", "CP002", "--generate-password", "--profile", "2",
                       "--database-url", central.settings.database_url) == 0
    printed = capsys.readouterr().out
    password = re.search(r"^password: (\S+)$", printed, flags=re.MULTILINE)
    assert password is not None, printed
    async with Station16("CP002", url, ca_file=recipe_pki / "ca.crt",
                         password=password.group(1)) as station:
        assert station.security_profile == 2
    guessed = Station16("CP002", url, ca_file=recipe_pki / "ca.crt", password="guess",
                        max_connect_attempts=1)
    with pytest.raises(BootTimeout, match="HTTP 401"):
        await guessed.start(timeout=30)
    row = await central.store.get_station("CP002")
    assert row is not None and row.boot_count == 1
