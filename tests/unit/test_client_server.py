"""Client and server together in this process, on a fake backend.

The fake model makes the server's own behaviour observable: option filtering, box
scaling, queue limits, deadlines, auth, health, round robin and retries. The real
model is exercised in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import replace
from detector_service.client import channel_options
from detector_service.client import channel_targets
from detector_service.client import CHUNK_BYTES
from detector_service.client import DetectorClient
from detector_service.client import service_config
from detector_service.config import ServerConfig
from detector_service.errors import DetectorBusy
from detector_service.errors import DetectorDenied
from detector_service.errors import DetectorError
from detector_service.errors import DetectorUnavailable
from detector_service.errors import InvalidImage
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.detection.v1 import detector_pb2_grpc
from detector_service.proto.legacy import mlserver_pb2
from detector_service.proto.legacy import mlserver_pb2_grpc
from detector_service.server import DetectorServer
from detector_service.server import limit_malloc_arenas
from detector_service.types import Box
from detector_service.types import Detection
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo
from io import BytesIO
from PIL import Image

import grpc
import json
import numpy as np
import pytest
import socket
import subprocess
import sys
import threading
import time


class FakeBackend:
    """Finds a 'dog' over the left half and a weaker 'cat' over the right half.

    Holds every call while ``gate`` is clear, so tests can fill the queue.
    """

    def __init__(self, name: str = "fake") -> None:
        self.info = ModelInfo(name, "1", "fake 0", 416, 416, ("dog", "cat"))
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Semaphore(0)
        self.calls = 0

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        self.calls += 1
        self.started.release()
        self.gate.wait()
        out = []
        for image in images:
            rows, cols = image.shape[:2]
            out.append(
                [
                    Detection("cat", 0.2, Box(cols / 2, 0, cols + 5, rows)),
                    Detection("dog", 0.9, Box(-3, 0, cols / 2, rows)),
                ]
            )
        return out


def jpeg(width: int = 64, height: int = 48) -> bytes:
    out = BytesIO()
    Image.new("RGB", (width, height), (90, 120, 30)).save(out, "JPEG")
    return out.getvalue()


def start_server(backend: FakeBackend, **settings) -> DetectorServer:
    config = replace(
        ServerConfig(port=0, min_score=0.3, grace=1.0, drain=0.0), **settings
    )
    server = DetectorServer(config, lambda: backend)
    server.start()
    server.load_model()
    return server


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def server(backend: FakeBackend) -> Iterator[DetectorServer]:
    server = start_server(backend)
    yield server
    backend.gate.set()
    server.stop()


@pytest.fixture
def client(server: DetectorServer) -> Iterator[DetectorClient]:
    with DetectorClient(f"127.0.0.1:{server.port}", timeout=10) as client:
        yield client


def test_detect_answers_in_the_image_pixels_with_the_default_min_score(client):
    result = client.detect(jpeg(64, 48))
    assert [d.label for d in result.detections] == ["dog"]
    assert (result.image_width, result.image_height) == (64, 48)
    dog = result.detections[0]
    # Boxes beyond the image are clipped to it.
    assert (dog.box.x_min, dog.box.x_max, dog.box.y_max) == (0.0, 32.0, 48.0)
    assert result.model.name == "fake"
    assert result.elapsed_ms > 0


def test_options_filter_by_score_label_and_count(client):
    both = client.detect(jpeg(), DetectOptions(min_score=0.1))
    assert [d.label for d in both.detections] == ["dog", "cat"]
    cats = client.detect(jpeg(), DetectOptions(min_score=0.1, labels=("cat",)))
    assert [d.label for d in cats.detections] == ["cat"]
    best = client.detect(jpeg(), DetectOptions(min_score=0.1, max_detections=1))
    assert [d.label for d in best.detections] == ["dog"]
    unknown = client.detect(jpeg(), DetectOptions(labels=("zebra",)))
    assert unknown.detections == ()


def test_big_images_are_streamed_and_boxes_scaled_back(server):
    # Large enough to be decoded at a reduced size and sent in several chunks.
    data = jpeg(3000, 2000)
    with DetectorClient(f"127.0.0.1:{server.port}", chunk_bytes=4096) as client:
        result = client.detect(data)
    assert len(data) > 3 * 4096
    assert server.metrics.requests.labels("DetectStream", "OK")._value.get() == 1
    assert (result.image_width, result.image_height) == (3000, 2000)
    dog = result.detections[0].box
    assert (dog.x_max, dog.y_max) == pytest.approx((1500, 2000), abs=0.01)


def test_invalid_images_and_options_are_invalid_argument(client):
    with pytest.raises(InvalidImage, match="not a supported image"):
        client.detect(b"definitely not an image")
    with pytest.raises(InvalidImage, match="min_score"):
        client.detect(jpeg(), DetectOptions(min_score=1.5))
    assert client.detect(jpeg()).detections


def test_stream_over_the_byte_limit_is_invalid_argument(backend):
    server = start_server(backend, max_message_bytes=10_000)
    try:
        address = f"127.0.0.1:{server.port}"
        with (
            DetectorClient(address, chunk_bytes=4000) as client,
            pytest.raises(InvalidImage, match="more bytes than the limit of 10000"),
        ):
            client.detect(b"\xff" * 12_001)
        assert backend.calls == 0
    finally:
        server.stop()


def test_model_info_and_health(client):
    info = client.model_info()
    assert (info.name, info.input_width, info.labels) == ("fake", 416, ("dog", "cat"))
    assert client.health() == "SERVING"
    assert client.health("detection.v1.Detector") == "SERVING"
    assert client.health("MLServer") == "SERVING"


def test_unavailable_while_loading_then_serving(backend):
    server = DetectorServer(ServerConfig(port=0, drain=0.0), lambda: backend)
    server.start()
    try:
        with DetectorClient(f"127.0.0.1:{server.port}", retries=0) as client:
            assert client.health() == "NOT_SERVING"
            with pytest.raises(DetectorUnavailable, match="still loading"):
                client.detect(jpeg())
            with pytest.raises(DetectorUnavailable, match="still loading"):
                client.model_info()
            server.load_model()
            assert client.health() == "SERVING"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("size", "chunk_bytes", "method"),
    [
        ("small", CHUNK_BYTES, "Detect"),
        ("600 KB", CHUNK_BYTES, "Detect"),
        ("600 KB", 64 * 1024, "DetectStream"),
    ],
)
def test_client_retries_unavailable_until_the_model_is_loaded(
    backend, size, chunk_bytes, method
):
    """gRPC retries only what it kept of a call (256 KiB unless told otherwise):
    images above that are sent again too."""
    server = DetectorServer(ServerConfig(port=0, drain=0.0), lambda: backend)
    server.start()
    refused = server.metrics.requests.labels(method, "UNAVAILABLE")

    def load_after_first_refusal() -> None:
        while refused._value.get() < 1:
            time.sleep(0.01)
        server.load_model()

    loader = threading.Thread(target=load_after_first_refusal)
    loader.start()
    image = jpeg() if size == "small" else noisy_jpeg()
    assert size == "small" or 300_000 < len(image) < CHUNK_BYTES
    try:
        address = f"127.0.0.1:{server.port}"
        with DetectorClient(
            address, retries=8, backoff=0.05, timeout=60, chunk_bytes=chunk_bytes
        ) as client:
            assert client.detect(image).detections
        assert refused._value.get() >= 1
    finally:
        loader.join()
        server.stop()


def test_full_queue_is_resource_exhausted(backend):
    server = start_server(backend, workers=1, queue_size=1)
    backend.gate.clear()
    results: list[object] = []

    def call() -> None:
        with DetectorClient(f"127.0.0.1:{server.port}") as client:
            try:
                results.append(client.detect(jpeg()))
            except DetectorError as exc:
                results.append(exc)

    running = threading.Thread(target=call)
    running.start()
    backend.started.acquire()  # the worker holds the first call
    waiting = threading.Thread(target=call)
    waiting.start()
    while server.metrics.queue_depth._value.get() < 1:
        time.sleep(0.01)
    try:
        with (
            DetectorClient(f"127.0.0.1:{server.port}") as client,
            pytest.raises(DetectorBusy, match="busy"),
        ):
            client.detect(jpeg())
    finally:
        backend.gate.set()
        running.join()
        waiting.join()
        server.stop()
    assert [type(r).__name__ for r in results] == ["DetectionResult"] * 2
    assert server.metrics.errors.labels("RESOURCE_EXHAUSTED")._value.get() == 1


def test_calls_whose_deadline_passed_in_the_queue_are_not_run(backend):
    server = start_server(backend, workers=1, queue_size=4)
    backend.gate.clear()
    address = f"127.0.0.1:{server.port}"
    first = threading.Thread(target=lambda: DetectorClient(address).detect(jpeg()))
    first.start()
    backend.started.acquire()
    try:
        with DetectorClient(address, retries=0) as client:
            with pytest.raises(DetectorUnavailable, match="DEADLINE_EXCEEDED"):
                client.detect(jpeg(), timeout=0.3)
            backend.gate.set()
            first.join()
            # FIFO: this call runs after the expired one was taken off the queue.
            assert client.detect(jpeg()).detections
    finally:
        backend.gate.set()
        server.stop()
    assert backend.calls == 2
    assert server.metrics.skipped._value.get() == 1


def test_token_is_required_except_for_health(backend):
    server = start_server(backend, token="s3cret")
    address = f"127.0.0.1:{server.port}"
    try:
        with DetectorClient(address, chunk_bytes=1024) as anonymous:
            assert anonymous.health() == "SERVING"
            with pytest.raises(DetectorDenied, match="bearer token"):
                anonymous.detect(jpeg(8, 8))
            with pytest.raises(DetectorDenied):
                anonymous.detect(jpeg(3000, 2000))  # the streaming method too
        with (
            DetectorClient(address, token="wrong") as wrong,
            pytest.raises(DetectorDenied),
        ):
            wrong.model_info()
        with DetectorClient(address, token="s3cret") as right:
            assert right.detect(jpeg()).detections
    finally:
        server.stop()
    # Refusals are counted (and logged) like any call.
    refused = server.metrics.requests
    assert refused.labels("Detect", "UNAUTHENTICATED")._value.get() == 1
    assert refused.labels("DetectStream", "UNAUTHENTICATED")._value.get() == 1
    assert refused.labels("GetModelInfo", "UNAUTHENTICATED")._value.get() == 1
    assert server.metrics.errors.labels("UNAUTHENTICATED")._value.get() == 3


def test_round_robin_over_two_servers():
    servers = [start_server(FakeBackend("a")), start_server(FakeBackend("b"))]
    try:
        addresses = [f"127.0.0.1:{s.port}" for s in servers]
        with DetectorClient(addresses) as client:
            names = {client.detect(jpeg()).model.name for _ in range(10)}
        assert names == {"a", "b"}
    finally:
        for server in servers:
            server.stop()


def test_unreachable_detector_is_unavailable_after_retries():
    with DetectorClient("127.0.0.1:1", retries=2, backoff=0.01, timeout=5) as client:
        assert client.health() == "UNAVAILABLE"
        with pytest.raises(DetectorUnavailable):
            client.detect(jpeg())


def test_calls_without_a_deadline_are_answered(backend):
    """The 2018 client sets no deadline; gRPC then reports a time remaining that
    no timer accepts. The server's own limit (30 s here) bounds the call."""
    server = start_server(backend, max_call_seconds=30)
    image = jpeg()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            detector = detector_pb2_grpc.DetectorStub(channel)
            unary = detector.Detect(detector_pb2.DetectRequest(image=image))
            streamed = detector.DetectStream(
                iter(
                    [
                        detector_pb2.DetectStreamRequest(chunk=image[:100]),
                        detector_pb2.DetectStreamRequest(chunk=image[100:]),
                    ]
                )
            )
            legacy = mlserver_pb2_grpc.MLServerStub(channel).predict(
                iter([mlserver_pb2.Chunk(buffer=image)])
            )
    finally:
        server.stop()
    assert [d.label for d in unary.detections] == ["dog"]
    assert [d.label for d in streamed.detections] == ["dog"]
    assert list(legacy.classes) == ["dog"]


