"""POST @detections: run detection again for the item's current image."""

from collective.objectdetection.permissions import EDIT_DETECTIONS
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.processing import request_detection
from collective.objectdetection.services.csrf import protect_write
from collective.objectdetection.services.detections.get import serialize_record
from collective.objectdetection.settings import get_settings
from plone.restapi.services import Service


class DetectionsPost(Service):
    def reply(self) -> dict:
        require_permissions(self.context, *EDIT_DETECTIONS)
        protect_write(self.request)
        request_detection(self.context, force=True)
        if not get_settings().synchronous:
            self.request.response.setStatus(202)
        return serialize_record(self.context, self.request)
