"""The in-process queue of items waiting for detection, filled after commit."""

from __future__ import annotations

from collective.objectdetection.worker import ensure_worker
from dataclasses import dataclass
from dataclasses import field
from plone import api
from plone.uuid.interfaces import IUUID
from typing import Any

import heapq
import itertools
import threading
import time
import transaction


@dataclass(frozen=True)
class Job:
    """Detect the item ``uid`` of the site at ``site_path`` in database ``db``."""

    db: Any = field(compare=False)
    site_path: tuple[str, ...]
    uid: str

    @property
    def key(self) -> tuple:
        return (id(self.db), self.site_path, self.uid)


class DetectionQueue:
    """A thread-safe queue of jobs, each due at a time; a job is queued at most once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Job]] = []
        self._due: dict[tuple, float] = {}
        self._in_progress: set[tuple] = set()
        self._order = itertools.count()

    def put(self, job: Job, delay: float = 0.0) -> None:
        due = time.monotonic() + delay
        with self._cond:
            if self._due.get(job.key, float("inf")) <= due:
                return  # already queued, and due sooner
            self._due[job.key] = due
            heapq.heappush(self._heap, (due, next(self._order), job))
            self._cond.notify()

    def get(self, timeout: float) -> Job | None:
        """The next due job, waiting at most ``timeout`` seconds for one; it counts
        as in progress until ``done``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                while (
                    self._heap
                    and self._due.get(self._heap[0][2].key) != self._heap[0][0]
                ):
                    heapq.heappop(self._heap)  # superseded by an earlier put
                if self._heap and self._heap[0][0] <= now:
                    _, _, job = heapq.heappop(self._heap)
                    del self._due[job.key]
                    self._in_progress.add(job.key)
                    return job
                wake = min(deadline, self._heap[0][0]) if self._heap else deadline
                if wake <= now:
                    return None
                self._cond.wait(wake - now)

    def done(self, job: Job) -> None:
        """The job taken by ``get`` is finished (or put back)."""
        with self._cond:
            self._in_progress.discard(job.key)

    def __len__(self) -> int:
        """Jobs waiting plus jobs in progress (a job put back counts once)."""
        with self._cond:
            return len(self._due.keys() | self._in_progress)


detection_queue = DetectionQueue()


def job_for(obj) -> Job:
    site = api.portal.get()
    return Job(site._p_jar.db(), site.getPhysicalPath(), IUUID(obj))


def _put_if_committed(success: bool, job: Job) -> None:
    if success:
        enqueue(job)


def enqueue(job: Job, delay: float = 0.0) -> None:
    detection_queue.put(job, delay)
    ensure_worker(detection_queue)


def enqueue_after_commit(obj) -> None:
    """Queue ``obj`` once the current transaction has committed (never before: the
    worker's connection must see the upload)."""
    transaction.get().addAfterCommitHook(_put_if_committed, args=(job_for(obj),))


def enqueue_pending(site) -> int:
    """Queue every item of ``site`` still pending (e.g. after a restart)."""
    catalog = api.portal.get_tool("portal_catalog")
    db = site._p_jar.db()
    brains = catalog.unrestrictedSearchResults(detection_status="pending")
    for brain in brains:
        enqueue(Job(db, site.getPhysicalPath(), brain.UID))
    return len(brains)
