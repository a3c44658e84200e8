"""GET @detection-status: counts by status, queue, detector health, backfill."""

from collective.objectdetection.permissions import MANAGE_SETTINGS
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.status import site_status
from plone.restapi.services import Service


class DetectionStatusGet(Service):
    def reply(self) -> dict:
        require_permissions(self.context, MANAGE_SETTINGS)
        return site_status(self.context)
