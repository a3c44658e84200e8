"""The real server process over loopback gRPC, with the real yolov3-tiny weights."""

from __future__ import annotations

from collections.abc import Iterator
from detector_service.client import DetectorClient
from detector_service.errors import DetectorBusy
from detector_service.errors import DetectorDenied
from detector_service.errors import DetectorError
from detector_service.errors import DetectorUnavailable
from detector_service.launcher import DetectorProcess
from detector_service.launcher import DetectorStartError
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.detection.v1 import detector_pb2_grpc
from detector_service.proto.legacy import mlserver_pb2
from detector_service.proto.legacy import mlserver_pb2_grpc
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc
from io import BytesIO
from pathlib import Path
from PIL import Image

import grpc
import json
import pytest
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def labels(result: DetectionResult) -> set[str]:
    return {d.label for d in result.detections}


def assert_dog_photo(found: set[str]) -> None:
    assert {"dog", "bicycle"} <= found
    assert found & {"car", "truck"}


@pytest.fixture(scope="module")
def dog(samples_dir: Path) -> bytes:
    return (samples_dir / "dog.jpg").read_bytes()


@pytest.fixture
def client(detector) -> Iterator[DetectorClient]:
    with DetectorClient(detector.address, timeout=30) as client:
        yield client


def test_health_is_serving(client):
    assert client.health() == "SERVING"
    assert client.health("detection.v1.Detector") == "SERVING"
    assert client.health("MLServer") == "SERVING"


def test_detect_finds_dog_bicycle_and_car(client, dog):
    result = client.detect(dog)
    assert_dog_photo(labels(result))
    assert (result.image_width, result.image_height) == (768, 576)
    assert result.model.name == "yolov3-tiny"
    # The dog sits in the lower left of the photo.
    box = next(d.box for d in result.detections if d.label == "dog")
    assert 0 <= box.x_min < box.x_max < 768 / 2 + 100
    assert 576 / 3 < box.y_max <= 576


def test_detect_finds_person_and_dog(client, samples_dir):
    result = client.detect((samples_dir / "person.jpg").read_bytes())
    assert {"person", "dog"} <= labels(result)


def test_detect_stream_gives_the_same_answer(detector, client, dog):
    with DetectorClient(detector.address, chunk_bytes=16 * 1024) as streaming:
        streamed = streaming.detect(dog)
    assert_dog_photo(labels(streamed))
    assert streamed.detections == client.detect(dog).detections


def test_options_are_applied(client, dog):
    only_dogs = client.detect(dog, DetectOptions(labels=("dog",)))
    assert labels(only_dogs) == {"dog"}
    best = client.detect(dog, DetectOptions(min_score=0.05, max_detections=2))
    assert len(best.detections) == 2
    assert best.detections[0].score >= best.detections[1].score


def test_mlserver_predict_answers_the_2018_contract(detector, dog):
    with grpc.insecure_channel(detector.address) as channel:
        predict = mlserver_pb2_grpc.MLServerStub(channel).predict
        chunks = [dog[i : i + 65536] for i in range(0, len(dog), 65536)]
        reply = predict(iter(mlserver_pb2.Chunk(buffer=c) for c in chunks), timeout=30)
    assert_dog_photo(set(reply.classes))
    assert len(reply.boxes) == len(reply.classes) == len(reply.confs)
    y_min, x_min, y_max, x_max = reply.boxes[list(reply.classes).index("dog")].box
    assert x_min < x_max < 768 / 2 + 100
    assert y_min < y_max <= 576


def test_model_info(client):
    info = client.model_info()
    assert info.name == "yolov3-tiny"
    assert (info.input_width, info.input_height) == (416, 416)
    assert len(info.labels) == 80
    assert {"motorcycle", "airplane", "couch", "tv"} <= set(info.labels)
    assert "onnxruntime" in info.framework


