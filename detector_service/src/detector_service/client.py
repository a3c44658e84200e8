"""The client library: what Plone (or any program) uses to talk to detectors.

Light on purpose: grpc and protobuf only, no numpy or imaging libraries, so it can
live in a Zope process. Every call has a deadline; ``UNAVAILABLE`` is retried with
exponential backoff within that deadline; several addresses are balanced round
robin by gRPC itself, which also skips replicas that are down.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
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
import json
import socket
import time


T = TypeVar("T")
CHUNK_BYTES = 1024 * 1024
ENVELOPE_BYTES = 64 * 1024
ERRORS: dict[grpc.StatusCode, type[DetectorError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidImage,
    grpc.StatusCode.RESOURCE_EXHAUSTED: DetectorBusy,
    grpc.StatusCode.UNAVAILABLE: DetectorUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DetectorUnavailable,
    grpc.StatusCode.UNAUTHENTICATED: DetectorDenied,
    grpc.StatusCode.PERMISSION_DENIED: DetectorDenied,
}
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


class DetectorClient:
    """A connection to one detector or a round-robin set of replicas.

    ``addresses`` is ``"host:port"``, a comma-separated list or a sequence of them,
    or any gRPC target such as ``"dns:///detector.internal:50051"`` (round robin
    over every address the name resolves to).
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
        self.target = channel_target(addresses)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.chunk_bytes = chunk_bytes
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        limit = max_message_bytes + ENVELOPE_BYTES
        options = [
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.service_config", SERVICE_CONFIG),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if root_certificates is not None:
            if isinstance(root_certificates, Path):
                root_certificates = root_certificates.read_bytes()
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(self.target, credentials, options)
        else:
            self._channel = grpc.insecure_channel(self.target, options)
        self._detector = detector_pb2_grpc.DetectorStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

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
                lambda t: self._detector.Detect(request, **self._kw(t)), timeout
            )
        else:

            def stream(t: float) -> detector_pb2.DetectResponse:
                return self._detector.DetectStream(
                    self._chunks(image, message), **self._kw(t)
                )

            reply = self._call(stream, timeout)
        return wire.result_from_proto(reply)

    def model_info(self, timeout: float | None = None) -> ModelInfo:
        request = detector_pb2.GetModelInfoRequest()
        reply = self._call(
            lambda t: self._detector.GetModelInfo(request, **self._kw(t)), timeout
        )
        return wire.model_info_from_proto(reply)

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """``"SERVING"``, ``"NOT_SERVING"`` (loading, stopping) or ``"UNAVAILABLE"``."""
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            reply = self._health.Check(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            if exc.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                return "UNAVAILABLE"
            raise as_detector_error(exc) from exc
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def close(self) -> None:
        self._channel.close()

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

    def _call(self, attempt: Callable[[float], T], timeout: float | None) -> T:
        """Run ``attempt(seconds_left)``, retrying UNAVAILABLE within one deadline."""
        deadline = time.monotonic() + (timeout or self.timeout)
        retried = 0
        while True:
            try:
                return attempt(max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as exc:
                pause = self.backoff * 2**retried
                if (
                    exc.code() != grpc.StatusCode.UNAVAILABLE
                    or retried >= self.retries
                    or deadline - time.monotonic() <= pause
                ):
                    raise as_detector_error(exc) from exc
                time.sleep(pause)
                retried += 1


def as_detector_error(exc: grpc.RpcError) -> DetectorError:
    """The client's exception for a failed call, carrying the server's message."""
    code = exc.code()
    details = exc.details() or code.name
    return ERRORS.get(code, DetectorError)(f"{details} ({code.name})")


def channel_target(addresses: str | Sequence[str]) -> str:
    """A gRPC target for one or several ``host:port`` addresses.

    Several addresses become one ``ipv4:``/``ipv6:`` target (host names resolved
    here), which the round-robin policy spreads calls over.
    """
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    if not addresses:
        raise ValueError("no detector address given")
    if len(addresses) == 1:
        return addresses[0]
    hosts = [_resolve(address) for address in addresses]
    families = {family for family, _ in hosts}
    if len(families) > 1:
        raise ValueError("cannot balance over IPv4 and IPv6 addresses at once")
    return f"{families.pop()}:" + ",".join(text for _, text in hosts)


def _resolve(address: str) -> tuple[str, str]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = ipaddress.ip_address(socket.getaddrinfo(host, int(port))[0][4][0])
    if ip.version == 6:
        return "ipv6", f"[{ip}]:{port}"
    return "ipv4", f"{ip}:{port}"
