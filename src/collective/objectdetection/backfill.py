"""Backfill: request detection for existing content, and follow its progress.

Progress is derived from the catalog (how many of the backfilled items are still
pending), so it is right whichever thread or process does the detecting. It is
remembered per process and site.
"""

from __future__ import annotations

from collective.objectdetection import storage
from collective.objectdetection.processing import QUEUED
from collective.objectdetection.processing import request_detection
from collective.objectdetection.settings import get_settings
from dataclasses import dataclass
from datetime import datetime
from datetime import UTC
from plone import api

import threading


MODES = ("missing", "all")
# The mode of a run started by re-running single items (by UID).
RERUN = "uids"


@dataclass
class BackfillRun:
    mode: str
    uids: tuple[str, ...]
    started_at: datetime
    finished_at: datetime | None = None


_runs: dict[tuple[str, ...], BackfillRun] = {}
_runs_lock = threading.Lock()


def find_candidates(
    site, mode: str = "missing", path: str = "", limit: int = 0
) -> list:
    """Brains of enabled-type items below ``path`` (site-relative), oldest first:
    ``missing`` leaves out items already done or skipped (failed ones stay in)."""
    catalog = api.portal.get_tool("portal_catalog")
    root = "/".join(site.getPhysicalPath())
    query = {
        "portal_type": list(get_settings().enabled_types),
        "path": root + "/" + path.strip("/") if path.strip("/") else root,
        "sort_on": "created",
    }
    brains = catalog.unrestrictedSearchResults(**query)
    if mode == "missing":
        finished = {storage.DONE, storage.SKIPPED}
        brains = [b for b in brains if _status(b) not in finished]
    return list(brains[:limit] if limit else brains)


def _status(brain) -> str:
    """The item's detection status. The metadata column has ``Missing.Value`` for
    items never recorded (detection was off, or the add-on came later) and for
    items recorded before the add-on was reinstalled (the column is new): ask
    their record, so a reinstall does not send every image to the detector again."""
    status = brain.detection_status
    if isinstance(status, str):
        return status
    return storage.status_of(brain._unrestrictedGetObject())


def request_again(brains, how: str) -> list[str]:
    """Request detection of each item even if its image is unchanged: a backfill
    re-runs what it picked, failed items included. The UIDs now pending."""
    uids = []
    for brain in brains:
        obj = brain._unrestrictedGetObject()
        if request_detection(obj, force=True, how=how) == storage.PENDING:
            uids.append(brain.UID)
    return uids


def start_backfill(site, brains, mode: str) -> int:
    """Mark the items pending and queue them (never detected inside the request);
    how many were queued.

    A run of ``mode`` "missing" or "all" replaces the site's progress record; a
    re-run of single items (``RERUN``, e.g. the status page's Retry) joins a run
    still going instead of erasing its progress, and starts one otherwise.
    """
    uids = request_again(brains, QUEUED)
    key = site.getPhysicalPath()
    running = mode == RERUN and backfill_progress(site)["running"]
    with _runs_lock:
        run = _runs.get(key)
        if running and run is not None:
            run.uids = tuple(dict.fromkeys(run.uids + tuple(uids)))
        else:
            _runs[key] = BackfillRun(mode, tuple(uids), datetime.now(UTC))
    return len(uids)


def backfill_progress(site) -> dict:
    with _runs_lock:
        run = _runs.get(site.getPhysicalPath())
    if run is None:
        return {
            "running": False,
            "mode": None,
            "total": 0,
            "processed": 0,
            "started_at": None,
            "finished_at": None,
        }
    total = len(run.uids)
    pending = 0
    if total:
        catalog = api.portal.get_tool("portal_catalog")
        pending = len(
            catalog.unrestrictedSearchResults(
                UID=list(run.uids), detection_status="pending"
            )
        )
    processed = total - pending
    if processed == total and run.finished_at is None:
        run.finished_at = datetime.now(UTC)
    return {
        "running": processed < total,
        "mode": run.mode,
        "total": total,
        "processed": processed,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