def test_reflection_lists_both_services(detector):
    with grpc.insecure_channel(detector.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = stub.ServerReflectionInfo(iter([request]), timeout=10)
    names = {s.name for s in reply.list_services_response.service}
    assert {"detection.v1.Detector", "MLServer", "grpc.health.v1.Health"} <= names


def test_undecodable_image_is_invalid_argument_with_a_clear_message(detector, dog):
    with grpc.insecure_channel(detector.address) as channel:
        detect = channel.unary_unary(
            "/detection.v1.Detector/Detect",
            request_serializer=detector_pb2.DetectRequest.SerializeToString,
            response_deserializer=detector_pb2.DetectResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            detect(detector_pb2.DetectRequest(image=b"GIF89a broken"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a supported image" in caught.value.details()
        assert detect(detector_pb2.DetectRequest(image=dog), timeout=30).detections


def test_logs_are_json_lines(detector, client, dog):
    client.detect(dog)
    events = [json.loads(line) for line in detector.log_lines() if line.startswith("{")]
    calls = [e for e in events if e["event"] == "call" and e["method"] == "Detect"]
    assert calls and calls[-1]["code"] == "OK" and calls[-1]["ms"] > 0


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_and_token(start_detector, tmp_path, dog):
    cert, key = self_signed_certificate(tmp_path)
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--token", "let-me-in"]
    server = start_detector(extra_args=args, root_certificates=cert)
    with (
        DetectorClient(server.address, retries=0, timeout=5) as plain,
        pytest.raises(DetectorUnavailable),
    ):
        plain.detect(dog)
    with DetectorClient(server.address, root_certificates=cert) as no_token:
        assert no_token.health() == "SERVING"
        with pytest.raises(DetectorDenied, match="bearer token"):
            no_token.detect(dog)
    with DetectorClient(
        server.address, root_certificates=cert, token="let-me-in"
    ) as ok:
        assert_dog_photo(labels(ok.detect(dog)))


def served_detect(server: DetectorProcess) -> int:
    return sum('"method": "Detect"' in line for line in server.log_lines())


def test_tls_round_robin_over_two_server_processes(start_detector, tmp_path, dog):
    # One certificate for both, as replicas share one; it names 127.0.0.1.
    cert, key = self_signed_certificate(tmp_path)
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    servers = [
        start_detector(extra_args=args, root_certificates=cert) for _ in range(2)
    ]
    addresses = ",".join(s.address for s in servers)
    before = [served_detect(s) for s in servers]
    with DetectorClient(addresses, root_certificates=cert, retries=0) as client:
        for _ in range(6):
            assert_dog_photo(labels(client.detect(dog)))
    assert all(served_detect(s) > n for s, n in zip(servers, before, strict=True))
    # The name the certificate must carry can be given; a wrong one is refused.
    with (
        DetectorClient(
            addresses, root_certificates=cert, server_name="elsewhere", retries=0
        ) as wrong,
        pytest.raises(DetectorUnavailable),
    ):
        wrong.detect(dog)
    with DetectorClient(
        addresses, root_certificates=cert, server_name="localhost"
    ) as named:
        assert_dog_photo(labels(named.detect(dog)))


def big_photo(samples_dir: Path) -> bytes:
    """A 3000x2000 JPEG made from dog.jpg: a costly call."""
    with Image.open(samples_dir / "dog.jpg") as image:
        out = BytesIO()
        image.resize((3000, 2000)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_full_queue_is_resource_exhausted_and_the_server_recovers(
    start_detector, samples_dir, dog
):
    server = start_detector(extra_args=["--workers", "1", "--queue-size", "0"])
    data = big_photo(samples_dir)
    outcomes: list[str] = []
    busy = DetectorBusy.__name__

    def call(start: threading.Barrier) -> None:
        with DetectorClient(server.address, retries=0, timeout=60) as client:
            start.wait()
            try:
                client.detect(data)
                outcomes.append("ok")
            except DetectorError as exc:
                outcomes.append(type(exc).__name__)

    # One worker, no queue: of several simultaneous calls, one runs, the others
    # are refused. Rounds repeat only in case the calls happened not to overlap.
    for _ in range(5):
        start = threading.Barrier(6)
        threads = [threading.Thread(target=call, args=(start,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if busy in outcomes:
            break
    assert busy in outcomes
    assert "ok" in outcomes
    assert set(outcomes) <= {"ok", busy}
    with DetectorClient(server.address) as client:
        assert_dog_photo(labels(client.detect(dog)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not exposed")


def test_sigterm_lets_the_call_in_flight_finish_and_refuses_new_ones(
    start_detector, dog
):
    metrics_port = free_port()
    server = start_detector(
        extra_args=["--metrics-port", str(metrics_port), "--drain", "3"]
    )
    assert metric(metrics_port, "detector_model_info") == 1.0
    release = threading.Event()
    outcome: list[object] = []

    def slow_chunks() -> Iterator[detector_pb2.DetectStreamRequest]:
        yield detector_pb2.DetectStreamRequest(chunk=dog[:1000])
        release.wait(60)
        yield detector_pb2.DetectStreamRequest(chunk=dog[1000:])

    def stream_call() -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = channel.stream_unary(
                "/detection.v1.Detector/DetectStream",
                request_serializer=detector_pb2.DetectStreamRequest.SerializeToString,
                response_deserializer=detector_pb2.DetectResponse.FromString,
            )
            try:
                outcome.append(stub(slow_chunks(), timeout=60))
            except grpc.RpcError as exc:
                outcome.append(exc.code())

    caller = threading.Thread(target=stream_call)
    caller.start()
    try:
        while metric(metrics_port, "detector_calls_in_progress") < 1:
            time.sleep(0.01)
        server.process.terminate()
        with DetectorClient(server.address, retries=0, timeout=5) as client:
            status = client.health()
            while status == "SERVING":
                status = client.health()
            # During the drain health answers NOT_SERVING (probes are not refused)
            # and new calls are refused; the call in flight goes on.
            assert status == "NOT_SERVING"
            with pytest.raises(DetectorUnavailable, match="shutting down"):
                client.detect(dog)
            assert client.health() == "NOT_SERVING"
        release.set()
        caller.join()
        assert server.process.wait(60) == 0
    finally:
        release.set()
        server.stop()
    (reply,) = outcome
    assert isinstance(reply, detector_pb2.DetectResponse)
    assert "dog" in {d.label for d in reply.detections}
    events = [json.loads(line)["event"] for line in server.log_lines()]
    assert events.index("stopping") < events.index("stopped")


def test_idle_streams_neither_block_health_nor_hold_the_server(start_detector, dog):
    """Streams that send 2 bytes and then nothing, without a deadline, more of
    them than the server takes at once: health still answers, the extra streams
    are refused, the others are ended by the server's call limit."""
    metrics_port = free_port()
    args = ["--workers", "1", "--queue-size", "0", "--max-call-seconds", "5"]
    server = start_detector(extra_args=[*args, "--metrics-port", str(metrics_port)])
    streams, limit = 12, 9  # the limit is workers + queue + 8 spare
    hold = threading.Event()
    outcomes: list[grpc.StatusCode] = []

    def two_bytes_then_nothing() -> Iterator[detector_pb2.DetectStreamRequest]:
        yield detector_pb2.DetectStreamRequest(chunk=dog[:2])
        hold.wait(120)

    def all_streams_in() -> bool:
        held = metric(metrics_port, "detector_calls_in_progress")
        return held == limit and len(outcomes) == streams - limit

    def idle_stream() -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = detector_pb2_grpc.DetectorStub(channel)
            try:
                stub.DetectStream(two_bytes_then_nothing())
            except grpc.RpcError as exc:
                outcomes.append(exc.code())

    callers = [threading.Thread(target=idle_stream) for _ in range(streams)]
    try:
        for caller in callers:
            caller.start()
        for _ in range(500):
            if all_streams_in():
                break
            time.sleep(0.01)
        assert all_streams_in()
        with DetectorClient(server.address, retries=0, timeout=10) as client:
            assert client.health() == "SERVING"
            for caller in callers:
                caller.join(60)
            assert_dog_photo(labels(client.detect(dog)))
    finally:
        hold.set()
    # The extra streams were refused at once, the others ended by the limit.
    assert outcomes[: streams - limit] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
    assert outcomes[streams - limit :] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 9
    assert errors(metrics_port, "RESOURCE_EXHAUSTED") == streams - limit
    assert errors(metrics_port, "DEADLINE_EXCEEDED") == limit
    log = "\n".join(server.log_lines())
    assert "upload too slow" in log and "calls at once" in log


def errors(port: int, code: str) -> float:
    return metric(port, f'detector_errors_total{{code="{code}"}}')


def test_round_robin_over_two_server_processes(start_detector, dog):
    servers = [start_detector() for _ in range(2)]
    with DetectorClient(",".join(s.address for s in servers)) as client:
        for _ in range(6):
            assert_dog_photo(labels(client.detect(dog)))
    for server in servers:
        answered = [line for line in server.log_lines() if '"method": "Detect"' in line]
        assert len(answered) >= 1


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "detector_service", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_detect_prints_json_and_draws_boxes(detector, samples_dir, tmp_path):
    drawn = tmp_path / "dog-boxes.png"
    run = cli(
        "detect", str(samples_dir / "dog.jpg"), "--address", detector.address,
        "--draw", str(drawn),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (answer,) = json.loads(run.stdout)
    assert_dog_photo({d["label"] for d in answer["detections"]})
    assert (answer["image_width"], answer["image_height"]) == (768, 576)
    with Image.open(drawn) as image, Image.open(samples_dir / "dog.jpg") as photo:
        assert image.size == photo.size
        # The boxes are drawn in red over the photo.
        box = next(d["box"] for d in answer["detections"] if d["label"] == "dog")
        edge = (round(box["x_min"]) + 1, round((box["y_min"] + box["y_max"]) / 2))
        assert image.convert("RGB").getpixel(edge) == (255, 0, 0)


def test_cli_detect_local_and_info(model_dir, samples_dir, detector):
    files = [str(samples_dir / "person.jpg"), str(samples_dir / "missing.jpg")]
    run = cli("detect", "--local", "--model-dir", str(model_dir), *files)
    assert run.returncode == 1
    found, missing = json.loads(run.stdout)
    assert {"person", "dog"} <= {d["label"] for d in found["detections"]}
    assert "missing.jpg" in missing["error"]
    info = cli("info", "--address", detector.address)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["name"] == "yolov3-tiny"


def test_cli_reports_an_unreachable_server(tmp_path):
    run = cli("info", "--address", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert run.returncode == 1
    assert "UNAVAILABLE" in run.stderr


def test_missing_weights_are_a_clear_startup_error(tmp_path):
    process = DetectorProcess(model_dir=tmp_path, startup_timeout=60)
    with pytest.raises(DetectorStartError) as failed:
        process.start()
    message = str(failed.value)
    assert "exited with status 2" in message
    assert "fetch-model nanodet" in message  # the default model
