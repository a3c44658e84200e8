"""The thread that serves the detection queue, with its own ZODB connections.

Each job is done in three steps so no connection is held while the detector works:
read the image (one transaction), call the detector, record the outcome (another
transaction, retried on conflicts).
"""

from __future__ import annotations

from AccessControl.SecurityManagement import newSecurityManager
from AccessControl.SecurityManagement import noSecurityManager
from AccessControl.SpecialUsers import system as system_user
from collections.abc import Callable
from collections.abc import Iterator
from collective.objectdetection import logger
from collective.objectdetection import storage
from collective.objectdetection.detector import detect
from collective.objectdetection.images import digest
from collective.objectdetection.images import image_data
from collective.objectdetection.results import record_failure
from collective.objectdetection.results import record_postponed
from collective.objectdetection.results import record_result
from collective.objectdetection.settings import get_settings
from contextlib import contextmanager
from detector_service.errors import DetectorBusy
from detector_service.errors import DetectorError
from detector_service.errors import DetectorUnavailable
from detector_service.errors import InvalidImage
from Testing.makerequest import makerequest
from typing import TYPE_CHECKING
from ZODB.POSException import ConflictError
from zope.component.hooks import setSite
from zope.globalrequest import setRequest

import threading
import transaction


if TYPE_CHECKING:
    from collective.objectdetection.queue import DetectionQueue
    from collective.objectdetection.queue import Job


CONFLICT_RETRIES = 5
# Errors other than "detector down or busy" are retried this often, then the item fails.
MAX_ATTEMPTS = 5


@contextmanager
def opened_site(db, site_path: tuple[str, ...]) -> Iterator:
    """The site at ``site_path`` in a fresh connection and transaction of ``db``,
    as the system user."""
    transaction.begin()
    connection = db.open()
    try:
        app = makerequest(connection.root()["Application"])
        setRequest(app.REQUEST)
        site = app.unrestrictedTraverse("/".join(site_path))
        setSite(site)
        newSecurityManager(None, system_user)
        yield site
    finally:
        transaction.abort()
        noSecurityManager()
        setSite(None)
        setRequest(None)
        connection.close()


def find_item(site, uid: str):
    brains = site.portal_catalog.unrestrictedSearchResults(UID=uid)
    return brains[0]._unrestrictedGetObject() if brains else None


class DetectionWorker(threading.Thread):
    """Takes due jobs from the queue; pauses with growing delays while the detector
    is down or busy, and puts those jobs back."""

    retry_delay_min = 1.0
    retry_delay_max = 60.0

    def __init__(self, queue: DetectionQueue) -> None:
        super().__init__(name="collective.objectdetection worker", daemon=True)
        self.queue = queue
        self.stopping = threading.Event()
        self.retry_delay = 0.0

    def run(self) -> None:
        while not self.stopping.is_set():
            job = self.queue.get(timeout=1.0)
            if job is None:
                continue
            try:
                self.process(job)
            except Exception:
                if getattr(job.db, "storage", None) is None:
                    continue  # its database was closed (shutdown, end of a test)
                logger.exception("Detection job for %s failed", job.uid)
            finally:
                self.queue.done(job)

    def process(self, job: Job) -> None:
        with opened_site(job.db, job.site_path) as site:
            obj = find_item(site, job.uid)
            if obj is None or storage.status_of(obj) != storage.PENDING:
                return
            settings = get_settings()
            data = image_data(obj)
            attempts = storage.get_record(obj).attempts
        if not data:
            return
        image_digest = digest(data)
        try:
            result = detect(data, settings)
        except InvalidImage as exc:
            self.fail(job, image_digest, str(exc))
        except (DetectorUnavailable, DetectorBusy) as exc:
            self.postpone(job, image_digest, str(exc))
        except DetectorError as exc:
            if attempts + 1 >= MAX_ATTEMPTS:
                self.fail(job, image_digest, str(exc))
            else:
                self.postpone(job, image_digest, str(exc))
        else:
            self.retry_delay = 0.0
            self.record(
                job,
                image_digest,
                lambda obj: record_result(obj, result, image_digest, settings),
            )

    def fail(self, job: Job, image_digest: str, error: str) -> None:
        self.record(
            job, image_digest, lambda obj: record_failure(obj, error, image_digest)
        )

    def postpone(self, job: Job, image_digest: str, error: str) -> None:
        logger.info("Detection of %s postponed: %s", job.uid, error)
        self.record(job, image_digest, lambda obj: record_postponed(obj, error))
        self.retry_delay = min(
            max(self.retry_delay * 2, self.retry_delay_min), self.retry_delay_max
        )
        self.queue.put(job, self.retry_delay)
        # The detector is down for every item, not just this one: wait.
        self.stopping.wait(self.retry_delay)

    def record(self, job: Job, image_digest: str, apply: Callable) -> None:
        """Apply an outcome to the item, unless its image changed in the meantime."""
        for _ in range(CONFLICT_RETRIES):
            try:
                with opened_site(job.db, job.site_path) as site:
                    obj = find_item(site, job.uid)
                    record = storage.get_record(obj) if obj is not None else None
                    if record is None or record.digest != image_digest:
                        return
                    if record.status != storage.PENDING:
                        return
                    apply(obj)
                    transaction.commit()
                    return
            except ConflictError:
                logger.info("Conflict recording detection of %s; retrying", job.uid)
        logger.warning("Gave up recording detection of %s after conflicts", job.uid)


_worker: DetectionWorker | None = None
_worker_lock = threading.Lock()


def ensure_worker(queue: DetectionQueue) -> DetectionWorker:
    """The running worker of ``queue``, started on first use."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = DetectionWorker(queue)
            _worker.start()
        return _worker
