"""What the servicers of both contracts (``detection.v1`` and the 2018 ``MLServer``)
share: the loaded model, waiting for a detection, reading an uploaded stream, and
:class:`CallFailed`, how they end a call with a status code. Logs, metrics, the
deadline's bound and refusals are the interceptor's (``interceptors.py``).
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
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo
from typing import TypeVar

import grpc
import threading


M = TypeVar("M")


class CallFailed(Exception):
    """Ends a call with a gRPC status code and a message for the caller."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelCalls:
    """What the servicers of both contracts ask of the model: its description, a
    detection, an uploaded image read from a stream. Unavailable until the model
    is loaded.

    Waits end by the call's deadline, ``context.time_remaining()``, which the
    server's interceptor bounds by ``max_call_seconds`` (named in the messages).
    """

    def __init__(self, max_bytes: int, max_call_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.max_call_seconds = max_call_seconds
        self.queue: InferenceQueue | None = None
        self.info: ModelInfo | None = None

    def model_loaded(self, queue: InferenceQueue, info: ModelInfo) -> None:
        self.queue, self.info = queue, info

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
        self, data: bytes, options: DetectOptions, context: grpc.ServicerContext
    ) -> DetectionResult:
        """Queue one detection and wait for it until the call's deadline."""
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
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the deadline passed (the caller's, or the server's limit of "
                f"{self.max_call_seconds:g} s per call)",
            ) from exc
        except CallGone as exc:
            raise CallFailed(grpc.StatusCode.CANCELLED, str(exc)) from exc
        except InvalidImage as exc:
            raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc

    def receive(
        self,
        messages: Iterator[M],
        chunk: Callable[[M], bytes],
        context: grpc.ServicerContext,
    ) -> tuple[M | None, bytes]:
        """A stream's first message (``None`` if it was empty) and the image its
        chunks make up; refused as soon as they pass the byte limit, or when the
        stream has not ended by the call's deadline.

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
            return upload.result(timeout=context.time_remaining())
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


def check_options(options: DetectOptions) -> None:
    if not 0.0 <= options.min_score <= 1.0:
        raise CallFailed(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"min_score must be between 0 and 1, not {options.min_score}",
        )
