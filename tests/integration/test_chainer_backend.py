"""The Chainer backend in a real server process, over real gRPC, from the main venv.

The server runs under .venv-chainer's interpreter (chainer needs numpy 1, this venv
has numpy 2): darknet's YOLOv3-tiny weights on the Chainer network, through both
contracts. A missing .venv-chainer fails, naming ``make chainer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from detector_service.client import DetectorClient
from detector_service.launcher import DetectorProcess
from detector_service.launcher import DetectorStartError
from detector_service.proto.legacy import mlserver_pb2
from detector_service.proto.legacy import mlserver_pb2_grpc
from pathlib import Path

import grpc
import os
import pytest


REPO_ROOT = Path(__file__).resolve().parents[2]
CHUNK = 16 * 1024


@pytest.fixture(scope="module")
def chainer_python() -> Path:
    # The same variable as scripts/run-tests.sh; relative to the repository.
    venv = REPO_ROOT / os.environ.get("CHAINER_VENV", ".venv-chainer")
    python = venv / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"{python} is missing: run `make chainer`")
    return python


@pytest.fixture(scope="module")
def chainer_detector(
    chainer_python: Path, model_dir: Path
) -> Iterator[DetectorProcess]:
    process = DetectorProcess(
        "chainer", "yolov3-tiny", model_dir, python=chainer_python
    )
    try:
        process.start()
    except DetectorStartError as exc:
        pytest.fail(f"{exc}\n(run `make chainer` and `make models`)")
    yield process
    process.stop()


@pytest.fixture
def client(chainer_detector: DetectorProcess) -> Iterator[DetectorClient]:
    with DetectorClient(chainer_detector.address, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def dog(samples_dir: Path) -> bytes:
    return (samples_dir / "dog.jpg").read_bytes()


def assert_dog_photo(labels: set[str]) -> None:
    assert {"dog", "bicycle"} <= labels
    assert labels & {"car", "truck"}


def test_the_server_runs_yolov3_tiny_on_chainer(client):
    assert client.health() == "SERVING"
    info = client.model_info()
    assert info.framework.startswith("chainer 7.8.1 / chainercv 0.13.1")
    assert (info.name, info.input_width, info.input_height) == ("yolov3-tiny", 416, 416)
    assert "dog" in info.labels and len(info.labels) == 80


def test_detect_finds_dog_bicycle_and_car(client, dog):
    result = client.detect(dog)
    assert_dog_photo({d.label for d in result.detections})
    assert (result.image_width, result.image_height) == (768, 576)
    box = next(d.box for d in result.detections if d.label == "dog")
    # The dog sits in the lower left of the photo.
    assert 0 <= box.x_min < box.x_max < 768 / 2 + 100
    assert 576 / 3 < box.y_max <= 576


def test_detect_finds_person_dog_and_horse(client, samples_dir):
    result = client.detect((samples_dir / "person.jpg").read_bytes())
    assert {"person", "dog", "horse"} <= {d.label for d in result.detections}


def test_detect_stream_gives_the_same_answer(chainer_detector, client, dog):
    with DetectorClient(
        chainer_detector.address, timeout=60, chunk_bytes=CHUNK
    ) as streaming:
        streamed = streaming.detect(dog)
    assert len(dog) > 2 * CHUNK  # so it really went through DetectStream in chunks
    assert_dog_photo({d.label for d in streamed.detections})
    assert streamed.detections == client.detect(dog).detections


def test_mlserver_predict_of_2018_finds_the_dog(chainer_detector, dog):
    with grpc.insecure_channel(chainer_detector.address) as channel:
        predict = mlserver_pb2_grpc.MLServerStub(channel).predict
        chunks = (
            mlserver_pb2.Chunk(buffer=dog[start : start + CHUNK])
            for start in range(0, len(dog), CHUNK)
        )
        reply = predict(chunks, timeout=60)
    assert_dog_photo(set(reply.classes))
    assert len(reply.boxes) == len(reply.classes) == len(reply.confs)
    y_min, x_min, y_max, x_max = reply.boxes[list(reply.classes).index("dog")].box
    assert 0 <= x_min < x_max < 768 / 2 + 100
    assert 576 / 3 < y_max <= 576 and y_min < y_max
