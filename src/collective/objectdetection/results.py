"""Recording a detection outcome on an item and updating its catalog entry."""

from __future__ import annotations

from collective.objectdetection import storage
from collective.objectdetection.settings import DetectionSettings
from detector_service.types import DetectionResult


INDEXES = ["detected_objects", "detection_status", "SearchableText"]


def reindex(obj) -> None:
    """Update our indexes and the metadata, leaving the modification date alone."""
    obj.reindexObject(idxs=INDEXES)


def record_result(
    obj, result: DetectionResult, image_digest: str, settings: DetectionSettings
) -> None:
    storage.ensure_record(obj).store_result(
        result, image_digest, settings.label_allow_list
    )
    reindex(obj)


def record_failure(obj, error: str, image_digest: str) -> None:
    storage.ensure_record(obj).mark_failed(error, image_digest)
    reindex(obj)


def record_postponed(obj, error: str) -> None:
    """A try failed for a passing reason (detector down or busy): stays pending."""
    storage.ensure_record(obj).record_attempt(error)
