"""What every servicer method shares: the model slot, errors as status codes,
request logs and metrics. Both contracts (``detection.v1`` and the 2018
``MLServer``) run their calls through one :class:`CallHandler`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
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
import time


log = logging.getLogger("detector_service.calls")
T = TypeVar("T")


class CallFailed(Exception):
    """Ends a call with a gRPC status code and a message for the caller."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CallHandler:
    """Runs calls against the loaded model, or refuses them while there is none."""

    def __init__(self, metrics: ServerMetrics, max_bytes: int) -> None:
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.queue: InferenceQueue | None = None
        self.info: ModelInfo | None = None

    def model_loaded(self, queue: InferenceQueue, info: ModelInfo) -> None:
        self.queue, self.info = queue, info
        self.metrics.set_model(info)

    def model_info(self) -> ModelInfo:
        if self.info is None:
            raise CallFailed(grpc.StatusCode.UNAVAILABLE, "the model is still loading")
        return self.info

    def detect(
        self, data: bytes, options: DetectOptions, context: grpc.ServicerContext
    ) -> DetectionResult:
        """Queue one detection and wait for it within the call's deadline."""
        if self.queue is None:
            raise CallFailed(grpc.StatusCode.UNAVAILABLE, "the model is still loading")
        check_options(options)
        try:
            future = self.queue.submit(data, options, context.is_active)
        except QueueFull as exc:
            raise CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from exc
        try:
            return future.result(timeout=context.time_remaining())
        except FutureTimeout as exc:
            future.cancel()
            raise CallFailed(
                grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed"
            ) from exc
        except CallGone as exc:
            raise CallFailed(grpc.StatusCode.CANCELLED, str(exc)) from exc
        except InvalidImage as exc:
            raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc

    def join_chunks(self, chunks: Iterable[bytes]) -> bytes:
        """The streamed pieces of one image, refused as soon as they pass the limit."""
        parts: list[bytes] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > self.max_bytes:
                raise CallFailed(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the image has more than {self.max_bytes} bytes (the limit)",
                )
            parts.append(chunk)
        return b"".join(parts)

    def run(
        self, method: str, context: grpc.ServicerContext, work: Callable[[], T]
    ) -> T:
        """Run ``work``: log it, count it, turn its failures into statuses."""
        started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        self.metrics.in_progress.inc()
        try:
            return work()
        except CallFailed as exc:
            code, message = exc.code, exc.message
        except Exception as exc:  # a bug or a backend failure: the server keeps serving
            log.exception("call failed", extra={"fields": {"method": method}})
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {exc}"
        finally:
            self.metrics.in_progress.dec()
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
        context.abort(code, message)


def check_options(options: DetectOptions) -> None:
    if not 0.0 <= options.min_score <= 1.0:
        raise CallFailed(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"min_score must be between 0 and 1, not {options.min_score}",
        )