def test_stop_reports_not_serving_while_draining_and_finishes_calls(backend):
    server = start_server(backend, drain=3.0, grace=30.0)
    address = f"127.0.0.1:{server.port}"
    backend.gate.clear()
    in_flight: list[object] = []

    def call() -> None:
        with DetectorClient(address, timeout=60) as client:
            in_flight.append(client.detect(jpeg()))

    caller = threading.Thread(target=call)
    caller.start()
    backend.started.acquire()  # the worker holds the call
    stopper = threading.Thread(target=server.stop)
    try:
        with DetectorClient(address, retries=0) as client:
            assert client.health() == "SERVING"
            stopper.start()
            status = client.health()
            while status == "SERVING":
                status = client.health()
            # Probes are answered, not refused, until the drain ends.
            assert status == "NOT_SERVING"
            with pytest.raises(DetectorUnavailable, match="shutting down"):
                client.detect(jpeg())
    finally:
        backend.gate.set()
        caller.join(60)
        stopper.join(60)
    assert [type(r).__name__ for r in in_flight] == ["DetectionResult"]
    assert server.metrics.requests.labels("Detect", "UNAVAILABLE")._value.get() == 1


@pytest.mark.parametrize(
    ("addresses", "targets"),
    [
        ("127.0.0.1:5000", ["ipv4:127.0.0.1:5000"]),
        ("dns:///detector:5000", ["dns:///detector:5000"]),
        ("127.0.0.1:1, 127.0.0.1:2", ["ipv4:127.0.0.1:1,127.0.0.1:2"]),
        (["localhost:1", "127.0.0.2:2"], ["dns:///localhost:1", "ipv4:127.0.0.2:2"]),
        ("[::1]:1,[::1]:2", ["ipv6:[::1]:1,[::1]:2"]),
        (
            "127.0.0.1:1,[::1]:2,detector:3,127.0.0.3:4",
            ["ipv4:127.0.0.1:1,127.0.0.3:4", "ipv6:[::1]:2", "dns:///detector:3"],
        ),
    ],
)
def test_channel_targets(addresses, targets):
    assert channel_targets(addresses) == targets


