"""One-time upload slots for diagnostics logs (1.6 GetDiagnostics, 2.0.1 / 1.6-security GetLog).

Before asking a charger for its log the CSMS opens a slot: a random token for HTTP and a
random user name and password for FTP, both good for one upload request before the slot's
expiry. The locations handed to the charger are directory style (chargers append their own file
name): ``http://host:port/uploads/{token}/`` and ``ftp://user:password@host:port/``.

Every request that reaches the slot claims it, whatever its outcome: with ``max_attempts`` 1
(the default, ``uploads.max_attempts``) the credentials are good for one request only, and a
failed attempt (too large, empty, connection lost) closes the slot; a charger that must try
again gets a fresh location when the CSMS asks for the log again. With ``max_attempts`` above
1 a failed attempt gives the slot back, up to that many attempts; a completed upload closes it
for good. The registry is in memory and
synchronous; the clock is passed in. When an upload completes it calls the listeners with an
:class:`UploadedLog` and resolves :meth:`UploadRegistry.completed`.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import inspect
import ipaddress
import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from csms.logs import get_logger

log = get_logger("csms.uploads")

Protocol = Literal["http", "ftp"]
UploadListener = Callable[["UploadedLog"], Awaitable[None] | None]

_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 32
"""Characters in an HTTP token: 32 alphanumerics, about 190 bits."""
FTP_USER_LENGTH = 12
FTP_PASSWORD_LENGTH = 24
_DUMMY_PASSWORD = "x" * FTP_PASSWORD_LENGTH


def _random(length: int, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class SlotState(enum.StrEnum):
    OPEN = "open"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    CLOSED = "closed"
    """Cancelled by the CSMS, or too many failed attempts."""


class Refusal(enum.StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    BUSY = "busy"
    CLOSED = "closed"


_MESSAGES = {
    Refusal.UNKNOWN: "unknown upload token",
    Refusal.EXPIRED: "upload slot expired",
    Refusal.USED: "upload slot already used",
    Refusal.BUSY: "an upload to this slot is already in progress",
    Refusal.CLOSED: "upload slot closed",
}


class SlotRefused(Exception):
    """The slot cannot take an upload now; ``reason`` says why."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason

    @property
    def message(self) -> str:
        return _MESSAGES[self.reason]


@dataclass(frozen=True, slots=True)
class UploadedLog:
    """A completed upload, stored on disk and handed to the diagnostics engine."""

    station_id: str
    request_id: int
    path: Path
    size: int
    sha256: str
    protocol: Protocol
    filename_as_sent: str | None
    """The charger's own file name, as metadata only (never used as a path)."""
    received_at: datetime


@dataclass(slots=True)
class UploadEndpoints:
    """What chargers connect to. Set the ports to the bound ones after the servers start."""

    public_host: str = "127.0.0.1"
    http_port: int = 8080
    ftp_port: int | None = 2121
    """``None``: FTP is not offered (``UploadSlot.ftp_location`` is ``None``)."""
    http_base_url: str | None = None
    http_scheme: str = "http"
    """``https`` when the HTTP side serves TLS (``http.tls_cert``)."""

    def _host(self) -> str:
        host = self.public_host
        try:
            if ipaddress.ip_address(host).version == 6:
                return f"[{host}]"
        except ValueError:
            pass
        return host

    def http_location(self, token: str) -> str:
        base = self.http_base_url or f"{self.http_scheme}://{self._host()}:{self.http_port}"
        return f"{base.rstrip('/')}/uploads/{token}/"

    def ftp_location(self, user: str, password: str) -> str | None:
        if self.ftp_port is None:
            return None
        return f"ftp://{user}:{password}@{self._host()}:{self.ftp_port}/"


