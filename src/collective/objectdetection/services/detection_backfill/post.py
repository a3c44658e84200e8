"""POST @detection-backfill: queue existing content for detection."""

from collective.objectdetection.backfill import backfill_progress
from collective.objectdetection.backfill import find_candidates
from collective.objectdetection.backfill import MODES
from collective.objectdetection.backfill import RERUN
from collective.objectdetection.backfill import start_backfill
from collective.objectdetection.permissions import MANAGE_SETTINGS
from collective.objectdetection.permissions import require_permissions
from collective.objectdetection.services.csrf import protect_write
from collective.objectdetection.services.request_body import json_object
from collective.objectdetection.services.request_body import known_keys
from collective.objectdetection.services.request_body import non_negative_int
from collective.objectdetection.services.request_body import string_list
from plone import api
from plone.restapi.services import Service
from zExceptions import BadRequest


# {"uids": [...]} re-runs those items; otherwise mode, path and limit pick them.
FIELDS = ("uids", "mode", "path", "limit")


class DetectionBackfillPost(Service):
    def reply(self) -> dict:
        require_permissions(self.context, MANAGE_SETTINGS)
        protect_write(self.request)
        body = known_keys(json_object(self.request), FIELDS)
        uids = string_list(body, "uids")
        if uids is not None:
            catalog = api.portal.get_tool("portal_catalog")
            brains = catalog.unrestrictedSearchResults(UID=uids) if uids else []
            queued = start_backfill(self.context, brains, RERUN)
        else:
            mode = body.get("mode", "missing")
            if not isinstance(mode, str) or mode not in MODES:
                raise BadRequest(f"mode must be one of {', '.join(MODES)}")
            limit = non_negative_int(body, "limit")
            path = body.get("path") or ""
            if not isinstance(path, str):
                raise BadRequest("path must be a string")
            brains = find_candidates(
                self.context, mode, _site_relative(self.context, path), limit
            )
            queued = start_backfill(self.context, brains, mode)
        self.request.response.setStatus(202)
        return {"queued": queued, **backfill_progress(self.context)}


def _site_relative(site, path: str) -> str:
    """Accept a physical path (/Plone/folder) or a site-relative one (/folder)."""
    site_path = "/".join(site.getPhysicalPath())
    if path == site_path or path.startswith(site_path + "/"):
        return path[len(site_path) :]
    return path
