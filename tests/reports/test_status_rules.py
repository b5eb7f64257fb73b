"""The pure rules under the report service: statuses follow runs and tickets only forward,
photos are judged by content, the rate limit counts per address."""

from __future__ import annotations

import io
from typing import get_args

import pytest
from PIL import Image

from csms.reports.photos import PhotoRejected, check_photo
from csms.reports.ratelimit import IntakeLimiter
from csms.reports.schemas import Category, StatusName
from csms.reports.status import (
    ReportStatus,
    advances,
    report_ids,
    run_verdict,
    ticket_verdict,
)
from diagnostics.events import DriverCategory
from tests.reports.conftest import image_bytes

S = ReportStatus


def test_api_literals_match_the_enums() -> None:
    assert set(get_args(Category)) == {c.value for c in DriverCategory}
    assert set(get_args(StatusName)) == {s.value for s in ReportStatus}


@pytest.mark.parametrize(("outcome", "ticket_id", "expected"), [
    (None, None, S.CHECKING_REMOTELY),
    (None, "T-1", S.TECHNICIAN_DISPATCHED),
    ("fixed", None, S.FIXED_REMOTELY),
    ("recovered", None, S.FIXED_REMOTELY),
    ("cleared", None, S.RESOLVED),
    ("diagnosed", None, S.RESOLVED),
    ("resolved", "T-1", S.RESOLVED),
    ("resolved_by_operator", "T-1", S.RESOLVED),
    ("closed_by_operator", "T-1", S.RESOLVED),
    ("healthy_again", "T-1", S.TECHNICIAN_DISPATCHED),
    ("merged", None, None),
    ("superseded", None, None),
    ("some_future_outcome", None, None),
])
def test_run_outcomes(outcome: str | None, ticket_id: str | None,
                      expected: ReportStatus | None) -> None:
    verdict = run_verdict({"run_id": "R-1", "outcome": outcome, "ticket_id": ticket_id})
    assert verdict.status is expected
    assert verdict.run_id == "R-1"
    assert verdict.refile == (outcome in ("merged", "superseded"))


@pytest.mark.parametrize(("status", "expected"), [
    ("open", S.TECHNICIAN_DISPATCHED), ("acknowledged", S.TECHNICIAN_DISPATCHED),
    ("dispatched", S.TECHNICIAN_DISPATCHED), ("resolved", S.RESOLVED), ("closed", S.RESOLVED),
    ("weird", None),
])
def test_ticket_statuses(status: str, expected: ReportStatus | None) -> None:
    verdict = ticket_verdict({"ticket_id": "T-1", "run_id": "R-1", "status": status})
    assert (verdict.status, verdict.ticket_id, verdict.run_id) == (expected, "T-1", "R-1")


def test_statuses_only_move_forward() -> None:
    assert advances(S.RECEIVED, S.CHECKING_REMOTELY)
    assert advances(S.RECEIVED, S.TECHNICIAN_DISPATCHED)
    assert advances(S.CHECKING_REMOTELY, S.FIXED_REMOTELY)
    assert advances(S.TECHNICIAN_DISPATCHED, S.RESOLVED)
    assert not advances(S.TECHNICIAN_DISPATCHED, S.CHECKING_REMOTELY)
    assert not advances(S.CHECKING_REMOTELY, S.CHECKING_REMOTELY)
    for final in (S.FIXED_REMOTELY, S.RESOLVED):
        assert final.final
        assert not any(advances(final, other) for other in S)


def test_report_ids_are_read_defensively() -> None:
    data = {"reports": [{"report_id": "a"}, {"report_id": "b"}, {"report_id": "a"}, {},
                        "junk", {"report_id": 3}]}
    assert report_ids(data) == ["a", "b"]
    assert report_ids({}) == report_ids({"reports": None}) == []


def test_photo_content_decides() -> None:
    for kind, content_type in (("JPEG", "image/jpeg"), ("PNG", "image/png"),
                               ("WEBP", "image/webp")):
        photo = check_photo(image_bytes(kind), max_bytes=100_000)
        assert photo.content_type == content_type and (photo.width, photo.height) == (64, 48)
    png = image_bytes("PNG")
    cases = [(b"GIF89a not really", 415), (png[: len(png) // 2], 415), (b"", 415),
             (image_bytes("BMP"), 415), (png, 413)]
    for data, status in cases:
        with pytest.raises(PhotoRejected) as refused:
            check_photo(data, max_bytes=100_000 if status == 415 else len(png) - 1)
        assert refused.value.status == status, data[:20]


def test_photo_with_too_many_pixels_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("1", (8000, 7000)).save(buffer, "PNG")  # a few kB, 56 million pixels
    with pytest.raises(PhotoRejected) as refused:
        check_photo(buffer.getvalue(), max_bytes=1_000_000)
    assert refused.value.status == 413 and "pixels" in refused.value.reason


def test_rate_limit_per_address_and_combined_windows() -> None:
    limiter = IntakeLimiter("2/minute;3/hour")
    assert limiter.hit("a") is None and limiter.hit("a") is None
    refusal = limiter.hit("a")
    assert refusal is not None and 0 < refusal.retry_after <= 60
    assert limiter.hit("b") is None
    with pytest.raises(ValueError, match="rate limit"):
        IntakeLimiter("lots")
