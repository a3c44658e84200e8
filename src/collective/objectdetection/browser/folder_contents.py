"""Folder contents action "Detect objects": re-run detection for the selection."""

from collective.objectdetection import _
from collective.objectdetection.permissions import can_edit_detections
from collective.objectdetection.permissions import RUN_DETECTION
from collective.objectdetection.processing import is_enabled_type
from collective.objectdetection.processing import request_detection
from collective.objectdetection.settings import get_settings
from plone.app.content.browser.contents import ContentsBaseAction
from plone.app.content.interfaces import IStructureAction
from plone.base import PloneMessageFactory as PMF
from zope.i18n import translate
from zope.interface import implementer


@implementer(IStructureAction)
class DetectObjectsAction:
    """The button; without a form, the folder contents app posts the selection
    (UIDs) with the CSRF token to ``url``."""

    order = 8

    def __init__(self, context, request) -> None:
        self.context = context
        self.request = request

    def get_options(self) -> dict:
        return {
            "title": translate(_("Detect objects"), context=self.request),
            "tooltip": translate(
                _("Detect the objects in the selected images again"),
                context=self.request,
            ),
            "id": "detect-objects",
            "icon": "bounding-box",
            "url": self.context.absolute_url() + "/@@fc-detect-objects",
        }


class DetectObjectsActionView(ContentsBaseAction):
    """Re-runs detection of each selected item whose detections the user may change.

    The base class checks the CSRF token and POST, finds the items by UID and
    reports missing ones and those the permission check refused (with plone's
    message, which we reuse for our own check).
    """

    # Run detection here; Modify portal content too, checked in ``action``.
    required_obj_permission = RUN_DETECTION
    success_msg = _("Detection started for the selected items")
    failure_msg = _("Detection could not be started for all selected items")

    def action(self, obj) -> None:
        if not can_edit_detections(obj):
            self.errors.append(
                PMF(
                    'Permission denied for "${title}"',
                    mapping={"title": self.objectTitle(obj)},
                )
            )
            return
        if not is_enabled_type(obj, get_settings()):
            self.errors.append(
                _(
                    'Detection is not enabled for "${title}"',
                    mapping={"title": self.objectTitle(obj)},
                )
            )
            return
        request_detection(obj, force=True)
