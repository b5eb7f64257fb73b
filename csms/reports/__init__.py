"""Driver fault reports: intake with photos, a tracking token, and a status that follows the
diagnosis the report started (see :mod:`csms.reports.service`)."""

from csms.reports.photos import Photo, PhotoRejected, check_photo
from csms.reports.service import FiledReport, ReportService, tracking_hash
from csms.reports.status import ReportStatus

__all__ = [
    "FiledReport",
    "Photo",
    "PhotoRejected",
    "ReportService",
    "ReportStatus",
    "check_photo",
    "tracking_hash",
]