def test_channel_targets_refuse_bad_addresses():
    with pytest.raises(ValueError, match="host:port"):
        channel_targets("127.0.0.1:1,nonsense")
    with pytest.raises(ValueError, match="no detector"):
        channel_targets("")


@pytest.fixture
def no_dns_here(monkeypatch):
    """Name lookups in this thread fail: the client must leave them to gRPC."""

    def refuse(*args, **kwargs):
        raise AssertionError("the client looked a name up in the caller's thread")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_a_host_name_is_resolved_by_grpc_not_by_the_constructor(no_dns_here):
    server = start_server(FakeBackend("named"))
    try:
        with DetectorClient(f"localhost:{server.port}") as client:
            assert client.targets == [f"dns:///localhost:{server.port}"]
            assert client.detect(jpeg()).model.name == "named"
    finally:
        server.stop()


def test_an_unresolvable_name_is_unavailable_naming_it():
    with DetectorClient("no-such-detector.invalid:50051", retries=0) as client:
        with pytest.raises(DetectorUnavailable, match=r"no-such-detector\.invalid"):
            client.detect(jpeg())
        assert client.health() == "UNAVAILABLE"


def test_one_unresolvable_replica_does_not_break_the_others(no_dns_here):
    servers = [start_server(FakeBackend("a")), start_server(FakeBackend("b"))]
    addresses = [
        "no-such-detector.invalid:50051",
        f"localhost:{servers[0].port}",
        f"127.0.0.1:{servers[1].port}",
    ]
    try:
        with DetectorClient(addresses, retries=2, backoff=0.01) as client:
            names = {client.detect(jpeg()).model.name for _ in range(10)}
            assert client.health() == "SERVING"
        assert names == {"a", "b"}
    finally:
        for server in servers:
            server.stop()


