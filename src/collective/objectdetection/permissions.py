"""The add-on's permissions (declared in permissions.zcml) and their checks.

The REST services check their permissions here rather than in ZCML: Zope answers a
failed ZCML check with 401 even for a logged-in user, who should get 403.
"""

from plone import api
from zExceptions import Forbidden
from zExceptions import Unauthorized


RUN_DETECTION = "collective.objectdetection: Run detection"
MANAGE_SETTINGS = "collective.objectdetection: Manage settings"
MODIFY_PORTAL_CONTENT = "Modify portal content"
# The detections are part of the item's indexed metadata: changing them takes
# both, so a Contributor cannot change the detections of others' items.
EDIT_DETECTIONS = (RUN_DETECTION, MODIFY_PORTAL_CONTENT)


def has_permissions(obj, permissions: tuple[str, ...]) -> bool:
    return all(api.user.has_permission(p, obj=obj) for p in permissions)


def can_edit_detections(obj) -> bool:
    """May the user re-run, correct or delete the detections of ``obj``?"""
    return has_permissions(obj, EDIT_DETECTIONS)


def require_permissions(obj, *permissions: str) -> None:
    """Refuse unless the user has every one of ``permissions`` on ``obj``: 401 for
    anonymous (logging in may help), 403 for a logged-in user."""
    if has_permissions(obj, permissions):
        return
    if api.user.is_anonymous():
        raise Unauthorized("You are not allowed to do this; log in first")
    raise Forbidden("You are not allowed to do this")
