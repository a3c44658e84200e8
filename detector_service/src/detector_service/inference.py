"""Bounded concurrency: a fixed number of inference workers behind a bounded queue.

The model is the scarce resource (CPU cores), so at most ``workers`` images are
decoded and inferred at a time and at most ``queue_size`` calls wait. A full queue
is refused at once (backpressure) instead of letting latency grow without bound,
and a queued call whose caller has gone (deadline passed, cancelled) is dropped
without running.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from dataclasses import field
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions

import queue
import threading


Pipeline = Callable[[bytes, DetectOptions], DetectionResult]


class QueueFull(Exception):
    """Every worker is busy and the queue holds as many calls as it may."""


class CallGone(Exception):
    """The caller stopped waiting before a worker reached its call."""


@dataclass
class Job:
    data: bytes
    options: DetectOptions
    # False once the caller has gone: the job is then skipped.
    is_active: Callable[[], bool]
    future: Future = field(default_factory=Future)


class InferenceQueue:
    def __init__(
        self,
        pipeline: Pipeline,
        workers: int,
        queue_size: int,
        on_depth: Callable[[int], None] = lambda depth: None,
        on_skip: Callable[[], None] = lambda: None,
    ) -> None:
        self._pipeline = pipeline
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._capacity = queue_size
        self._waiting = 0
        self._lock = threading.Lock()
        self._on_depth = on_depth
        self._on_skip = on_skip
        self._threads = [
            threading.Thread(target=self._work, name=f"inference-{n}", daemon=True)
            for n in range(workers)
        ]
        self._idle = workers
        for thread in self._threads:
            thread.start()

    def submit(
        self, data: bytes, options: DetectOptions, is_active: Callable[[], bool]
    ) -> Future:
        """Queue one detection; raise :class:`QueueFull` when there is no room."""
        job = Job(data, options, is_active)
        with self._lock:
            # An idle worker takes the job at once; only the rest count as waiting.
            if self._idle == 0 and self._waiting >= self._capacity:
                raise QueueFull(
                    f"all {len(self._threads)} workers are busy and "
                    f"{self._waiting} calls are waiting"
                )
            if self._idle:
                self._idle -= 1
            else:
                self._waiting += 1
            self._jobs.put(job)
            self._on_depth(self._waiting)
        return job.future

    def close(self) -> None:
        """Let the workers finish their current job and stop."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._run(job)
            with self._lock:
                if self._waiting:
                    # The next queued job is this worker's; it stops waiting.
                    self._waiting -= 1
                else:
                    self._idle += 1
                self._on_depth(self._waiting)

    def _run(self, job: Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            self._on_skip()  # the waiting call gave up and cancelled it
            return
        if not job.is_active():
            self._on_skip()
            job.future.set_exception(CallGone("the caller stopped waiting"))
            return
        try:
            job.future.set_result(self._pipeline(job.data, job.options))
        except BaseException as exc:  # handed to the waiting call, which reports it
            job.future.set_exception(exc)
