"""PATCH @detections: the editor's corrections (hidden and added labels)."""

from collective.objectdetection import storage
from collective.objectdetection.permissions import EDIT_DETECTIONS
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.results import reindex
from collective.objectdetection.services.csrf import protect_write
from collective.objectdetection.services.detections.get import serialize_record
from collective.objectdetection.services.request_body import json_object
from plone.restapi.services import Service
from zExceptions import BadRequest


def _label_list(body: dict, key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return value


class DetectionsPatch(Service):
    def reply(self) -> dict:
        require_permissions(self.context, *EDIT_DETECTIONS)
        protect_write(self.request)
        body = json_object(self.request)
        storage.ensure_record(self.context).set_corrections(
            hidden_labels=_label_list(body, "hidden_labels"),
            added_labels=_label_list(body, "added_labels"),
        )
        reindex(self.context)
        return serialize_record(self.context, self.request)
