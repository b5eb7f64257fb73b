"""HTTP upload endpoints for diagnostics logs: ``/uploads/{token}/[{filename}]``.

The location handed to the charger is ``.../uploads/{token}/``; chargers append their own file
name (with or without an extra ``/``) or upload to the location itself. The token is the only
credential (chargers cannot do more) and is good for one request (``uploads.max_attempts``).

- ``PUT``: the raw body is the file.
- ``POST``: ``multipart/form-data`` with one file part (any field name; a part is a file when
  it has a ``filename`` or a ``Content-Type``; with no such part a single plain field is taken
  as the file), or any other content type as a raw body.

Bodies are streamed to disk with the size limit (a declared ``Content-Length`` over the limit
is refused before reading). 201 with a small JSON on success; 404 unknown, expired or used
token; 409 upload to the same slot in progress; 413 too large; 400 empty body or bad
multipart.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect

from csms.logs import get_logger
from csms.uploads.registry import Refusal, SlotRefused
from csms.uploads.service import UploadAttempt, Uploads
from csms.uploads.storage import EmptyUpload, UploadTooLarge

log = get_logger("csms.http.uploads")

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9]{16,128}")
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed on top of ``max_bytes`` in a multipart body's declared length."""
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
MAX_PART_HEADER_BYTES = 16 * 1024
"""A part header line may carry a long file name; longer ones are a 400."""