def test_the_client_imports_no_ml_or_imaging_library():
    code = (
        "import sys, detector_service.client\n"
        "heavy = {'numpy', 'PIL', 'onnx', 'onnxruntime', 'cv2', 'chainer'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"


def test_service_config_is_round_robin_with_grpc_retries():
    config = json.loads(service_config(retries=3, backoff=0.1))
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "detection.v1.Detector"}]
    assert method["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.100s",
        "maxBackoff": "0.400s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    # gRPC allows 5 attempts at most; no retries is no retry policy at all.
    many = json.loads(service_config(retries=9, backoff=0.1))
    assert many["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 5
    assert "methodConfig" not in json.loads(service_config(retries=0, backoff=0.1))
    with pytest.raises(ValueError, match="backoff"):
        DetectorClient("127.0.0.1:1", backoff=0)


def test_channel_options_keep_whole_images_for_retries():
    options = dict(channel_options(10_000_000, retries=3, backoff=0.1))
    assert options["grpc.enable_retries"] == 1
    assert options["grpc.per_rpc_retry_buffer_size"] > 10_000_000
    assert options["grpc.max_send_message_length"] > 10_000_000


def noisy_jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    out = BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize("named", [False, True], ids=["one channel", "two channels"])
def test_calls_go_on_when_a_replica_is_killed(named):
    """Two IP addresses share one channel, where gRPC's round robin and retries
    move on; a host name has a channel of its own, and the client moves on to
    the next channel."""
    servers = [start_server(FakeBackend("a")), start_server(FakeBackend("b"))]
    host = "localhost" if named else "127.0.0.1"
    addresses = [f"{host}:{servers[0].port}", f"127.0.0.1:{servers[1].port}"]
    try:
        with DetectorClient(addresses, timeout=10) as client:
            assert len(client.targets) == (2 if named else 1)
            names = {client.detect(jpeg()).model.name for _ in range(6)}
            assert names == {"a", "b"}
            servers[0].stop()
            after = [client.detect(jpeg()).model.name for _ in range(6)]
        assert after == ["b"] * 6
    finally:
        servers[1].stop()


def test_malloc_arenas_are_capped_unless_the_environment_says(monkeypatch):
    assert limit_malloc_arenas()  # glibc: Debian's Python
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert not limit_malloc_arenas()
