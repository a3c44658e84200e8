"""The site's detection status: counts, queue, detector health, failures."""

from __future__ import annotations

from collective.objectdetection import storage
from collective.objectdetection.backfill import backfill_progress
from collective.objectdetection.detector import get_client
from collective.objectdetection.queue import detection_queue
from collective.objectdetection.settings import get_settings
from detector_service.errors import DetectorError
from plone import api


MAX_FAILURES = 20


def status_counts() -> dict[str, int]:
    """Items per status; ``none`` counts enabled-type items never recorded."""
    catalog = api.portal.get_tool("portal_catalog")
    index = catalog._catalog.getIndex("detection_status")
    counts = dict.fromkeys(storage.STATUSES, 0)
    for status, count in index.uniqueValues(withLengths=True):
        counts[status] = counts.get(status, 0) + count
    recorded = len(
        catalog.unrestrictedSearchResults(
            portal_type=list(get_settings().enabled_types),
            detection_status=list(storage.STATUSES),
        )
    )
    enabled = len(
        catalog.unrestrictedSearchResults(
            portal_type=list(get_settings().enabled_types)
        )
    )
    counts[storage.NONE] += max(0, enabled - recorded)
    return counts


# The status page asks on every poll; a hung detector must not hold the request for
# the whole detection timeout.
HEALTH_TIMEOUT_SECONDS = 2.0


def detector_health() -> dict:
    settings = get_settings()
    timeout = min(settings.timeout_seconds, HEALTH_TIMEOUT_SECONDS)
    answer = {
        "status": "UNAVAILABLE",
        "addresses": list(settings.detector_addresses),
        "model": None,
        "error": "",
    }
    try:
        client = get_client(settings)
        answer["status"] = client.health(timeout=timeout)
        if answer["status"] == "UNAVAILABLE":
            # The client says so without an exception: connection refused or silent.
            addresses = ", ".join(settings.detector_addresses)
            answer["error"] = f"no answer from {addresses} within {timeout:g} s"
        if answer["status"] == "SERVING":
            info = client.model_info(timeout=timeout)
            answer["model"] = {
                "name": info.name,
                "version": info.version,
                "framework": info.framework,
            }
    except DetectorError as exc:
        answer["status"] = "UNAVAILABLE"
        answer["error"] = str(exc)
    return answer


# Recently changed items looked at for the model of the stored detections.
RECENT_RECORDS = 20


def recorded_model() -> dict | None:
    """The model of the latest detection stored on the site's content (of the
    recently changed items): what is in use even while the detector is down."""
    catalog = api.portal.get_tool("portal_catalog")
    brains = catalog.unrestrictedSearchResults(
        detection_status=storage.DONE, sort_on="modified", sort_order="descending"
    )[:RECENT_RECORDS]
    records = [storage.get_record(brain._unrestrictedGetObject()) for brain in brains]
    dated = [r for r in records if r is not None and r.model_name and r.detected_at]
    if not dated:
        return None
    latest = max(dated, key=lambda record: record.detected_at)
    return {
        "name": latest.model_name,
        "version": latest.model_version,
        "detected_at": latest.detected_at.isoformat(),
    }


def recent_failures() -> list[dict]:
    catalog = api.portal.get_tool("portal_catalog")
    brains = catalog.unrestrictedSearchResults(
        detection_status=storage.FAILED, sort_on="modified", sort_order="descending"
    )[:MAX_FAILURES]
    failures = []
    for brain in brains:
        record = storage.get_record(brain._unrestrictedGetObject())
        failures.append(
            {
                "@id": brain.getURL(),
                "UID": brain.UID,
                "title": brain.Title,
                "error": record.error if record else "",
                "attempts": record.attempts if record else 0,
            }
        )
    return failures


def site_status(site) -> dict:
    return {
        "counts": status_counts(),
        "queue": {
            "length": len(detection_queue),
            "mode": get_settings().processing_mode,
        },
        "detector": detector_health(),
        "recorded_model": recorded_model(),
        "backfill": backfill_progress(site),
        "failures": recent_failures(),
    }
