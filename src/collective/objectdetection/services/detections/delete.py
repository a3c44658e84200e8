"""DELETE @detections: forget the machine results; the corrections stay."""

from collective.objectdetection import storage
from collective.objectdetection.results import reindex
from plone.protect.interfaces import IDisableCSRFProtection
from plone.restapi.services import Service
from zope.interface import alsoProvides


class DetectionsDelete(Service):
    def reply(self) -> None:
        alsoProvides(self.request, IDisableCSRFProtection)
        record = storage.get_record(self.context)
        if record is not None:
            record.clear_machine_results()
            reindex(self.context)
        return self.reply_no_content()
