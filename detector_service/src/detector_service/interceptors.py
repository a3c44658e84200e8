"""What every call goes through around its servicer method, in one place: the
caller's token, the number of calls at once, the refusal while shutting down, the
call's deadline, failures as status codes, one log line and the metrics.

Servicer methods stay plain: they return a reply, or raise :class:`CallFailed`
(or call ``context.abort``) with a status code. Health checks pass untouched, so
probes are answered whatever holds the server.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from detector_service.calls import CallFailed
from detector_service.metrics import ServerMetrics
from detector_service.wire import SERVICE_NAME

import grpc
import hmac
import logging
import threading
import time


log = logging.getLogger("detector_service.calls")
HEALTH_PREFIX = "/grpc.health.v1.Health/"
HEALTH_CHECK = HEALTH_PREFIX + "Check"
FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def method_name(path: str) -> str:
    """The name logs and metrics use: ``Detect`` for ``/detection.v1.Detector/Detect``,
    ``MLServer/predict`` for the other services' methods."""
    service, _, method = path.lstrip("/").rpartition("/")
    return method if service == SERVICE_NAME else f"{service}/{method}"


def call_deadline(time_remaining: float | None, limit: float, now: float) -> float:
    """The monotonic time by which a call must end: the caller's deadline, but never
    more than ``limit`` seconds away. Without a deadline gRPC reports no time or an
    enormous one, which no timer accepts."""
    if time_remaining is None:
        return now + limit
    return now + max(min(time_remaining, limit), 0.0)


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a failure ends its call with."""
    if isinstance(exc, CallFailed):
        return exc.code, exc.message
    return grpc.StatusCode.INTERNAL, f"internal error: {exc}"


class BoundedContext:
    """The servicer's view of its call's context: the real one, except that
    ``time_remaining()`` counts down to the server's bounded deadline and
    ``abort()`` ends the call through the interceptor (logged, counted)."""

    def __init__(self, context: grpc.ServicerContext, deadline: float) -> None:
        self._context = context
        self._deadline = deadline

    def time_remaining(self) -> float:
        return max(self._deadline - time.monotonic(), 0.0)

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise CallFailed(code, details)

    def __getattr__(self, name: str):
        return getattr(self._context, name)


class CallInterceptor(grpc.ServerInterceptor):
    """Admits, bounds, logs and counts every call but health checks.

    In this order: a call without the token (when one is set) is refused with
    ``UNAUTHENTICATED`` before it takes a slot; beyond ``limit`` calls at once the
    next is refused with ``RESOURCE_EXHAUSTED``; once ``closing`` is set, new calls
    are refused with ``UNAVAILABLE``. Health ``Watch`` needs no token and is not
    refused while closing (watchers are told NOT_SERVING), but takes a slot.

    The limit is counted here rather than by gRPC's ``maximum_concurrent_rpcs``,
    which counts health checks too (so slow or idle uploads made probes fail) and
    refuses without a log line or a metric. The server has threads beyond
    ``limit`` for health checks and refusals, which are quick.
    """

    def __init__(
        self,
        metrics: ServerMetrics,
        *,
        limit: int,
        max_call_seconds: float,
        token: str = "",
    ) -> None:
        self.metrics = metrics
        self.limit = limit
        self.max_call_seconds = max_call_seconds
        self.closing = threading.Event()
        self._expected = f"Bearer {token}".encode() if token else None
        self._slots = threading.BoundedSemaphore(limit)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        path = handler_call_details.method
        if handler is None or path == HEALTH_CHECK:
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        call = self._call(path, metadata, handler)
        factory = FACTORIES[handler.request_streaming, handler.response_streaming]
        return factory(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def refusal(self, path: str, metadata: dict) -> CallFailed | None:
        """Why a call may not start (token, shutdown), or ``None``."""
        health = path.startswith(HEALTH_PREFIX)
        if self._expected is not None and not health:
            given = str(metadata.get("authorization", "")).encode()
            if not hmac.compare_digest(given, self._expected):
                return CallFailed(
                    grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required"
                )
        if self.closing.is_set() and not health:
            return CallFailed(
                grpc.StatusCode.UNAVAILABLE, "the server is shutting down"
            )
        return None

    def _call(
        self, path: str, metadata: dict, handler: grpc.RpcMethodHandler
    ) -> Callable:
        behavior = (
            handler.unary_unary
            or handler.unary_stream
            or handler.stream_unary
            or handler.stream_stream
        )
        name = method_name(path)

        def unary_reply(request, context):
            with Call(self, name, context) as call:
                call.admit(self.refusal(path, metadata))
                return behavior(request, call.context)
            context.abort(call.code, call.message)

        def streamed_replies(request, context) -> Iterator:
            # The slot is held until the last reply is sent (health Watch,
            # reflection), not only until the method returns its iterator.
            with Call(self, name, context) as call:
                call.admit(self.refusal(path, metadata))
                yield from behavior(request, call.context)
                return
            context.abort(call.code, call.message)

        return streamed_replies if handler.response_streaming else unary_reply

    def take_slot(self) -> bool:
        return self._slots.acquire(blocking=False)

    def release_slot(self) -> None:
        self._slots.release()


class Call:
    """One call from admission to its log line; as a context manager it turns a
    failure into ``code`` and ``message`` (and swallows it: the caller aborts)."""

    def __init__(
        self, interceptor: CallInterceptor, method: str, context: grpc.ServicerContext
    ) -> None:
        self.interceptor = interceptor
        self.method = method
        self.raw_context = context
        self.started = time.perf_counter()
        deadline = call_deadline(
            context.time_remaining(), interceptor.max_call_seconds, time.monotonic()
        )
        self.context = BoundedContext(context, deadline)
        self.code = grpc.StatusCode.OK
        self.message = ""
        self._slot = False

    def admit(self, refusal: CallFailed | None) -> None:
        """Raise ``refusal``, else take a slot of the limit (or raise: none left)."""
        if refusal is not None:
            raise refusal
        if not self.interceptor.take_slot():
            raise CallFailed(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server is at its limit of {self.interceptor.limit} calls at once",
            )
        self._slot = True
        self.interceptor.metrics.in_progress.inc()

    def __enter__(self) -> Call:
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if self._slot:
            self.interceptor.metrics.in_progress.dec()
            self.interceptor.release_slot()
        if exc is not None and not isinstance(exc, Exception):
            # A streamed reply closed early (GeneratorExit): the caller went away.
            self.code, self.message = grpc.StatusCode.CANCELLED, "the caller went away"
            self._record()
            return False
        if exc is not None:
            self.code, self.message = status_of(exc)
            if self.code == grpc.StatusCode.INTERNAL:
                # A bug or a backend failure: logged in full, the server keeps serving.
                log.error(
                    "call failed",
                    exc_info=exc,
                    extra={"fields": {"method": self.method}},
                )
        self._record()
        return exc is not None

    def _record(self) -> None:
        seconds = time.perf_counter() - self.started
        self.interceptor.metrics.observe(self.method, self.code.name, seconds)
        fields = {
            "method": self.method,
            "code": self.code.name,
            "ms": round(seconds * 1000.0, 2),
            "peer": self.raw_context.peer(),
        }
        if self.message:
            fields["error"] = self.message
        log.info("call", extra={"fields": fields})