class _AnyNameConvertor(Convertor[str]):
    """Like ``path`` but also matching control characters (``%0A`` and the like), so an odd
    name is stored under a sanitised name rather than answered with a routing 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("uploadname", _AnyNameConvertor())


class UploadReceipt(BaseModel):
    """What a charger gets back for a stored upload."""

    status: Literal["stored"] = "stored"
    size: int
    sha256: str
    filename: str
    """The name the file was stored under."""


class ErrorDetail(BaseModel):
    detail: str


class BadUpload(Exception):
    """The body cannot be read as an upload (400)."""


_RAW_BODY = {"schema": {"type": "string", "format": "binary"}}
_PUT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": _RAW_BODY, "*/*": _RAW_BODY},
    }
}
_POST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": _RAW_BODY,
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "Empty body or bad multipart"},
    404: {"model": ErrorDetail, "description": "Unknown, expired or already used token"},
    409: {"model": ErrorDetail, "description": "An upload to this slot is in progress"},
    413: {"model": ErrorDetail, "description": "Larger than the upload size limit"},
}
_REFUSAL_STATUS = {Refusal.BUSY: status.HTTP_409_CONFLICT}


def uploads_router(uploads: Uploads) -> APIRouter:
    """The ``/uploads`` routes, bound to ``uploads``."""
    router = APIRouter(prefix="/uploads", tags=["uploads"])
    common: dict[str, Any] = {
        "status_code": status.HTTP_201_CREATED,
        "response_model": UploadReceipt,
        "responses": _RESPONSES,
    }

    @router.put("/{token}", openapi_extra=_PUT_BODY, summary="Upload a log (raw body)", **common)
    async def put_upload(token: str, request: Request) -> UploadReceipt:
        return await receive(uploads, request, token, None, multipart=False)

    @router.put(
        "/{token}/{filename:uploadname}",
        openapi_extra=_PUT_BODY,
        summary="Upload a log under the charger's file name (raw body)",
        **common,
    )
    async def put_named_upload(token: str, filename: str, request: Request) -> UploadReceipt:
        return await receive(uploads, request, token, filename, multipart=False)

    @router.post(
        "/{token}", openapi_extra=_POST_BODY, summary="Upload a log (multipart or raw)", **common
    )
    async def post_upload(token: str, request: Request) -> UploadReceipt:
        return await receive(uploads, request, token, None, multipart=True)

    @router.post(
        "/{token}/{filename:uploadname}",
        openapi_extra=_POST_BODY,
        summary="Upload a log under the charger's file name (multipart or raw)",
        **common,
    )
    async def post_named_upload(token: str, filename: str, request: Request) -> UploadReceipt:
        return await receive(uploads, request, token, filename, multipart=True)

    return router


async def receive(
    uploads: Uploads, request: Request, token: str, url_filename: str | None, *, multipart: bool
) -> UploadReceipt:
    """Store the request body into the token's slot; HTTP errors for every refusal."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary") if multipart else None
    is_multipart = multipart and content_type == b"multipart/form-data"
    declared = _declared_length(request)
    limit = uploads.max_bytes + (MULTIPART_OVERHEAD if is_multipart else 0)
    if TOKEN_PATTERN.fullmatch(token) is None:
        log.warning("http_upload_refused", reason=str(Refusal.UNKNOWN), client=_client(request))
        uploads.refused("http", Refusal.UNKNOWN)
        raise HTTPException(status.HTTP_404_NOT_FOUND, SlotRefused(Refusal.UNKNOWN).message)
    try:
        attempt = await uploads.begin(token, "http")
    except SlotRefused as refused:
        log.warning("http_upload_refused", reason=str(refused.reason), client=_client(request))
        uploads.refused("http", refused.reason)
        code = _REFUSAL_STATUS.get(refused.reason, status.HTTP_404_NOT_FOUND)
        raise HTTPException(code, refused.message) from None
    async with attempt:
        try:
            if declared is not None and declared > limit:
                raise UploadTooLarge(uploads.max_bytes)
            if is_multipart:
                if not boundary:
                    raise BadUpload("multipart body without boundary")
                part_name = await _store_multipart(request, attempt, boundary)
                filename = part_name or url_filename
            else:
                async for chunk in request.stream():
                    await attempt.write(chunk)
                filename = url_filename or _disposition_filename(request)
            uploaded = await attempt.finish(filename or None)
        except UploadTooLarge as exc:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
        except EmptyUpload as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except BadUpload as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except ClientDisconnect:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "client disconnected") from None
    return UploadReceipt(size=uploaded.size, sha256=uploaded.sha256, filename=uploaded.path.name)


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid Content-Length")
    return int(raw)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _decode_header(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _disposition_filename(request: Request) -> str | None:
    header = request.headers.get("content-disposition")
    if not header:
        return None
    _, params = parse_options_header(header)
    name = params.get(b"filename")
    return _decode_header(name) if name else None


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    is_file: bool = False
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _MultipartEvents:
    """Collects the parser's callbacks; processed asynchronously after each chunk."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.ended = False

    def callbacks(self) -> Any:
        def data(kind: str) -> Any:
            return lambda buffer, start, end: self.events.append((kind, buffer[start:end]))

        def mark(kind: str) -> Any:
            return lambda: self.events.append((kind, b""))

        def on_end() -> None:
            self.ended = True

        return {
            "on_part_begin": mark("begin"),
            "on_header_field": data("field"),
            "on_header_value": data("value"),
            "on_header_end": mark("header_end"),
            "on_headers_finished": mark("headers_done"),
            "on_part_data": data("data"),
            "on_end": on_end,
        }


async def _store_multipart(request: Request, attempt: UploadAttempt, boundary: bytes) -> str | None:
    """Stream the one file part into ``attempt``; its file name as sent, if any."""
    collector = _MultipartEvents()
    try:
        parser = MultipartParser(
            boundary, collector.callbacks(), max_header_size=MAX_PART_HEADER_BYTES
        )
    except Exception as exc:
        raise BadUpload("bad multipart boundary") from exc
    parts: list[_Part] = []
    file_part: _Part | None = None
    header_field = bytearray()
    header_value = bytearray()

    async def process() -> None:
        nonlocal file_part
        events, collector.events = collector.events, []
        for kind, chunk in events:
            if kind == "begin":
                if len(parts) >= MAX_PARTS:
                    raise BadUpload("too many multipart parts")
                parts.append(_Part())
            elif kind == "field":
                header_field.extend(chunk)
            elif kind == "value":
                header_value.extend(chunk)
            elif kind == "header_end":
                name = _decode_header(bytes(header_field)).strip().lower()
                parts[-1].headers[name] = _decode_header(bytes(header_value)).strip()
                header_field.clear()
                header_value.clear()
            elif kind == "headers_done":
                part = parts[-1]
                _, params = parse_options_header(part.headers.get("content-disposition"))
                raw_name = params.get(b"filename")
                part.filename = _decode_header(raw_name) if raw_name is not None else None
                part.is_file = raw_name is not None or "content-type" in part.headers
                if part.is_file:
                    if file_part is not None:
                        raise BadUpload("more than one file part")
                    file_part = part
            elif kind == "data":
                part = parts[-1]
                if part.is_file:
                    await attempt.write(chunk)
                else:
                    if len(part.data) + len(chunk) > MAX_FIELD_BYTES:
                        raise BadUpload("form field too large")
                    part.data.extend(chunk)

    async with contextlib.aclosing(_chunks(request)) as chunks:
        async for body in chunks:
            try:
                parser.write(body)
            except MultipartParseError as exc:
                raise BadUpload("malformed multipart body") from exc
            await process()
            if collector.ended:
                break  # an epilogue after the closing boundary is not read
    if not collector.ended:
        raise BadUpload("incomplete multipart body")
    if file_part is not None:
        return file_part.filename
    if len(parts) == 1:
        await attempt.write(bytes(parts[0].data))
        return None
    raise BadUpload("no file part in multipart body")


async def _chunks(request: Request) -> AsyncGenerator[bytes, None]:
    async for chunk in request.stream():
        if chunk:
            yield chunk