@dataclass(eq=False, slots=True)
class UploadSlot:
    """One upload for one request of one station, by HTTP or FTP, before ``expires_at``."""

    station_id: str
    request_id: int
    created_at: datetime
    expires_at: datetime
    token: str = field(repr=False)
    ftp_user: str
    ftp_password: str = field(repr=False)
    http_location: str = field(repr=False)
    """Directory style, ends with ``/``; contains the token."""
    ftp_location: str | None = field(repr=False)
    """Contains the credentials; ``None`` when FTP is not offered."""
    state: SlotState = SlotState.OPEN
    attempts: int = 0
    result: UploadedLog | None = None

    def location(self, protocol: Protocol) -> str:
        """The location to put into GetDiagnostics / GetLog for ``protocol``."""
        if protocol == "ftp":
            if self.ftp_location is None:
                raise ValueError("FTP uploads are not offered")
            return self.ftp_location
        return self.http_location

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class UploadRegistry:
    """The open upload slots, by token and by FTP user name."""

    def __init__(
        self,
        endpoints: UploadEndpoints | None = None,
        *,
        max_attempts: int = 1,
        retention: float = 86400.0,
        on_upload: UploadListener | None = None,
    ) -> None:
        """``retention``: seconds a slot is remembered after its expiry (to say "expired" or
        "used" rather than "unknown"); ``max_attempts``: attempts (requests) before it closes."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.endpoints = endpoints or UploadEndpoints()
        self.max_attempts = max_attempts
        self.retention = timedelta(seconds=retention)
        self._by_token: dict[str, UploadSlot] = {}
        self._by_ftp_user: dict[str, UploadSlot] = {}
        self._listeners: list[UploadListener] = [on_upload] if on_upload else []
        self._waiters: dict[str, list[asyncio.Future[UploadedLog]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._by_token)

    # -- opening and looking up ---------------------------------------------------------------

    def open(self, station_id: str, request_id: int, *, now: datetime, ttl: float) -> UploadSlot:
        """A new slot good for one upload until ``now + ttl`` seconds."""
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.purge(now)
        token = _random(TOKEN_LENGTH)
        while token in self._by_token:  # pragma: no cover - 190 random bits
            token = _random(TOKEN_LENGTH)
        user = "log" + _random(FTP_USER_LENGTH, string.ascii_lowercase + string.digits)
        while user in self._by_ftp_user:  # pragma: no cover
            user = "log" + _random(FTP_USER_LENGTH, string.ascii_lowercase + string.digits)
        password = _random(FTP_PASSWORD_LENGTH)
        slot = UploadSlot(
            station_id=station_id,
            request_id=request_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
            token=token,
            ftp_user=user,
            ftp_password=password,
            http_location=self.endpoints.http_location(token),
            ftp_location=self.endpoints.ftp_location(user, password),
        )
        self._by_token[token] = slot
        self._by_ftp_user[user] = slot
        log.info(
            "upload_slot_opened",
            station_id=station_id,
            request_id=request_id,
            expires_at=slot.expires_at.isoformat(),
        )
        return slot

    def get(self, token: str) -> UploadSlot | None:
        return self._by_token.get(token)

    def by_ftp_user(self, user: str) -> UploadSlot | None:
        return self._by_ftp_user.get(user)

    def check(self, slot: UploadSlot | None, *, now: datetime) -> UploadSlot:
        """``slot`` if it can take an upload now, else :class:`SlotRefused` with the reason."""
        if slot is None:
            raise SlotRefused(Refusal.UNKNOWN)
        if slot.state is SlotState.COMPLETED:
            raise SlotRefused(Refusal.USED)
        if slot.state is SlotState.CLOSED:
            raise SlotRefused(Refusal.CLOSED)
        if slot.expired(now):
            raise SlotRefused(Refusal.EXPIRED)
        if slot.state is SlotState.UPLOADING:
            raise SlotRefused(Refusal.BUSY)
        return slot

    def verify_ftp_login(self, user: str, password: str, *, now: datetime) -> bool:
        """Whether ``user``/``password`` are the credentials of a slot that can take an upload."""
        slot = self._by_ftp_user.get(user)
        expected = slot.ftp_password if slot is not None else _DUMMY_PASSWORD
        matches = hmac.compare_digest(password.encode(), expected.encode())
        if slot is None or not matches:
            return False
        try:
            self.check(slot, now=now)
        except SlotRefused:
            return False
        return True

    # -- one attempt --------------------------------------------------------------------------

    def claim(self, slot: UploadSlot | None, *, now: datetime) -> UploadSlot:
        """Start an attempt: the slot is busy until :meth:`complete` or :meth:`release`."""
        slot = self.check(slot, now=now)
        slot.state = SlotState.UPLOADING
        slot.attempts += 1
        return slot

    def release(self, slot: UploadSlot) -> None:
        """The attempt failed: the slot takes another one, unless attempts are used up."""
        if slot.state is not SlotState.UPLOADING:
            return
        if slot.attempts >= self.max_attempts:
            self._close(slot, Refusal.CLOSED)
            log.warning(
                "upload_slot_closed_after_failures",
                station_id=slot.station_id,
                request_id=slot.request_id,
                attempts=slot.attempts,
            )
        else:
            slot.state = SlotState.OPEN

    def complete(self, slot: UploadSlot, uploaded: UploadedLog) -> None:
        """The attempt succeeded: close the slot for good and tell the listeners, once."""
        if slot.state is not SlotState.UPLOADING:
            raise RuntimeError(f"slot is {slot.state}, not uploading")
        slot.state = SlotState.COMPLETED
        slot.result = uploaded
        for future in self._waiters.pop(slot.token, []):
            if not future.done():
                future.set_result(uploaded)
        for listener in list(self._listeners):
            self._notify(listener, uploaded)

    def cancel(self, slot: UploadSlot) -> None:
        """The CSMS gave up on this upload: refuse it from now on (no-op once completed)."""
        if slot.state is SlotState.COMPLETED:
            return
        self._close(slot, Refusal.CLOSED)

    # -- results ------------------------------------------------------------------------------

    def add_listener(self, listener: UploadListener) -> Callable[[], None]:
        """Call ``listener`` once per completed upload; returns a function that removes it.

        A listener may be a coroutine function; it runs as a task (see :meth:`aclose`).
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def completed(self, slot: UploadSlot | str) -> UploadedLog:
        """Wait for the upload of a slot (or token); :class:`SlotRefused` if it is unknown,
        cancelled or forgotten.

        Expiry does not end the wait (an upload may still be running); use a timeout.
        """
        if isinstance(slot, str):
            found = self._by_token.get(slot)
            if found is None:
                raise SlotRefused(Refusal.UNKNOWN)
            slot = found
        if slot.result is not None:
            return slot.result
        if slot.state is SlotState.CLOSED or self._by_token.get(slot.token) is not slot:
            raise SlotRefused(Refusal.CLOSED)
        future: asyncio.Future[UploadedLog] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(slot.token, [])
        waiters.append(future)
        try:
            return await future
        finally:
            if future in waiters:
                waiters.remove(future)

    def purge(self, now: datetime) -> int:
        """Forget slots expired more than ``retention`` ago (not one being uploaded to)."""
        horizon = now - self.retention
        stale = [
            slot
            for slot in self._by_token.values()
            if slot.expires_at < horizon and slot.state is not SlotState.UPLOADING
        ]
        for slot in stale:
            self._close(slot, Refusal.CLOSED)
            del self._by_token[slot.token]
            self._by_ftp_user.pop(slot.ftp_user, None)
        return len(stale)

    async def aclose(self) -> None:
        """Wait for listener tasks still running."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- internals ----------------------------------------------------------------------------

    def _close(self, slot: UploadSlot, reason: Refusal) -> None:
        if slot.state is not SlotState.COMPLETED:
            slot.state = SlotState.CLOSED
        for future in self._waiters.pop(slot.token, []):
            if not future.done():
                future.set_exception(SlotRefused(reason))

    def _notify(self, listener: UploadListener, uploaded: UploadedLog) -> None:
        try:
            result = listener(uploaded)
        except Exception:
            log.exception("upload_listener_failed", station_id=uploaded.station_id)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._run_listener(result, uploaded))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run_listener(awaitable: Awaitable[None], uploaded: UploadedLog) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("upload_listener_failed", station_id=uploaded.station_id)
