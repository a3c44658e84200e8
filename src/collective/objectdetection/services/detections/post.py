"""POST @detections: run detection again for the item's current image."""

from collective.objectdetection.processing import request_detection
from collective.objectdetection.services.detections.get import serialize_record
from collective.objectdetection.settings import get_settings
from plone.protect.interfaces import IDisableCSRFProtection
from plone.restapi.services import Service
from zope.interface import alsoProvides


class DetectionsPost(Service):
    def reply(self) -> dict:
        alsoProvides(self.request, IDisableCSRFProtection)
        request_detection(self.context, force=True)
        if not get_settings().synchronous:
            self.request.response.setStatus(202)
        return serialize_record(self.context, self.request)
