"""``objectdetection-backfill``: detect objects in a site's existing images.

Runs in its own process against the site's database, with a progress bar::

    objectdetection-backfill var/instance/etc/zope.conf --site Plone --mode missing

Each item is detected and committed on its own, so an interrupted run loses
nothing and a second run carries on (``--mode missing``). With FileStorage, stop
the Zope instance first (the file is locked) or use ``@detection-backfill``; with
ZEO or RelStorage it can run next to the instances.
"""

from __future__ import annotations

from collective.objectdetection import storage
from collective.objectdetection.backfill import find_candidates
from collective.objectdetection.backfill import MODES
from collective.objectdetection.backfill import request_again
from collective.objectdetection.processing import MARK_ONLY
from collective.objectdetection.queue import DetectionQueue
from collective.objectdetection.queue import Job
from collective.objectdetection.worker import DetectionWorker
from collective.objectdetection.worker import opened_site
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeRemainingColumn

import argparse
import sys
import transaction


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="objectdetection-backfill",
        description="Detect objects in the existing images of a Plone site.",
    )
    parser.add_argument("zope_conf", help="the instance's zope.conf")
    parser.add_argument(
        "--site", default="Plone", help="the site's id (default: Plone)"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="missing",
        help="missing: items not detected yet (default); all: every item again",
    )
    parser.add_argument("--path", default="", help="only below this site-relative path")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items")
    return parser.parse_args(argv)


def open_database(zope_conf: str):
    """The ZODB of the instance configured by ``zope_conf`` (as ``zconsole`` does)."""
    # Imported here: importing them starts configuring Zope.
    from Zope2.Startup.run import make_wsgi_app

    import Zope2

    make_wsgi_app({}, zope_conf)
    return Zope2.DB


def mark_pending(db, site_path: tuple[str, ...], args) -> list[str]:
    """Mark the candidates pending in one transaction; their UIDs."""
    with opened_site(db, site_path) as site:
        brains = find_candidates(site, args.mode, args.path, args.limit)
        uids = request_again(brains, MARK_ONLY)
        transaction.commit()
    return uids


def count_pending(db, site_path: tuple[str, ...], uids: list[str]) -> int:
    with opened_site(db, site_path) as site:
        return len(
            site.portal_catalog.unrestrictedSearchResults(
                UID=uids, detection_status=storage.PENDING
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    db = open_database(args.zope_conf)
    site_path = ("", args.site)
    uids = mark_pending(db, site_path, args)
    # The worker's steps, run here one item at a time: detect, record, commit.
    worker = DetectionWorker(DetectionQueue())
    columns = (
        TextColumn("[bold]detecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("backfill", total=len(uids))
        for uid in uids:
            worker.process(Job(db, site_path, uid))
            progress.advance(task)
    pending = count_pending(db, site_path, uids) if uids else 0
    print(
        f"{len(uids) - pending} of {len(uids)} items detected; "
        f"{pending} still pending (detector unavailable?)"
    )
    db.close()
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main())
