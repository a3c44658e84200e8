"""Deciding whether an item needs detection, and getting it detected.

``request_detection`` is the single entry point for every trigger (upload, image
change, re-run, backfill); it never raises for detector trouble, so an upload never
fails because of the detector.
"""

from __future__ import annotations

from collective.objectdetection import logger
from collective.objectdetection import storage
from collective.objectdetection.detector import detect
from collective.objectdetection.images import digest
from collective.objectdetection.images import image_data
from collective.objectdetection.queue import enqueue_after_commit
from collective.objectdetection.results import record_failure
from collective.objectdetection.results import record_postponed
from collective.objectdetection.results import record_result
from collective.objectdetection.results import reindex
from collective.objectdetection.settings import DetectionSettings
from collective.objectdetection.settings import get_settings
from detector_service.errors import DetectorError
from detector_service.errors import InvalidImage
from plone import api


def site_relative_path(obj) -> str:
    site_path = api.portal.get().getPhysicalPath()
    return "/".join(obj.getPhysicalPath()[len(site_path) :])


def is_enabled_type(obj, settings: DetectionSettings) -> bool:
    return getattr(obj, "portal_type", None) in settings.enabled_types


# Statuses an unchanged image keeps without a forced run (NONE with a digest: its
# machine results were deleted on purpose).
SETTLED = (storage.DONE, storage.FAILED, storage.NONE)

# How request_detection gets a pending item detected.
BY_SETTINGS = "settings"  # the site's processing mode: now (sync) or queued (async)
QUEUED = "queued"  # queued after commit whatever the mode (backfills)
MARK_ONLY = "mark"  # only marked pending: the caller detects (the backfill script)


def request_detection(obj, force: bool = False, how: str = BY_SETTINGS) -> str:
    """Mark ``obj`` pending and get it detected, now or after commit (see ``how``).

    Without ``force``, an image already detected, found broken, or whose machine
    results were deleted, with the same digest, is left alone, so other edits and
    copies keep their results. Returns the item's status afterwards.
    """
    settings = get_settings()
    if not is_enabled_type(obj, settings):
        return storage.status_of(obj)
    record = storage.ensure_record(obj)
    if settings.is_excluded(site_relative_path(obj)):
        return _skip(obj, record, "excluded path")
    data = image_data(obj)
    if not data:
        return _skip(obj, record, "no image")
    image_digest = digest(data)
    unchanged = record.digest == image_digest
    if unchanged and not force and record.status in SETTLED:
        return record.status
    record.mark_pending(image_digest)
    if how == BY_SETTINGS and settings.synchronous:
        run_now(obj, data, settings)
    elif how != MARK_ONLY:
        enqueue_after_commit(obj)
    reindex(obj)
    return record.status


def _skip(obj, record: storage.DetectionRecord, reason: str) -> str:
    if record.status != storage.SKIPPED or record.error != reason:
        record.mark_skipped(reason)
        reindex(obj)
    return record.status


def run_now(obj, data: bytes, settings: DetectionSettings) -> None:
    """Detect inside the current transaction; detector trouble leaves it pending."""
    image_digest = digest(data)
    try:
        result = detect(data, settings)
    except InvalidImage as exc:
        record_failure(obj, str(exc), image_digest)
    except DetectorError as exc:
        logger.warning("Detection of %s postponed: %s", obj.absolute_url(), exc)
        record_postponed(obj, str(exc))
        enqueue_after_commit(obj)
    except Exception as exc:  # an upload must not fail because of detection
        logger.exception("Detection of %s failed", obj.absolute_url())
        record_failure(obj, f"{type(exc).__name__}: {exc}", image_digest)
    else:
        record_result(obj, result, image_digest, settings)
