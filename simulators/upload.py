"""Log/diagnostics file upload of a simulated station (1.6 §5.9 GetDiagnostics, 1.6 security
extension and 2.0.1 N01 GetLog).

The station calls an :data:`Uploader` ``(target_url, data) -> success``. The default one does an
HTTP(S) PUT with asyncio streams (cancellable, no thread) or an FTP ``STOR`` with ``ftplib`` in a
worker thread. Any exception or ``False`` means the upload failed (UploadFailed /
UploadFailure). HTTPS verifies the server against the station's TLS context (its ``--ca-file``,
see :mod:`simulators.tls`), else against the system trust store.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ftplib
import io
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit, urlunsplit

Uploader = Callable[[str, bytes], Awaitable[bool]]
"""Async hook: upload ``data`` to the target URL; return True on success."""

UPLOAD_TIMEOUT = 10.0


class UploadError(Exception):
    """The upload could not be done (unsupported scheme, bad URL, server refused)."""


def upload_target(location: str, filename: str, *, append_filename: bool = True) -> str:
    """URL the file goes to: ``location`` treated as a directory, ``filename`` appended before any
    query string (what most chargers do with the GetDiagnostics/GetLog location)."""
    if not append_filename:
        return location
    parts = urlsplit(location)
    path = parts.path.rstrip("/") + "/" + filename
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


async def default_uploader(target: str, data: bytes, *,
                           ssl_context: ssl.SSLContext | None = None) -> bool:
    """Upload by scheme: ``http``/``https`` PUT, ``ftp`` STOR; anything else fails.
    ``ssl_context`` verifies an HTTPS server (default: the system trust store)."""
    scheme = urlsplit(target).scheme.lower()
    if scheme in ("http", "https"):
        async with asyncio.timeout(UPLOAD_TIMEOUT):
            return await http_put(target, data, ssl_context=ssl_context)
    if scheme == "ftp":
        return await asyncio.to_thread(ftp_store, target, data)
    raise UploadError(f"unsupported upload scheme {scheme!r}")


async def http_put(url: str, data: bytes, *, ssl_context: ssl.SSLContext | None = None) -> bool:
    """Minimal HTTP/1.1 PUT over asyncio streams; True for a 2xx status. ``https`` uses
    ``ssl_context`` (default: :func:`ssl.create_default_context`)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise UploadError(f"no host in {url!r}")
    tls = parts.scheme.lower() == "https"
    port = parts.port or (443 if tls else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    headers = [
        f"PUT {path} HTTP/1.1",
        f"Host: {host_header}",
        "Content-Type: text/plain",
        f"Content-Length: {len(data)}",
        "Connection: close",
    ]
    if parts.username is not None:
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers.append("Authorization: Basic " + base64.b64encode(cred.encode()).decode())
    context = (ssl_context or ssl.create_default_context()) if tls else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + data)
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    fields = status_line.decode("latin-1").split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise UploadError(f"bad HTTP status line {status_line!r}")
    return 200 <= int(fields[1]) < 300


def ftp_store(url: str, data: bytes) -> bool:
    """Blocking FTP upload (passive mode) of ``data`` to the path in ``url``."""
    parts = urlsplit(url)
    if not parts.hostname or not parts.path or parts.path.endswith("/"):
        raise UploadError(f"bad FTP target {url!r}")
    with ftplib.FTP(timeout=UPLOAD_TIMEOUT) as ftp:
        ftp.connect(parts.hostname, parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        ftp.storbinary("STOR " + unquote(parts.path), io.BytesIO(data))
    return True
