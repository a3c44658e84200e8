"""What is known about the objects in one item's image: one annotation per item.

Machine results (replaced by every detection run) and editor corrections (hidden and
added labels, kept across runs) live side by side but apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collective.objectdetection.thresholds import min_score_for
from datetime import datetime
from datetime import UTC
from detector_service.types import Detection
from detector_service.types import DetectionResult
from persistent import Persistent
from types import MappingProxyType
from zope.annotation.interfaces import IAnnotations


ANNOTATION_KEY = "collective.objectdetection.record"

NONE = "none"
PENDING = "pending"
DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"
STATUSES = (NONE, PENDING, DONE, FAILED, SKIPPED)
EMPTY: Mapping[str, float] = MappingProxyType({})


def _now() -> datetime:
    return datetime.now(UTC)


def _labels(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v.strip() for v in values if v and v.strip()}))


def detection_dict(detection: Detection) -> dict:
    """A detection as stored and as answered by REST: plain, rounded values."""
    box = detection.box
    return {
        "label": detection.label,
        "score": round(float(detection.score), 4),
        "box": {
            "x_min": round(box.x_min, 1),
            "y_min": round(box.y_min, 1),
            "x_max": round(box.x_max, 1),
            "y_max": round(box.y_max, 1),
        },
    }


class DetectionRecord(Persistent):
    """Status, machine detections and editor corrections of one item.

    Detections are tuples of plain dicts (label, score, box in pixels of the stored
    original image) and are replaced as a whole, so persistence sees every change.
    """

    status: str = NONE
    detections: tuple[dict, ...] = ()
    model_name: str = ""
    model_version: str = ""
    digest: str = ""
    width: int = 0
    height: int = 0
    detected_at: datetime | None = None
    updated_at: datetime | None = None
    attempts: int = 0
    error: str = ""
    hidden_labels: tuple[str, ...] = ()
    added_labels: tuple[str, ...] = ()

    def mark_pending(self, digest: str) -> None:
        """A run is due for the image ``digest``.

        A new image restarts the count and drops the old image's machine results at
        once, so they are neither shown nor found while the new run is due.
        """
        if digest != self.digest:
            self._drop_machine_results()
            self.attempts = 0
        self.digest = digest
        self.status = PENDING
        self.error = ""
        self.updated_at = _now()

    def record_attempt(self, error: str = "") -> None:
        """A run was tried and must be retried later (detector down or busy)."""
        self.attempts += 1
        self.error = error
        self.updated_at = _now()

    def store_result(
        self, result: DetectionResult, digest: str, allow_list: Iterable[str] = ()
    ) -> None:
        """Replace the machine results; ``result`` is in original-image pixels."""
        allowed = set(allow_list)
        self.detections = tuple(
            detection_dict(d)
            for d in sorted(result.detections, key=lambda d: -d.score)
            if not allowed or d.label in allowed
        )
        self.model_name = result.model.name
        self.model_version = result.model.version
        self.width = result.image_width
        self.height = result.image_height
        self.digest = digest
        self.status = DONE
        self.attempts += 1
        self.error = ""
        self.detected_at = self.updated_at = _now()

    def mark_failed(self, error: str, digest: str = "") -> None:
        """No run can succeed for this image (e.g. the file is broken)."""
        self.status = FAILED
        self.digest = digest or self.digest
        self.attempts += 1
        self.error = error
        self.updated_at = _now()

    def mark_skipped(self, reason: str) -> None:
        """The item is not to be detected (no image, type or path not enabled)."""
        self.status = SKIPPED
        self.error = reason
        self.updated_at = _now()

    def clear_machine_results(self) -> None:
        """Forget the machine results; corrections stay.

        The digest stays too: the item is detected again when its image changes or
        on request, not on its next unrelated edit.
        """
        self._drop_machine_results()
        self.attempts = 0
        self.error = ""
        self.status = NONE
        self.updated_at = _now()

    def _drop_machine_results(self) -> None:
        self.detections = ()
        self.model_name = self.model_version = ""
        self.width = self.height = 0
        self.detected_at = None

    def set_corrections(
        self,
        hidden_labels: Iterable[str] | None = None,
        added_labels: Iterable[str] | None = None,
    ) -> None:
        """Replace the editor's corrections; ``None`` leaves that list as it is."""
        if hidden_labels is not None:
            self.hidden_labels = _labels(hidden_labels)
        if added_labels is not None:
            self.added_labels = _labels(added_labels)
        self.updated_at = _now()

    def machine_labels(
        self, min_score: float, label_min_scores: Mapping[str, float] = EMPTY
    ) -> tuple[str, ...]:
        return _labels(
            d["label"]
            for d in self.detections
            if d["score"] >= min_score_for(d["label"], min_score, label_min_scores)
        )

    def effective_labels(
        self, min_score: float, label_min_scores: Mapping[str, float] = EMPTY
    ) -> tuple[str, ...]:
        """What is indexed: machine labels at ``min_score`` or better (or at their
        own minimum in ``label_min_scores``), minus hidden, plus added."""
        hidden = set(self.hidden_labels)
        machine = {
            label
            for label in self.machine_labels(min_score, label_min_scores)
            if label not in hidden
        }
        return _labels(machine | set(self.added_labels))


def get_record(obj) -> DetectionRecord | None:
    """The item's record, or None if nothing was ever recorded."""
    annotations = IAnnotations(obj, None)
    if annotations is None:
        return None
    return annotations.get(ANNOTATION_KEY)


def ensure_record(obj) -> DetectionRecord:
    """The item's record, created on first use."""
    annotations = IAnnotations(obj)
    record = annotations.get(ANNOTATION_KEY)
    if record is None:
        record = annotations[ANNOTATION_KEY] = DetectionRecord()
    return record


def status_of(obj) -> str:
    record = get_record(obj)
    return record.status if record is not None else NONE
