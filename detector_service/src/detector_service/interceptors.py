"""Checks made before a servicer method runs: the caller's token and the number of
calls at once. A refused call is logged and counted like any other
(:meth:`CallHandler.refuse`).
"""

from __future__ import annotations

from collections.abc import Callable
from detector_service.calls import CallHandler
from detector_service.wire import SERVICE_NAME

import grpc
import hmac
import threading


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


def with_behavior(
    handler: grpc.RpcMethodHandler, behavior: Callable
) -> grpc.RpcMethodHandler:
    """A handler like ``handler`` (shape, serializers) that runs ``behavior``."""
    factory = FACTORIES[handler.request_streaming, handler.response_streaming]
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def behavior_of(handler: grpc.RpcMethodHandler) -> Callable:
    return (
        handler.unary_unary
        or handler.unary_stream
        or handler.stream_unary
        or handler.stream_stream
    )


class TokenAuth(grpc.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>``; health stays open
    so that load balancers and orchestrators can probe without the secret."""

    def __init__(self, token: str, calls: CallHandler) -> None:
        self._expected = f"Bearer {token}".encode()
        self._calls = calls

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(HEALTH_PREFIX):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = str(metadata.get("authorization", "")).encode()
        if hmac.compare_digest(given, self._expected):
            return handler
        name = method_name(method)

        def deny(request, context):
            self._calls.refuse(
                name,
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid bearer token is required",
            )

        return with_behavior(handler, deny)


class CallLimit(grpc.ServerInterceptor):
    """At most ``limit`` calls at once, health checks aside; the next ones are
    refused at once with ``RESOURCE_EXHAUSTED``.

    Counted here rather than by gRPC's ``maximum_concurrent_rpcs``, which counts
    health checks too (so slow or idle uploads made probes fail) and refuses
    without a log line or a metric. The server has threads beyond ``limit`` for
    health checks and refusals, which are quick.
    """

    def __init__(self, limit: int, calls: CallHandler) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._calls = calls

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method == HEALTH_CHECK:
            return handler
        if handler.response_streaming:
            behavior = self._limit_stream(behavior_of(handler), method_name(method))
        else:
            behavior = self._limit(behavior_of(handler), method_name(method))
        return with_behavior(handler, behavior)

    def _limit(self, behavior: Callable, name: str) -> Callable:
        def limited(request, context):
            self._enter(name, context)
            try:
                return behavior(request, context)
            finally:
                self._slots.release()

        return limited

    def _limit_stream(self, behavior: Callable, name: str) -> Callable:
        # The slot is held until the last response is sent (health Watch,
        # reflection), not only until the method returns its iterator.
        def limited(request, context):
            self._enter(name, context)
            try:
                yield from behavior(request, context)
            finally:
                self._slots.release()

        return limited

    def _enter(self, name: str, context: grpc.ServicerContext) -> None:
        if not self._slots.acquire(blocking=False):
            self._calls.refuse(
                name,
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server is at its limit of {self.limit} calls at once",
            )
