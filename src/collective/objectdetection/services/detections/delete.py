"""DELETE @detections: forget the machine results; the corrections stay."""

from collective.objectdetection import storage
from collective.objectdetection.permissions import EDIT_DETECTIONS
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.results import reindex
from collective.objectdetection.services.csrf import protect_write
from plone.restapi.services import Service


class DetectionsDelete(Service):
    def reply(self) -> None:
        require_permissions(self.context, *EDIT_DETECTIONS)
        protect_write(self.request)
        record = storage.get_record(self.context)
        if record is not None:
            record.clear_machine_results()
            reindex(self.context)
        return self.reply_no_content()
