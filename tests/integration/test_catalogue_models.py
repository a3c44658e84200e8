"""NanoDet and CenterNet served by a real detector process, chosen as an operator
would (``DETECTOR_MODEL``), answering both contracts over loopback gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from detector_service.client import DetectorClient
from detector_service.labels import COCO_LABELS
from detector_service.launcher import DetectorProcess
from detector_service.launcher import DetectorStartError
from pathlib import Path
from test_legacy_client import ask
from test_legacy_client import generate_client

import pytest


@pytest.fixture(scope="module", params=["nanodet", "centernet"])
def served(request, model_dir: Path) -> Iterator[tuple[str, DetectorProcess]]:
    name = request.param
    # No --model: the server reads DETECTOR_MODEL, as `make start` passes it on.
    process = DetectorProcess(model_dir=model_dir, env={"DETECTOR_MODEL": name})
    try:
        process.start()
    except DetectorStartError as exc:
        pytest.fail(f"{exc}\n(models missing? run `make models`)")
    yield name, process
    process.stop()


def test_detect_finds_the_dog_and_the_bicycle(served, samples_dir):
    name, process = served
    with DetectorClient(process.address, timeout=60) as client:
        result = client.detect((samples_dir / "dog.jpg").read_bytes())
    assert result.model.name == name
    found = {d.label for d in result.detections}
    assert {"dog", "bicycle"} <= found, found
    # The dog sits in the lower left of the 768x576 photo.
    box = next(d.box for d in result.detections if d.label == "dog")
    assert 0 <= box.x_min < box.x_max < 768 / 2 + 100
    assert 576 / 3 < box.y_max <= 576


def test_model_info_reports_the_model(served):
    name, process = served
    with DetectorClient(process.address, timeout=30) as client:
        info = client.model_info()
    size = {"nanodet": 416, "centernet": 512}[name]
    assert (info.name, info.input_width, info.input_height) == (name, size, size)
    assert info.framework.startswith("onnxruntime ")
    assert len(info.version) == 12
    assert info.labels == COCO_LABELS


def test_the_2018_contract_answers_the_same(served, samples_dir, tmp_path):
    _, process = served
    script = generate_client(tmp_path)
    reply = ask(script, process.address, samples_dir / "dog.jpg")
    assert {"dog", "bicycle"} <= set(reply["classes"])
    y_min, x_min, y_max, x_max = reply["boxes"][reply["classes"].index("dog")]
    assert 0 <= x_min < x_max < 768 / 2 + 100
    assert y_min < y_max <= 576
