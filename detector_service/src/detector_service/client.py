"""The client library: what Plone (or any program) uses to talk to detectors.

Light on purpose: grpc and protobuf only, no numpy or imaging libraries, so it can
live in a Zope process. Every call has a deadline. Balancing and retries are gRPC's
own, set by the channels' service config (:func:`service_config`): round robin
over a channel's addresses, ``UNAVAILABLE`` retried with exponential backoff
within the deadline. Host names are resolved by gRPC in the background, never in
the caller's thread, and again when connections fail, so DNS changes are followed
and a bad name fails only the calls that reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from detector_service import wire
from detector_service.errors import DetectorBusy
from detector_service.errors import DetectorDenied
from detector_service.errors import DetectorError
from detector_service.errors import DetectorUnavailable
from detector_service.errors import InvalidImage
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.detection.v1 import detector_pb2_grpc
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from pathlib import Path
from typing import TypeVar

import grpc
import ipaddress
import itertools
import json
import threading
import time


T = TypeVar("T")
CHUNK_BYTES = 1024 * 1024
ERRORS: dict[grpc.StatusCode, type[DetectorError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidImage,
    grpc.StatusCode.RESOURCE_EXHAUSTED: DetectorBusy,
    grpc.StatusCode.UNAVAILABLE: DetectorUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DetectorUnavailable,
    grpc.StatusCode.UNAUTHENTICATED: DetectorDenied,
    grpc.StatusCode.PERMISSION_DENIED: DetectorDenied,
}
# gRPC allows at most 5 attempts per call (the first and 4 retries).
MAX_RETRIES = 4
# Schemes of full gRPC targets, passed to gRPC as they are.
TARGET_SCHEMES = ("dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock")


@dataclass
class _Replica:
    """One gRPC channel (one target: an address, a name, a set of IP addresses),
    which gRPC balances and retries within."""

    target: str
    channel: grpc.Channel
    detector: detector_pb2_grpc.DetectorStub
    health: health_pb2_grpc.HealthStub
    state: grpc.ChannelConnectivity = grpc.ChannelConnectivity.IDLE

    def note_state(self, state: grpc.ChannelConnectivity) -> None:
        self.state = state


class DetectorClient:
    """A connection to one detector or a round-robin set of replicas.

    ``addresses`` is ``"host:port"``, a comma-separated list or a sequence of them,
    or any gRPC target such as ``"dns:///detector.internal:50051"`` (round robin
    over every address the name resolves to). With TLS, ``server_name`` is the
    host name the servers' certificate must carry; by default each address's own
    host (the first one's for several IP addresses, which share one channel).
    """

    def __init__(
        self,
        addresses: str | Sequence[str],
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        token: str | None = None,
        root_certificates: bytes | Path | None = None,
        server_name: str | None = None,
        max_message_bytes: int = 32 * 1024 * 1024,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        if retries < 0 or backoff < 0.001:
            raise ValueError("retries must not be negative, backoff at least 1 ms")
        self.targets = channel_targets(addresses)
        self.timeout = timeout
        self.chunk_bytes = chunk_bytes
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        options = channel_options(max_message_bytes, retries, backoff)
        credentials = None
        if root_certificates is not None:
            if isinstance(root_certificates, Path):
                root_certificates = root_certificates.read_bytes()
            credentials = grpc.ssl_channel_credentials(root_certificates)
        self._replicas = [
            _open(target, options, credentials, server_name) for target in self.targets
        ]
        if len(self._replicas) > 1:
            # Calls go round the channels, passing over those gRPC cannot reach.
            for replica in self._replicas:
                replica.channel.subscribe(replica.note_state)
        self._turns = itertools.cycle(self._replicas)
        self._lock = threading.Lock()

    def detect(
        self,
        image: bytes,
        options: DetectOptions | None = None,
        timeout: float | None = None,
    ) -> DetectionResult:
        """Objects in one encoded image; large images are streamed in chunks."""
        message = wire.options_to_proto(options or DetectOptions())
        if len(image) <= self.chunk_bytes:
            request = detector_pb2.DetectRequest(image=image, options=message)
            reply = self._call(
                lambda r, t: r.detector.Detect(request, **self._kw(t)), timeout
            )
        else:

            def stream(replica: _Replica, t: float) -> detector_pb2.DetectResponse:
                return replica.detector.DetectStream(
                    self._chunks(image, message), **self._kw(t)
                )

            reply = self._call(stream, timeout)
        return wire.result_from_proto(reply)

    def model_info(self, timeout: float | None = None) -> ModelInfo:
        request = detector_pb2.GetModelInfoRequest()
        reply = self._call(
            lambda r, t: r.detector.GetModelInfo(request, **self._kw(t)), timeout
        )
        return wire.model_info_from_proto(reply)

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """``"SERVING"``, ``"NOT_SERVING"`` (loading, stopping) or ``"UNAVAILABLE"``;
        of several replicas, the best answer."""
        request = health_pb2.HealthCheckRequest(service=service)
        answers = []
        for replica in self._replicas:
            try:
                reply = replica.health.Check(request, timeout=timeout or self.timeout)
            except grpc.RpcError as exc:
                if exc.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise as_detector_error(exc) from exc
                continue
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return "SERVING"
            answers.append(reply.status)
        if not answers:
            return "UNAVAILABLE"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answers[0])

    def close(self) -> None:
        for replica in self._replicas:
            replica.channel.close()

    def __enter__(self) -> DetectorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _kw(self, timeout: float) -> dict:
        return {"timeout": timeout, "metadata": self._metadata}

    def _chunks(
        self, image: bytes, options: detector_pb2.DetectOptions
    ) -> Iterator[detector_pb2.DetectStreamRequest]:
        yield detector_pb2.DetectStreamRequest(
            chunk=image[: self.chunk_bytes], options=options
        )
        for start in range(self.chunk_bytes, len(image), self.chunk_bytes):
            yield detector_pb2.DetectStreamRequest(
                chunk=image[start : start + self.chunk_bytes]
            )

    def _in_turn(self) -> list[_Replica]:
        """Every channel, starting with the next in turn; those gRPC cannot reach
        now last."""
        with self._lock:
            first = next(self._turns)
        start = self._replicas.index(first)
        ordered = self._replicas[start:] + self._replicas[:start]
        return sorted(
            ordered,
            key=lambda r: r.state == grpc.ChannelConnectivity.TRANSIENT_FAILURE,
        )

    def _call(
        self, attempt: Callable[[_Replica, float], T], timeout: float | None
    ) -> T:
        """Run ``attempt(channel, seconds_left)`` within one deadline.

        Retries and their backoff happen inside the channel (gRPC's retry policy);
        a call that still ends ``UNAVAILABLE`` moves on to the next channel, if
        the client has several (host names: gRPC resolves each in a channel of its
        own), each tried once.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        *others, last = self._in_turn()
        for replica in others:
            try:
                return attempt(replica, max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as exc:
                if (
                    exc.code() != grpc.StatusCode.UNAVAILABLE
                    or time.monotonic() >= deadline
                ):
                    raise as_detector_error(exc) from exc
        try:
            return attempt(last, max(deadline - time.monotonic(), 0.001))
        except grpc.RpcError as exc:
            raise as_detector_error(exc) from exc


def as_detector_error(exc: grpc.RpcError) -> DetectorError:
    """The client's exception for a failed call, carrying the server's message."""
    code = exc.code()
    details = exc.details() or code.name
    return ERRORS.get(code, DetectorError)(f"{details} ({code.name})")


def service_config(retries: int, backoff: float) -> str:
    """gRPC's service config for every channel: round robin over the channel's
    addresses (passing over those that are down), and, unless ``retries`` is 0,
    ``UNAVAILABLE`` detection calls retried up to ``retries`` times (at most
    :data:`MAX_RETRIES`) after a random pause of up to ``backoff``, then up to
    twice, four times that.

    Only ``UNAVAILABLE`` is retried (not reached, still loading, shutting down):
    ``RESOURCE_EXHAUSTED`` means busy, which the caller's own queue handles better
    than an immediate retry that adds load; health checks answer for one channel.
    """
    config: dict = {"loadBalancingConfig": [{"round_robin": {}}]}
    retries = min(retries, MAX_RETRIES)
    if retries:
        config["methodConfig"] = [
            {
                "name": [{"service": wire.SERVICE_NAME}],
                "retryPolicy": {
                    "maxAttempts": retries + 1,
                    "initialBackoff": f"{backoff:.3f}s",
                    "maxBackoff": f"{backoff * 2 ** (retries - 1):.3f}s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def channel_options(
    max_message_bytes: int, retries: int, backoff: float
) -> list[tuple[str, object]]:
    """Every option the client's channels get, in one place."""
    limit = max_message_bytes + wire.ENVELOPE_BYTES
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        ("grpc.service_config", service_config(retries, backoff)),
        ("grpc.enable_retries", 1),
        # gRPC keeps what a call sent, to send it again on a retry, up to this
        # size (256 KiB by default, beyond which a call is not retried): up to
        # the largest image, which the caller holds in memory anyway.
        ("grpc.per_rpc_retry_buffer_size", limit),
    ]


def channel_targets(addresses: str | Sequence[str]) -> list[str]:
    """The gRPC targets for one or several ``host:port`` addresses, none resolved
    here.

    IP addresses of one family share one ``ipv4:``/``ipv6:`` target, which gRPC's
    round-robin policy spreads calls over, passing over replicas that are down; a
    host name gets a ``dns:///`` target of its own, which gRPC resolves in the
    background (round robin over every address the name has). A full gRPC target
    (``dns:///name:port``, ``unix:path``, ...) is taken as it is.
    """
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    if not addresses:
        raise ValueError("no detector address given")
    # target -> the IP addresses it adds up (only ipv4: and ipv6: have some)
    groups: dict[str, list[str]] = {}
    for address in addresses:
        if address.split(":", 1)[0] in TARGET_SCHEMES:
            groups.setdefault(address, [])
            continue
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {address!r}")
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            groups.setdefault(f"dns:///{host}:{port}", [])
            continue
        literal = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
        groups.setdefault(f"ipv{ip.version}:", []).append(literal)
    return [target + ",".join(ips) for target, ips in groups.items()]


def _first_host(target: str) -> str | None:
    """The host of an ``ipv4:``/``ipv6:`` target's first address."""
    scheme, _, rest = target.partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return None
    host = rest.split(",", 1)[0].rpartition(":")[0]
    return host.strip("[]")


def _open(
    target: str,
    options: list[tuple[str, object]],
    credentials: grpc.ChannelCredentials | None,
    server_name: str | None,
) -> _Replica:
    if credentials is None:
        channel = grpc.insecure_channel(target, options)
    else:
        # An ipv4:/ipv6: target has no host name of its own to check the
        # certificate against: without server_name, its first address's.
        name = server_name or _first_host(target)
        if name:
            options = [*options, ("grpc.ssl_target_name_override", name)]
        channel = grpc.secure_channel(target, credentials, options)
    return _Replica(
        target,
        channel,
        detector_pb2_grpc.DetectorStub(channel),
        health_pb2_grpc.HealthStub(channel),
    )
