"""GET @detections: what was found in the item's image (also ?expand=detections)."""

from collective.objectdetection import storage
from collective.objectdetection.indexers.indexers import effective_labels
from collective.objectdetection.interfaces import IObjectDetectionLayer
from collective.objectdetection.labels import label_title
from collective.objectdetection.permissions import can_edit_detections
from collective.objectdetection.settings import get_settings
from plone.restapi.interfaces import IExpandableElement
from plone.restapi.services import Service
from zope.component import adapter
from zope.interface import implementer
from zope.interface import Interface


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def serialize_record(context, request) -> dict:
    """The REST shape of the item's record (see docs/plone-addon.md)."""
    record = storage.get_record(context) or storage.DetectionRecord()
    settings = get_settings()
    hidden = set(record.hidden_labels)
    return {
        "@id": f"{context.absolute_url()}/@detections",
        "status": record.status,
        "labels": list(effective_labels(context)),
        "detections": [
            {
                "label": d["label"],
                "title": label_title(d["label"], context=request),
                "score": d["score"],
                "box": dict(d["box"]),
                "hidden": d["label"] in hidden,
            }
            for d in record.detections
        ],
        "label_titles": {
            label: label_title(label, context=request)
            for label in {
                *(d["label"] for d in record.detections),
                *record.added_labels,
                *record.hidden_labels,
            }
        },
        "added_labels": list(record.added_labels),
        "hidden_labels": list(record.hidden_labels),
        "image": (
            {"width": record.width, "height": record.height, "digest": record.digest}
            if record.width
            else None
        ),
        "model": (
            {"name": record.model_name, "version": record.model_version}
            if record.model_name
            else None
        ),
        "min_score": settings.min_score,
        "label_min_scores": dict(settings.label_min_scores),
        "attempts": record.attempts,
        "error": record.error,
        "detected_at": _iso(record.detected_at),
        "updated_at": _iso(record.updated_at),
        "can_edit": can_edit_detections(context),
    }


@implementer(IExpandableElement)
@adapter(Interface, IObjectDetectionLayer)
class Detections:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __call__(self, expand: bool = False) -> dict:
        result = {"detections": {"@id": f"{self.context.absolute_url()}/@detections"}}
        if expand:
            result["detections"] = serialize_record(self.context, self.request)
        return result


class DetectionsGet(Service):
    def reply(self) -> dict:
        return serialize_record(self.context, self.request)
