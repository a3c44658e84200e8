"""DELETE @detections: forget the machine results; the corrections stay."""

from collective.objectdetection import storage
from collective.objectdetection.results import reindex
from collective.objectdetection.services.csrf import protect_write
from plone.restapi.services import Service


class DetectionsDelete(Service):
    def reply(self) -> None:
        protect_write(self.request)
        record = storage.get_record(self.context)
        if record is not None:
            record.clear_machine_results()
            reindex(self.context)
        return self.reply_no_content()
