"""The server interceptor's rules, without a server: handlers are called directly
with a stand-in for gRPC's servicer context."""

from __future__ import annotations

from detector_service.calls import CallFailed
from detector_service.interceptors import BoundedContext
from detector_service.interceptors import call_deadline
from detector_service.interceptors import CallInterceptor
from detector_service.interceptors import method_name
from detector_service.interceptors import status_of
from detector_service.metrics import ServerMetrics
from types import SimpleNamespace

import grpc
import pytest
import time


class Aborted(Exception):
    """What gRPC's ``context.abort`` raises to end the call."""


class FakeContext:
    def __init__(self, time_remaining: float = 1e9) -> None:
        self._remaining = time_remaining
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float:
        return self._remaining

    def peer(self) -> str:
        return "ipv4:127.0.0.1:4242"

    def is_active(self) -> bool:
        return True

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise Aborted(details)


def intercepted(interceptor, path, behavior, token=None, streaming=False):
    """The handler the interceptor makes of ``behavior`` for a call to ``path``."""
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    if streaming:
        handler = grpc.unary_stream_rpc_method_handler(behavior)
    else:
        handler = grpc.unary_unary_rpc_method_handler(behavior)
    details = SimpleNamespace(method=path, invocation_metadata=metadata)
    return interceptor.intercept_service(lambda _: handler, details)


def interceptor(**settings) -> CallInterceptor:
    options = {"limit": 2, "max_call_seconds": 30.0, **settings}
    return CallInterceptor(ServerMetrics(), **options)


def count(calls: CallInterceptor, method: str, code: str) -> float:
    return calls.metrics.requests.labels(method, code)._value.get()


DETECT = "/detection.v1.Detector/Detect"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (DETECT, "Detect"),
        ("/MLServer/predict", "MLServer/predict"),
        ("/grpc.health.v1.Health/Watch", "grpc.health.v1.Health/Watch"),
    ],
)
def test_method_name(path, name):
    assert method_name(path) == name


def test_the_deadline_is_the_callers_but_never_beyond_the_limit():
    assert call_deadline(5.0, 60.0, now=100.0) == 105.0
    assert call_deadline(1e12, 60.0, now=100.0) == 160.0  # no deadline set
    assert call_deadline(None, 60.0, now=100.0) == 160.0
    assert call_deadline(-1.0, 60.0, now=100.0) == 100.0


def test_failures_become_their_status_or_internal():
    refused = CallFailed(grpc.StatusCode.INVALID_ARGUMENT, "bad image")
    assert status_of(refused) == (grpc.StatusCode.INVALID_ARGUMENT, "bad image")
    assert status_of(ValueError("boom")) == (
        grpc.StatusCode.INTERNAL,
        "internal error: boom",
    )


def test_bounded_context_counts_down_and_aborts_through_the_interceptor():
    context = FakeContext()
    bounded = BoundedContext(context, time.monotonic() + 5.0)
    assert 4.0 < bounded.time_remaining() <= 5.0
    assert bounded.peer() == context.peer()  # everything else is the real context's
    with pytest.raises(CallFailed) as ended:
        bounded.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    assert ended.value.code == grpc.StatusCode.NOT_FOUND
    assert context.aborted is None


def test_a_plain_method_sees_the_bounded_deadline_and_is_counted():
    calls = interceptor(max_call_seconds=30.0)
    seen = []

    def detect(request, context):
        seen.append(context.time_remaining())
        return "reply"

    handler = intercepted(calls, DETECT, detect)
    assert handler.unary_unary("request", FakeContext(time_remaining=1e9)) == "reply"
    assert 29.0 < seen[0] <= 30.0
    assert count(calls, "Detect", "OK") == 1
    assert calls.metrics.in_progress._value.get() == 0


def test_failures_end_the_call_with_their_code_and_are_counted():
    calls = interceptor()

    def invalid(request, context):
        raise CallFailed(grpc.StatusCode.INVALID_ARGUMENT, "not an image")

    def aborts(request, context):
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")

    def bug(request, context):
        raise KeyError("oops")

    for behavior, code in (
        (invalid, grpc.StatusCode.INVALID_ARGUMENT),
        (aborts, grpc.StatusCode.FAILED_PRECONDITION),
        (bug, grpc.StatusCode.INTERNAL),
    ):
        context = FakeContext()
        with pytest.raises(Aborted):
            intercepted(calls, DETECT, behavior).unary_unary(None, context)
        assert context.aborted[0] == code
        assert count(calls, "Detect", code.name) == 1
    assert calls.metrics.errors.labels("INTERNAL")._value.get() == 1
    assert calls.metrics.in_progress._value.get() == 0


def test_without_the_token_a_call_is_refused_before_it_takes_a_slot():
    calls = interceptor(token="s3cret", limit=1)
    ran = []
    for token in (None, "wrong"):
        context = FakeContext()
        handler = intercepted(calls, DETECT, lambda r, c: ran.append(r), token=token)
        with pytest.raises(Aborted):
            handler.unary_unary("x", context)
        assert context.aborted == (
            grpc.StatusCode.UNAUTHENTICATED,
            "a valid bearer token is required",
        )
    assert ran == []
    assert count(calls, "Detect", "UNAUTHENTICATED") == 2
    # The refusals took no slot: the one slot is still free.
    handler = intercepted(calls, DETECT, lambda r, c: "ok", token="s3cret")
    assert handler.unary_unary("x", FakeContext()) == "ok"


def test_beyond_the_limit_calls_are_refused_and_slots_come_back():
    calls = interceptor(limit=1)
    inner: list[tuple] = []

    def nested(request, context):
        # A second call while this one holds the only slot.
        other = FakeContext()
        try:
            intercepted(calls, DETECT, lambda r, c: "ok").unary_unary("x", other)
        except Aborted:
            inner.append(other.aborted)
        return "outer"

    assert intercepted(calls, DETECT, nested).unary_unary("x", FakeContext()) == "outer"
    assert inner == [
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the server is at its limit of 1 calls at once",
        )
    ]
    assert intercepted(calls, DETECT, lambda r, c: "ok").unary_unary("x", FakeContext())


def test_streamed_replies_hold_their_slot_until_the_last_one():
    calls = interceptor(limit=1)

    def replies(request, context):
        yield 1
        yield 2

    path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    stream = intercepted(calls, path, replies, streaming=True).unary_stream(
        None, FakeContext()
    )
    assert next(stream) == 1
    assert calls.metrics.in_progress._value.get() == 1
    assert list(stream) == [2]
    assert calls.metrics.in_progress._value.get() == 0


def test_while_closing_new_calls_are_unavailable_but_health_is_open():
    calls = interceptor(token="s3cret")
    calls.closing.set()
    context = FakeContext()
    handler = intercepted(calls, DETECT, lambda r, c: "ok", token="s3cret")
    with pytest.raises(Aborted):
        handler.unary_unary("x", context)
    assert context.aborted == (
        grpc.StatusCode.UNAVAILABLE,
        "the server is shutting down",
    )
    # Health checks pass untouched (no token, no slot, no log); Watch needs no
    # token and is not refused while closing.
    check = "/grpc.health.v1.Health/Check"
    assert intercepted(calls, check, lambda r, c: "up").unary_unary("x", None) == "up"
    watch = intercepted(
        calls, "/grpc.health.v1.Health/Watch", lambda r, c: iter(["up"]), streaming=True
    )
    assert list(watch.unary_stream("x", FakeContext())) == ["up"]
    assert count(calls, "grpc.health.v1.Health/Check", "OK") == 0
