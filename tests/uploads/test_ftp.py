"""FTP uploads with Python's ftplib (in a thread) against the aioftp server on loopback port 0."""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import io
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from csms.uploads import UploadedLog, Uploads, UploadSlot
from csms.uploads.ftp import FtpUploadServer
from tests.uploads.conftest import MAX_BYTES, FakeClock, stored_files

T = TypeVar("T")
PAYLOAD = b"2025-01-02 03:04:05 ERROR ground fault\n" * 30
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


async def in_thread(function: Callable[[], T]) -> T:
    return await asyncio.to_thread(function)


def connect(slot: UploadSlot) -> tuple[ftplib.FTP, str, str]:
    """A connection to the slot's location (not logged in), its user and password."""
    assert slot.ftp_location is not None
    location = urlsplit(slot.ftp_location)
    assert location.hostname and location.port and location.username and location.password
    ftp = ftplib.FTP()
    ftp.connect(location.hostname, location.port, timeout=5)
    return ftp, location.username, location.password


def upload(slot: UploadSlot, name: str, data: bytes) -> str:
    """Log in with the slot's credentials and STOR ``data`` as ``name``; the final reply."""
    ftp, user, password = connect(slot)
    try:
        ftp.login(user, password)
        return ftp.storbinary(f"STOR {name}", io.BytesIO(data))
    finally:
        ftp.close()


async def test_location_and_good_upload(
    ftp_server: FtpUploadServer,
    uploads: Uploads,
    upload_root: Path,
    received: list[UploadedLog],
) -> None:
    slot = uploads.open("CP-7", 21)
    assert slot.ftp_location is not None
    assert re.fullmatch(
        rf"ftp://log[a-z0-9]{{12}}:[A-Za-z0-9]{{24}}@127\.0\.0\.1:{ftp_server.port}/",
        slot.ftp_location,
    )

    reply = await in_thread(lambda: upload(slot, "diag_CP-7.tar.gz", PAYLOAD))

    assert reply.startswith("226")
    [path] = stored_files(upload_root)
    assert path.parent == upload_root / "CP-7"
    assert path.name == "21-20250102T030405Z-diag_CP-7.tar.gz"
    assert path.read_bytes() == PAYLOAD
    await uploads.registry.aclose()
    [uploaded] = received
    assert uploaded.protocol == "ftp"
    assert uploaded.filename_as_sent == "diag_CP-7.tar.gz"
    assert uploaded.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert uploaded.size == len(PAYLOAD)


async def test_charger_style_session(ftp_server: FtpUploadServer, uploads: Uploads) -> None:
    """What chargers typically send around the STOR: SYST, FEAT, TYPE I, PWD, CWD /, NOOP."""
    slot = uploads.open("CP-7", 22)

    def session() -> list[str]:
        ftp, user, password = connect(slot)
        with ftp:
            ftp.login(user, password)
            replies = [ftp.sendcmd(c) for c in ("SYST", "TYPE I", "PWD", "CWD /", "NOOP")]
            replies.append(ftp.sendcmd("FEAT"))
            replies.append(ftp.storbinary("STOR /diag.log", io.BytesIO(PAYLOAD)))
            ftp.quit()
        return replies

    replies = await in_thread(session)
    assert [r[:3] for r in replies] == ["215", "200", "257", "250", "200", "211", "226"]
    assert '"/"' in replies[2]
    assert slot.result is not None


async def test_wrong_password_refused(ftp_server: FtpUploadServer, uploads: Uploads) -> None:
    slot = uploads.open("CP-7", 23)

    def login() -> None:
        ftp, user, _ = connect(slot)
        with ftp:
            ftp.login(user, slot.ftp_password[:-1] + "!")

    with pytest.raises(ftplib.error_perm, match=r"^530"):
        await in_thread(login)


async def test_unknown_user_cannot_be_told_apart(
    ftp_server: FtpUploadServer, uploads: Uploads
) -> None:
    slot = uploads.open("CP-7", 24)

    def try_user(user: str) -> str:
        ftp, _, _ = connect(slot)
        with ftp:
            return ftp.sendcmd(f"USER {user}")

    assert (await in_thread(lambda: try_user("lognosuchuser00")))[:3] == "331"
    assert (await in_thread(lambda: try_user(slot.ftp_user)))[:3] == "331"


