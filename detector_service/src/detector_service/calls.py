"""What every servicer method shares: the model slot, the call's deadline, errors
as status codes, request logs and metrics. Both contracts (``detection.v1`` and the
2018 ``MLServer``) run their calls through one :class:`CallHandler`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from detector_service.decoding import too_many_bytes
from detector_service.errors import InvalidImage
from detector_service.inference import CallGone
from detector_service.inference import InferenceQueue
from detector_service.inference import QueueFull
from detector_service.metrics import ServerMetrics
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo
from typing import TypeVar

import grpc
import logging
import threading
import time


log = logging.getLogger("detector_service.calls")
T = TypeVar("T")
M = TypeVar("M")


class CallFailed(Exception):
    """Ends a call with a gRPC status code and a message for the caller."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CallHandler:
    """Runs calls against the loaded model, or refuses them while there is none
    and once the server is shutting down.

    Every call gets a deadline: the caller's, but never more than
    ``max_call_seconds`` away (a call without a deadline has an infinite one).
    """

    def __init__(
        self, metrics: ServerMetrics, max_bytes: int, max_call_seconds: float
    ) -> None:
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.max_call_seconds = max_call_seconds
        self.queue: InferenceQueue | None = None
        self.info: ModelInfo | None = None
        self.closing = threading.Event()

    def model_loaded(self, queue: InferenceQueue, info: ModelInfo) -> None:
        self.queue, self.info = queue, info
        self.metrics.set_model(info)

    def model_info(self) -> ModelInfo:
        if self.info is None:
            raise CallFailed(grpc.StatusCode.UNAVAILABLE, "the model is still loading")
        return self.info

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise CallFailed(
                grpc.StatusCode.INVALID_ARGUMENT, too_many_bytes(self.max_bytes)
            )

    def detect(
        self,
        data: bytes,
        options: DetectOptions,
        context: grpc.ServicerContext,
        deadline: float,
    ) -> DetectionResult:
        """Queue one detection and wait for it until ``deadline``."""
        if self.queue is None:
            raise CallFailed(grpc.StatusCode.UNAVAILABLE, "the model is still loading")
        check_options(options)
        try:
            future = self.queue.submit(data, options, context.is_active)
        except QueueFull as exc:
            raise CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from exc
        try:
            return future.result(timeout=_seconds_until(deadline))
        except FutureTimeout as exc:
            future.cancel()
            raise CallFailed(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the deadline passed (the caller's, or the server's limit of "
                f"{self.max_call_seconds:g} s per call)",
            ) from exc
        except CallGone as exc:
            raise CallFailed(grpc.StatusCode.CANCELLED, str(exc)) from exc
        except InvalidImage as exc:
            raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc

    def receive(
        self, messages: Iterator[M], chunk: Callable[[M], bytes], deadline: float
    ) -> tuple[M | None, bytes]:
        """A stream's first message (``None`` if it was empty) and the image its
        chunks make up; refused as soon as they pass the byte limit, or when the
        stream has not ended by ``deadline``.

        The stream is read on a thread of its own: gRPC's request iterator waits
        for the next message without a timeout, so only this way can the call
        give up on a client that sends nothing and never closes its stream.
        """
        upload: Future[tuple[M | None, bytes]] = Future()
        reader = threading.Thread(
            target=self._read,
            args=(messages, chunk, upload),
            name="upload",
            daemon=True,
        )
        reader.start()
        try:
            return upload.result(timeout=_seconds_until(deadline))
        except FutureTimeout as exc:
            raise CallFailed(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"upload too slow: the stream did not end within the deadline "
                f"(the caller's, or the server's limit of "
                f"{self.max_call_seconds:g} s per call)",
            ) from exc

    def _read(
        self,
        messages: Iterator[M],
        chunk: Callable[[M], bytes],
        upload: Future[tuple[M | None, bytes]],
    ) -> None:
        first: M | None = None
        parts: list[bytes] = []
        size = 0
        try:
            for message in messages:
                first = message if first is None else first
                part = chunk(message)
                size += len(part)
                self.check_size(size)
                parts.append(part)
        except grpc.RpcError:
            # The caller cancelled, or its deadline passed: nobody is listening.
            upload.set_exception(
                CallFailed(grpc.StatusCode.CANCELLED, "the caller went away")
            )
        except BaseException as exc:  # handed to the waiting call, which reports it
            upload.set_exception(exc)
        else:
            upload.set_result((first, b"".join(parts)))

    def run(
        self,
        method: str,
        context: grpc.ServicerContext,
        work: Callable[[float], T],
    ) -> T:
        """Run ``work(deadline)``: log it, count it, turn its failures into statuses."""
        started = time.perf_counter()
        deadline = time.monotonic() + min(
            context.time_remaining(), self.max_call_seconds
        )
        code, message = grpc.StatusCode.OK, ""
        self.metrics.in_progress.inc()
        try:
            if self.closing.is_set():
                raise CallFailed(
                    grpc.StatusCode.UNAVAILABLE, "the server is shutting down"
                )
            return work(deadline)
        except CallFailed as exc:
            code, message = exc.code, exc.message
        except Exception as exc:  # a bug or a backend failure: the server keeps serving
            log.exception("call failed", extra={"fields": {"method": method}})
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {exc}"
        finally:
            self.metrics.in_progress.dec()
            self._record(method, context, code, message, started)
        context.abort(code, message)

    def refuse(
        self,
        method: str,
        context: grpc.ServicerContext,
        code: grpc.StatusCode,
        message: str,
    ) -> None:
        """End a call that is not let in (token, call limit), logged and counted
        like any other."""
        self._record(method, context, code, message, time.perf_counter())
        context.abort(code, message)

    def _record(
        self,
        method: str,
        context: grpc.ServicerContext,
        code: grpc.StatusCode,
        message: str,
        started: float,
    ) -> None:
        seconds = time.perf_counter() - started
        self.metrics.observe(method, code.name, seconds)
        fields = {
            "method": method,
            "code": code.name,
            "ms": round(seconds * 1000.0, 2),
            "peer": context.peer(),
        }
        if message:
            fields["error"] = message
        log.info("call", extra={"fields": fields})


def check_options(options: DetectOptions) -> None:
    if not 0.0 <= options.min_score <= 1.0:
        raise CallFailed(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"min_score must be between 0 and 1, not {options.min_score}",
        )


def _seconds_until(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)
