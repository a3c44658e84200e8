"""GET @detection-status: counts by status, queue, detector health, backfill."""

from collective.objectdetection.status import site_status
from plone.restapi.services import Service


class DetectionStatusGet(Service):
    def reply(self) -> dict:
        return site_status(self.context)