@pytest.mark.parametrize("user", ["anonymous", "ftp", "ANONYMOUS"])
async def test_anonymous_refused(ftp_server: FtpUploadServer, uploads: Uploads, user: str) -> None:
    slot = uploads.open("CP-7", 25)

    def login() -> None:
        ftp, _, _ = connect(slot)
        with ftp:
            ftp.login(user, "guest@")

    with pytest.raises(ftplib.error_perm, match=r"^530"):
        await in_thread(login)


async def test_credentials_die_after_the_upload(
    ftp_server: FtpUploadServer,
    client: httpx.AsyncClient,
    uploads: Uploads,
    upload_root: Path,
    received: list[UploadedLog],
) -> None:
    slot = uploads.open("CP-7", 26)

    def session() -> tuple[str, str]:
        ftp, user, password = connect(slot)
        with ftp:
            ftp.login(user, password)
            first = ftp.storbinary("STOR a.log", io.BytesIO(PAYLOAD))
            try:
                ftp.storbinary("STOR b.log", io.BytesIO(b"again"))
            except ftplib.error_perm as exc:
                second = str(exc)
            else:  # pragma: no cover
                second = "accepted"
        return first, second

    first, second = await in_thread(session)
    assert first.startswith("226")
    assert second == "550 upload slot already used"

    def login_again() -> None:
        ftp, user, password = connect(slot)
        with ftp:
            ftp.login(user, password)

    with pytest.raises(ftplib.error_perm, match=r"^530"):
        await in_thread(login_again)
    # The same slot over HTTP is used up too.
    assert (await client.put(slot.http_location, content=b"late")).status_code == 404
    await uploads.registry.aclose()
    assert len(received) == 1
    assert len(stored_files(upload_root)) == 1


async def test_nothing_but_stor(
    ftp_server: FtpUploadServer, uploads: Uploads, upload_root: Path
) -> None:
    # Another station's upload is on disk: nothing may reveal, fetch or remove it.
    other = uploads.open("CP-OTHER", 1)
    await in_thread(lambda: upload(other, "secret.log", b"other station's log"))
    slot = uploads.open("CP-7", 27)

    def session() -> dict[str, str]:
        results: dict[str, str] = {}
        ftp, user, password = connect(slot)
        with ftp:
            ftp.login(user, password)
            attempts: dict[str, Callable[[], object]] = {
                "RETR": lambda: ftp.retrbinary("RETR secret.log", lambda _: None),
                "RETR-escape": lambda: ftp.retrbinary(
                    "RETR ../CP-OTHER/secret.log", lambda _: None
                ),
                "LIST": lambda: ftp.retrlines("LIST"),
                "NLST": lambda: ftp.nlst(),
                "MLSD": lambda: list(ftp.mlsd()),
                "SIZE": lambda: ftp.size("secret.log"),
                "DELE": lambda: ftp.delete("../CP-OTHER/secret.log"),
                "RNFR": lambda: ftp.rename("a", "b"),
                "MKD": lambda: ftp.mkd("sub"),
                "RMD": lambda: ftp.rmd("/"),
                "CWD ..": lambda: ftp.cwd(".."),
                "CWD /etc": lambda: ftp.cwd("/etc"),
                "CDUP": lambda: ftp.sendcmd("CDUP"),
                "SITE": lambda: ftp.sendcmd("SITE CHMOD 777 x"),
                "APPE": lambda: ftp.storbinary("APPE x.log", io.BytesIO(b"x")),
                "REST": lambda: ftp.sendcmd("REST 10"),
                "PORT": lambda: ftp.sendcmd("PORT 127,0,0,1,4,1"),
            }
            for name, attempt in attempts.items():
                try:
                    attempt()
                except ftplib.Error as exc:
                    results[name] = str(exc)[:3]
                else:  # pragma: no cover
                    results[name] = "accepted"
            results["PWD"] = ftp.pwd()
            results["STOR"] = ftp.storbinary("STOR ok.log", io.BytesIO(PAYLOAD))[:3]
        return results

    results = await in_thread(session)
    assert results.pop("PWD") == "/"
    assert results.pop("STOR") == "226"
    assert results.pop("REST") == "502"
    assert results.pop("PORT") == "502"
    assert results == {name: "550" for name in results}
    files = stored_files(upload_root)
    assert [p.parent.name for p in files] == ["CP-7", "CP-OTHER"]
    assert files[1].read_bytes() == b"other station's log"


