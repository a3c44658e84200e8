"""PATCH @detections: the editor's corrections (hidden and added labels)."""

from collective.objectdetection import storage
from collective.objectdetection.permissions import EDIT_DETECTIONS
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.results import reindex
from collective.objectdetection.services.csrf import protect_write
from collective.objectdetection.services.detections.get import serialize_record
from collective.objectdetection.services.request_body import json_object
from collective.objectdetection.services.request_body import known_keys
from collective.objectdetection.services.request_body import string_list
from collective.objectdetection.settings import DetectionSettings
from collective.objectdetection.settings import get_settings
from plone.restapi.services import Service
from zExceptions import BadRequest


FIELDS = ("hidden_labels", "added_labels")


def _label_list(body: dict, key: str, settings: DetectionSettings) -> list[str] | None:
    """The labels at ``key``, within the site's limits (they are indexed, shown to
    everyone who may view the item and stored in every revision)."""
    labels = string_list(body, key)
    if labels is None:
        return None
    if len(labels) > settings.max_labels_per_item:
        raise BadRequest(
            f"{key}: at most {settings.max_labels_per_item} labels per item, "
            f"not {len(labels)}"
        )
    too_long = [label for label in labels if len(label) > settings.max_label_length]
    if too_long:
        raise BadRequest(
            f"{key}: labels have at most {settings.max_label_length} characters; "
            f"{len(too_long)} are longer"
        )
    return labels


class DetectionsPatch(Service):
    def reply(self) -> dict:
        require_permissions(self.context, *EDIT_DETECTIONS)
        protect_write(self.request)
        body = known_keys(json_object(self.request), FIELDS)
        settings = get_settings()
        storage.ensure_record(self.context).set_corrections(
            hidden_labels=_label_list(body, "hidden_labels", settings),
            added_labels=_label_list(body, "added_labels", settings),
        )
        reindex(self.context)
        return serialize_record(self.context, self.request)
