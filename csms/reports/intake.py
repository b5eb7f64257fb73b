"""Reading a report from an HTTP request with bounded memory and disk.

A report is ``application/json`` or ``application/x-www-form-urlencoded`` (no photos), or
``multipart/form-data`` (the fields of :class:`~csms.reports.schemas.ReportIn` plus
``photos`` files). The body is never read beyond
its bound: a ``Content-Length`` above it is refused before reading, a body that grows past it
(chunked) is refused while it streams; multipart files are spooled to temporary files.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from csms.reports.schemas import ReportIn

FIELDS_ALLOWANCE = 64 * 1024
"""Bytes allowed beyond the photos: the text fields and the multipart framing."""
PHOTO_FIELD = "photos"
_FIELDS = frozenset(ReportIn.model_fields)


@dataclass(frozen=True, slots=True)
class RawPhoto:
    """A photo as uploaded (not checked yet)."""

    label: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Intake:
    """A parsed report with its photos."""

    report: ReportIn
    photos: list[RawPhoto]


class BodyTooLarge(Exception):
    """The request body grew past its bound."""


def _too_large(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, reason)


async def _bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        yield chunk


async def read_intake(request: Request, *, max_photos: int, max_photo_bytes: int) -> Intake:
    """The report in ``request``; raises 413 (too large, too many photos), 415 (neither JSON
    nor multipart), 400 (malformed) or 422 (invalid fields)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in ("application/json", "application/x-www-form-urlencoded"):
        limit = FIELDS_ALLOWANCE
    elif media_type == "multipart/form-data":
        limit = FIELDS_ALLOWANCE + max_photos * max_photo_bytes
    else:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "send multipart/form-data (with photos), "
                            "application/x-www-form-urlencoded or application/json")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(f"request body of {length} bytes is over the limit of {limit} bytes "
                         f"({max_photos} photos of at most {max_photo_bytes} bytes)")
    if media_type == "application/json":
        return Intake(await _json_report(request, limit), [])
    return await _form_report(request, media_type, limit, max_photos, max_photo_bytes)


async def _json_report(request: Request, limit: int) -> ReportIn:
    body = bytearray()
    try:
        async for chunk in _bounded(request.stream(), limit):
            body.extend(chunk)
    except BodyTooLarge as exc:
        raise _too_large(f"a JSON report is at most {limit} bytes") from exc
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the JSON body must be an object")
    return _validate(raw)


async def _form_report(
    request: Request, media_type: str, limit: int, max_photos: int, max_photo_bytes: int
) -> Intake:
    stream = _bounded(request.stream(), limit)
    parser: FormParser | MultiPartParser
    if media_type == "multipart/form-data":
        parser = MultiPartParser(request.headers, stream, max_files=max_photos,
                                 max_fields=len(_FIELDS) + 4, max_part_size=FIELDS_ALLOWANCE)
    else:
        parser = FormParser(request.headers, stream, max_fields=len(_FIELDS) + 4,
                            max_part_size=FIELDS_ALLOWANCE)
    try:
        form = await parser.parse()
    except BodyTooLarge as exc:
        raise _too_large(f"request body is over the limit of {limit} bytes") from exc
    except MultiPartException as exc:
        if exc.message.startswith("Too many files"):
            raise _too_large(f"too many photos: at most {max_photos}") from exc
        raise HTTPException(status.HTTP_400_BAD_REQUEST, exc.message) from exc
    try:
        return await _form_fields(form, max_photo_bytes)
    finally:
        await form.close()


async def _form_fields(form: FormData, max_photo_bytes: int) -> Intake:
    fields: dict[str, object] = {}
    photos: list[RawPhoto] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != PHOTO_FIELD:
                raise _invalid(name, f"unexpected file field (photos go in {PHOTO_FIELD!r})")
            if not value.filename and not value.size:
                continue  # a browser form's empty file input
            label = f"photo {len(photos) + 1}"
            if value.size is not None and value.size > max_photo_bytes:
                raise _too_large(f"{label} is {value.size} bytes, more than {max_photo_bytes}")
            data = await value.read(max_photo_bytes + 1)
            if len(data) > max_photo_bytes:
                raise _too_large(f"{label} is more than {max_photo_bytes} bytes")
            photos.append(RawPhoto(label, data))
        elif name == PHOTO_FIELD:
            if value:
                raise _invalid(name, "photos must be files")
        elif name in fields:
            raise _invalid(name, "given twice")
        else:
            fields[name] = value
    if fields.get("connector") == "":
        fields["connector"] = None
    if fields.get("contact") == "":
        fields["contact"] = None
    return Intake(_validate(fields), photos)


def _validate(raw: dict[str, object]) -> ReportIn:
    try:
        return ReportIn.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(errors) from exc


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{
        "type": "value_error", "loc": ("body", field), "msg": message, "input": None,
    }])