async def test_commands_need_login(ftp_server: FtpUploadServer, uploads: Uploads) -> None:
    slot = uploads.open("CP-7", 28)

    def session() -> list[str]:
        ftp, _, _ = connect(slot)
        replies = []
        with ftp:
            for command in ("STOR x.log", "RETR x.log", "CWD /", "PASV", "LIST"):
                try:
                    replies.append(ftp.sendcmd(command))
                except ftplib.Error as exc:
                    replies.append(str(exc))
        return [r[:3] for r in replies]

    assert await in_thread(session) == ["530", "530", "530", "503", "530"]


async def test_too_large_refused_and_partial_removed(
    ftp_server: FtpUploadServer, uploads: Uploads, upload_root: Path
) -> None:
    slot = uploads.open("CP-7", 29)

    def session() -> tuple[str, str]:
        ftp, user, password = connect(slot)
        with ftp:
            ftp.login(user, password)
            try:
                ftp.storbinary("STOR big.log", io.BytesIO(b"x" * (MAX_BYTES * 3)))
            except ftplib.error_perm as exc:
                refused = str(exc)
            except OSError:  # the server may close the data connection mid-send
                refused = ftp.getresp()
            else:  # pragma: no cover
                refused = "accepted"
            # One request per location (uploads.max_attempts 1): the failed STOR used it up.
            try:
                retry = ftp.storbinary("STOR small.log", io.BytesIO(b"y" * MAX_BYTES))
            except ftplib.error_perm as exc:
                retry = str(exc)
        return refused, retry

    refused, retry = await in_thread(session)
    assert refused.startswith("552")
    assert retry == "550 upload slot closed"
    assert stored_files(upload_root) == []


async def test_empty_upload_refused(
    ftp_server: FtpUploadServer, uploads: Uploads, upload_root: Path
) -> None:
    slot = uploads.open("CP-7", 30)
    with pytest.raises(ftplib.error_perm, match=r"^550 empty"):
        await in_thread(lambda: upload(slot, "empty.log", b""))
    assert stored_files(upload_root) == []
    # One request per location (uploads.max_attempts 1): the empty upload used it up.
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        await in_thread(lambda: upload(slot, "full.log", PAYLOAD))


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "x" * 1000 + ".log", ".."],
    ids=["traversal", "absolute", "backslashes", "long", "dotdot"],
)
async def test_names_cannot_escape(
    ftp_server: FtpUploadServer, uploads: Uploads, upload_root: Path, name: str
) -> None:
    slot = uploads.open("CP-7", 31)
    assert (await in_thread(lambda: upload(slot, name, PAYLOAD))).startswith("226")
    [path] = stored_files(upload_root)
    assert path.parent == upload_root / "CP-7"
    assert SAFE_NAME.fullmatch(path.name)
    assert slot.result is not None
    assert slot.result.filename_as_sent == name


async def test_expired_slot_cannot_log_in(
    ftp_server: FtpUploadServer, uploads: Uploads, clock: FakeClock
) -> None:
    slot = uploads.open("CP-7", 32, ttl=10)
    clock.advance(10)
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        await in_thread(lambda: upload(slot, "late.log", PAYLOAD))


async def test_passive_ports_from_the_range(uploads: Uploads, upload_root: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
    ports = (first, first + 4)
    server = FtpUploadServer(uploads, host="127.0.0.1", port=0, passive_ports=ports)
    await server.start()
    uploads.registry.endpoints.ftp_port = server.port
    try:
        slot = uploads.open("CP-7", 33)

        def session() -> tuple[str, str]:
            ftp, user, password = connect(slot)
            with ftp:
                ftp.login(user, password)
                pasv = ftp.sendcmd("PASV")
                return pasv, ftp.storbinary("STOR a.log", io.BytesIO(PAYLOAD))

        pasv, reply = await in_thread(session)
        numbers = [int(n) for n in re.findall(r"\d+", pasv.split("(", 1)[1])]
        assert numbers[:4] == [127, 0, 0, 1]
        assert ports[0] <= numbers[4] * 256 + numbers[5] <= ports[1]
        assert reply.startswith("226")
    finally:
        await server.stop()
