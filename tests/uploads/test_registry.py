"""Upload slots and storage without servers: the registry's rules, names on disk, the writer."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.uploads import (
    EmptyUpload,
    Refusal,
    SlotRefused,
    SlotState,
    UploadConfig,
    UploadedLog,
    UploadEndpoints,
    UploadRegistry,
    Uploads,
    UploadStorage,
    UploadTooLarge,
    passive_address,
    safe_filename,
    safe_station_dir,
)
from csms.uploads.storage import MAX_NAME_LENGTH

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _log(slot_station: str = "CP-1", request_id: int = 1) -> UploadedLog:
    return UploadedLog(
        station_id=slot_station,
        request_id=request_id,
        path=Path("/x"),
        size=1,
        sha256="0" * 64,
        protocol="http",
        filename_as_sent=None,
        received_at=NOW,
    )


def test_open_gives_unguessable_distinct_credentials() -> None:
    registry = UploadRegistry(UploadEndpoints(public_host="csms.example.com", http_port=80))
    slots = [registry.open("CP-1", 1, now=NOW, ttl=60) for _ in range(50)]
    assert len({s.token for s in slots}) == len({s.ftp_user for s in slots}) == 50
    slot = slots[0]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", slot.token)
    assert slot.http_location == f"http://csms.example.com:80/uploads/{slot.token}/"
    assert slot.ftp_location == (
        f"ftp://{slot.ftp_user}:{slot.ftp_password}@csms.example.com:2121/"
    )
    assert slot.expires_at == NOW + timedelta(seconds=60)
    assert slot.token not in repr(slot)
    assert slot.ftp_password not in repr(slot)
    assert slot.location("ftp") == slot.ftp_location


def test_locations_with_base_url_ipv6_and_no_ftp() -> None:
    registry = UploadRegistry(
        UploadEndpoints(public_host="::1", ftp_port=None, http_base_url="https://x.test/csms/")
    )
    slot = registry.open("CP-1", 1, now=NOW, ttl=60)
    assert slot.http_location == f"https://x.test/csms/uploads/{slot.token}/"
    assert slot.ftp_location is None
    with pytest.raises(ValueError):
        slot.location("ftp")
    registry.endpoints.http_base_url = None
    registry.endpoints.ftp_port = 21
    slot = registry.open("CP-1", 1, now=NOW, ttl=60)
    assert slot.http_location.startswith("http://[::1]:8080/uploads/")
    assert slot.ftp_location is not None
    assert slot.ftp_location.endswith("@[::1]:21/")


def test_claim_rules() -> None:
    registry = UploadRegistry(max_attempts=2)
    slot = registry.open("CP-1", 1, now=NOW, ttl=60)
    with pytest.raises(SlotRefused) as unknown:
        registry.claim(registry.get("nope"), now=NOW)
    assert unknown.value.reason is Refusal.UNKNOWN

    registry.claim(slot, now=NOW)
    with pytest.raises(SlotRefused) as busy:
        registry.claim(slot, now=NOW)
    assert busy.value.reason is Refusal.BUSY
    registry.release(slot)
    assert slot.state.value == "open"

    registry.claim(slot, now=NOW)
    registry.release(slot)  # second failed attempt: closed
    assert slot.state is SlotState.CLOSED
    with pytest.raises(SlotRefused, match="upload slot closed"):
        registry.claim(slot, now=NOW)


def test_expiry_and_use() -> None:
    registry = UploadRegistry()
    slot = registry.open("CP-1", 1, now=NOW, ttl=60)
    with pytest.raises(SlotRefused, match="expired"):
        registry.claim(slot, now=NOW + timedelta(seconds=60))
    registry.claim(slot, now=NOW + timedelta(seconds=59))
    # An upload that started in time may finish after the expiry.
    registry.complete(slot, _log())
    with pytest.raises(SlotRefused, match="already used"):
        registry.claim(slot, now=NOW)
    with pytest.raises(RuntimeError):
        registry.complete(slot, _log())


def test_ftp_login() -> None:
    registry = UploadRegistry()
    slot = registry.open("CP-1", 1, now=NOW, ttl=60)
    assert registry.verify_ftp_login(slot.ftp_user, slot.ftp_password, now=NOW)
    assert not registry.verify_ftp_login(slot.ftp_user, "wrong", now=NOW)
    assert not registry.verify_ftp_login("lognobody", slot.ftp_password, now=NOW)
    assert not registry.verify_ftp_login(
        slot.ftp_user, slot.ftp_password, now=NOW + timedelta(hours=1)
    )
    registry.cancel(slot)
    assert not registry.verify_ftp_login(slot.ftp_user, slot.ftp_password, now=NOW)


def test_purge_forgets_old_slots_only() -> None:
    registry = UploadRegistry(retention=100)
    old = registry.open("CP-1", 1, now=NOW, ttl=10)
    busy = registry.open("CP-1", 2, now=NOW, ttl=10)
    registry.claim(busy, now=NOW)
    assert registry.purge(NOW + timedelta(seconds=110)) == 0
    fresh = registry.open("CP-1", 3, now=NOW + timedelta(seconds=111), ttl=10)  # purges `old`
    assert registry.get(old.token) is None
    assert registry.by_ftp_user(old.ftp_user) is None
    assert registry.get(busy.token) is busy
    assert registry.get(fresh.token) is fresh
    assert len(registry) == 2


async def test_completed_waiters_and_listeners() -> None:
    registry = UploadRegistry()
    heard: list[UploadedLog] = []

    async def async_listener(uploaded: UploadedLog) -> None:
        await asyncio.sleep(0)
        heard.append(uploaded)

    def broken_listener(uploaded: UploadedLog) -> None:
        raise RuntimeError("listener bug")

    registry.add_listener(async_listener)
    registry.add_listener(broken_listener)
    remove = registry.add_listener(heard.append)
    remove()
    slot = registry.open("CP-1", 1, now=NOW, ttl=60)
    waiter = asyncio.create_task(registry.completed(slot))
    await asyncio.sleep(0)
    registry.claim(slot, now=NOW)
    uploaded = _log()
    registry.complete(slot, uploaded)
    assert await waiter is uploaded
    await registry.aclose()
    assert heard == [uploaded]

    cancelled = registry.open("CP-1", 2, now=NOW, ttl=60)
    waiter = asyncio.create_task(registry.completed(cancelled.token))
    await asyncio.sleep(0)
    registry.cancel(cancelled)
    with pytest.raises(SlotRefused):
        await waiter
    with pytest.raises(SlotRefused, match="unknown"):
        await registry.completed("missing")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (None, "log"),
        ("", "log"),
        ("diag.zip", "diag.zip"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\logs\\diag 1.txt", "diag_1.txt"),
        ("..", "log"),
        ("...", "log"),
        (".bashrc", "bashrc"),
        ("-rf", "rf"),
        ("a\x00b\nc.log", "a_b_c.log"),
        ("Überprüfung.log", "Uberprufung.log"),
        ("\u202egol.exe", "gol.exe"),
        ("logs/", "logs"),
    ],
)
def test_safe_filename(sent: str | None, stored: str) -> None:
    assert safe_filename(sent) == stored


def test_safe_filename_keeps_the_extension_when_shortened() -> None:
    name = safe_filename("x" * 500 + ".tar.gz")
    assert len(name) == MAX_NAME_LENGTH
    assert name.endswith("x.tar.gz")


@given(st.text(max_size=400))
def test_safe_filename_is_always_safe(sent: str) -> None:
    name = safe_filename(sent)
    assert SAFE.fullmatch(name)
    assert 0 < len(name) <= MAX_NAME_LENGTH
    assert name not in (".", "..")


@given(st.text(min_size=1, max_size=80))
def test_station_dirs_are_safe_and_distinct(station: str) -> None:
    directory = safe_station_dir(station)
    assert SAFE.fullmatch(directory)
    assert len(directory) <= 80
    if directory == station:
        return
    assert safe_station_dir(station + "x") != directory


def test_station_dirs() -> None:
    assert safe_station_dir("CP-1") == "CP-1"
    assert safe_station_dir("..").startswith("station-")
    assert safe_station_dir("a/b") != safe_station_dir("a_b")


async def test_writer_limit_atomicity_and_cleanup(tmp_path: Path) -> None:
    storage = UploadStorage(tmp_path, max_bytes=10, clock=lambda: NOW)
    writer = await storage.begin("CP-1", 5)
    await writer.write(b"12345")
    [partial] = list((tmp_path / "CP-1").iterdir())
    assert partial.name.startswith(".upload-")
    with pytest.raises(UploadTooLarge):
        await writer.write(b"123456")
    assert list((tmp_path / "CP-1").iterdir()) == []

    async with await storage.begin("CP-1", 5) as writer:
        with pytest.raises(EmptyUpload):
            await writer.commit("x")
    assert list((tmp_path / "CP-1").iterdir()) == []

    stored = []
    for _ in range(2):  # same request, same second: no overwrite
        async with await storage.begin("CP-1", 5) as writer:
            await writer.write(b"abc")
            stored.append(await writer.commit("d.log"))
    assert [s.path.name for s in stored] == [
        "5-20250102T030405Z-d.log",
        "5-20250102T030405Z-1-d.log",
    ]
    assert stored[0].sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    async with await storage.begin("CP-1", 6) as writer:
        await writer.write(b"left")
    assert len(list((tmp_path / "CP-1").iterdir())) == 2
    (tmp_path / "CP-1" / ".upload-dead.part").write_bytes(b"crash")
    assert storage.remove_partials() == 1


async def test_uploads_from_config(tmp_path: Path) -> None:
    config = UploadConfig(public_host="10.0.0.5", ftp_port=2100, max_bytes=123, slot_ttl=5)
    uploads = Uploads.from_config(config, tmp_path / "uploads", http_port=8081)
    assert uploads.max_bytes == 123
    slot = uploads.open("CP-1", 1)
    assert slot.http_location.startswith("http://10.0.0.5:8081/uploads/")
    assert slot.ftp_location is not None
    assert slot.ftp_location.endswith("@10.0.0.5:2100/")
    assert slot.expires_at - slot.created_at == timedelta(seconds=5)
    assert passive_address(config) == "10.0.0.5"
    assert passive_address(UploadConfig(public_host="csms.example.com")) is None
    assert passive_address(UploadConfig(ftp_passive_address="203.0.113.9")) == "203.0.113.9"
    no_ftp = Uploads.from_config(UploadConfig(ftp_enabled=False), tmp_path)
    assert no_ftp.open("CP-1", 1).ftp_location is None
