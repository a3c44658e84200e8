"""Event handlers: an image added or changed gets detected; a restart resumes."""

from collective.objectdetection import logger
from collective.objectdetection.processing import request_detection
from collective.objectdetection.queue import enqueue_pending
from collective.objectdetection.settings import is_installed
from collective.objectdetection.worker import opened_site
from plone.base.interfaces import IPloneSiteRoot
from ZODB.POSException import ConflictError
from zope.container.interfaces import IContainerModifiedEvent

import threading


def _request_detection(obj) -> None:
    # The upload must succeed whatever happens here.
    try:
        request_detection(obj)
    except ConflictError:
        raise
    except Exception:
        logger.exception("Could not request detection of %s", obj.absolute_url())


def image_added(obj, event) -> None:
    """Added, also by copy/paste or import: detection runs unless the copy already
    holds results for the same image data."""
    if is_installed():
        _request_detection(obj)


def image_modified(obj, event) -> None:
    """Edited: detection runs again only if the image data changed (digest)."""
    if not IContainerModifiedEvent.providedBy(event) and is_installed():
        _request_detection(obj)


def resume_pending(db) -> None:
    """Queue the items every site left pending when the process last stopped."""
    connection = db.open()
    try:
        sites = [
            site.getPhysicalPath()
            for site in connection.root()["Application"].objectValues()
            if IPloneSiteRoot.providedBy(site)
        ]
    finally:
        connection.close()
    for site_path in sites:
        with opened_site(db, site_path) as site:
            if is_installed():
                count = enqueue_pending(site)
                logger.info(
                    "%s: %d items pending detection", "/".join(site_path), count
                )


def database_opened(event) -> None:
    """At startup, look for pending items without delaying the startup."""
    threading.Thread(
        target=resume_pending,
        args=(event.database,),
        name="collective.objectdetection resume",
        daemon=True,
    ).start()
