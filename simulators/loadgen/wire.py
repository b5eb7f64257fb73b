"""A lean websocket client connection (RFC 6455) as an :class:`asyncio.Protocol`.

The load generator holds thousands of these, so a connection is one small object with no task
of its own: the opening handshake (HTTP/1.1 Upgrade with the OCPP subprotocol, OCPP-J 1.6 §3,
2.0.1 Part 4 §3) is written and checked here, frames are parsed in ``data_received`` and text
messages handed to the owner's ``on_text``. No compression, no pings of our own (pings from
the server are answered), client frames masked as RFC 6455 §5.3 requires.
"""

from __future__ import annotations

import asyncio
import base64
import random
import struct
from typing import Protocol, cast
from urllib.parse import quote

from websockets.utils import accept_key

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension ships with the wheels
    from websockets.utils import apply_mask

MAX_MESSAGE = 1 << 22
MAX_RESPONSE_HEAD = 1 << 16
_H2 = struct.Struct("!BBH")
_H8 = struct.Struct("!BBQ")
_rand = random.Random()
_getrandbits = _rand.getrandbits

#: Handshake outcomes that are not an HTTP status: connection lost, invalid response.
LOST = 0
INVALID = -1


class LinkOwner(Protocol):
    """What a :class:`Link` reports to (one charger)."""

    def on_open(self, link: Link) -> None:
        """The handshake succeeded (HTTP 101 with our subprotocol)."""

    def on_text(self, data: bytes) -> None:
        """A complete text (or binary) message arrived."""

    def on_lost(self, link: Link) -> None:
        """The TCP connection is gone (after or without a closing handshake)."""

    def on_ping(self) -> None:
        """The server sent a ping (answered with a pong here)."""


def build_request(host: str, port: int, path: str, station_id: str, subprotocol: str,
                  key: str, password: str | None) -> bytes:
    """The opening handshake request for ``ws://host:port{path}/{station_id}``."""
    auth = ""
    if password is not None:
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        auth = f"Authorization: Basic {token}\r\n"
    target = f"{path.rstrip('/')}/{quote(station_id, safe='')}"
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n{auth}\r\n"
    ).encode()


def new_key() -> str:
    """A Sec-WebSocket-Key (16 random bytes, base64)."""
    return base64.b64encode(_getrandbits(128).to_bytes(16, "little")).decode()


def frame(opcode: int, data: bytes) -> bytes:
    """One final, masked client frame."""
    n = len(data)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = _H2.pack(0x80 | opcode, 0xFE, n)
    else:
        head = _H8.pack(0x80 | opcode, 0xFF, n)
    mask = _getrandbits(32).to_bytes(4, "little")
    return head + mask + apply_mask(data, mask)


class Link(asyncio.Protocol):
    """One websocket connection; the ``handshake`` future resolves to 101, another HTTP
    status, LOST or INVALID. ``owner`` gets messages only after a 101 with our subprotocol."""

    __slots__ = ("_buf", "_frag", "_key", "_request", "_subprotocol", "closing", "handshake",
                 "is_open", "owner", "transport")

    def __init__(self, owner: LinkOwner, request: bytes, key: str, subprotocol: str,
                 handshake: asyncio.Future[int]) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[int] | None = handshake
        """Resolved to the outcome of the opening handshake, then dropped (memory)."""
        self.is_open = False
        self.closing = False
        self._request: bytes | None = request
        self._key = key
        self._subprotocol = subprotocol
        self._buf = b""
        self._frag: bytearray | None = None

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a registered asyncio.Transport subclass).
        self.transport = stream = cast(asyncio.Transport, transport)
        if self._request is not None:
            stream.write(self._request)
            self._request = None

    def data_received(self, data: bytes) -> None:
        if self.is_open:
            self._frames(data)
        elif self.handshake is not None:
            self._response(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.is_open
        self.is_open = False
        self.closing = True
        self._resolve(LOST)
        if was_open:
            self.owner.on_lost(self)

    # ---------------------------------------------------------------- sending

    def send(self, text: str) -> None:
        """Send one text message (dropped if the connection is closing)."""
        if self.is_open and not self.closing and self.transport is not None:
            self.transport.write(frame(0x1, text.encode()))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 §7.1.2); the server then closes TCP."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self.is_open:
            self.transport.abort()
            return
        if not self.closing:
            self.closing = True
            self.transport.write(frame(0x8, code.to_bytes(2, "big") + reason.encode()[:120]))

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- receiving

    def _response(self, data: bytes) -> None:
        buf = self._buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_RESPONSE_HEAD:
                self._refused(INVALID)
            else:
                self._buf = buf
            return
        head, rest = buf[:end].decode("latin-1"), buf[end + 4:]
        self._buf = b""
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            self._refused(INVALID)
            return
        status = int(parts[1])
        if status != 101:
            self._refused(status)
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if (
            headers.get("upgrade", "").lower() != "websocket"
            or headers.get("sec-websocket-accept") != accept_key(self._key)
            or headers.get("sec-websocket-protocol") != self._subprotocol
        ):
            self._refused(INVALID)
            return
        self.is_open = True
        self._key = ""
        self._resolve(101)
        self.owner.on_open(self)
        if rest and self.is_open:
            self._frames(rest)

    def _resolve(self, outcome: int) -> None:
        handshake, self.handshake = self.handshake, None
        if handshake is not None and not handshake.done():
            handshake.set_result(outcome)

    def _refused(self, status: int) -> None:
        self._resolve(status)
        if self.transport is not None:
            self.transport.abort()

    def _frames(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        owner = self.owner
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if end - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if b1 & 0x80 or n > MAX_MESSAGE:  # servers never mask (RFC 6455 §5.1)
                self._fail(1002 if b1 & 0x80 else 1009)
                return
            if end - pos < head + n:
                break
            payload = buf[pos + head:pos + head + n]
            pos += head + n
            opcode = b0 & 0x0F
            if opcode == 0x1 or opcode == 0x2:
                if b0 & 0x80:
                    owner.on_text(payload)
                else:
                    self._frag = bytearray(payload)
            elif opcode == 0x0:
                if self._frag is not None:
                    self._frag += payload
                    if b0 & 0x80:
                        message, self._frag = bytes(self._frag), None
                        owner.on_text(message)
            elif opcode == 0x8:
                self._closed_by_peer(payload)
                return
            elif opcode == 0x9 and self.transport is not None and not self.closing:
                self.transport.write(frame(0xA, payload))
                owner.on_ping()
            if not self.is_open:
                return
        self._buf = buf[pos:] if pos < end else b""

    def _closed_by_peer(self, payload: bytes) -> None:
        if self.transport is None:
            return
        if not self.closing:
            self.closing = True
            self.transport.write(frame(0x8, payload[:2]))
        self.transport.close()

    def _fail(self, code: int) -> None:
        self.close(code)
        if self.transport is not None:
            self.transport.close()
