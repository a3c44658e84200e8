"""An operator's own ONNX export served by a real detector process: here our own
NanoDet conversion standing for an export of it, with a labels file."""

from __future__ import annotations

from detector_service.client import DetectorClient
from detector_service.labels import COCO_LABELS
from detector_service.launcher import DetectorProcess
from detector_service.launcher import DetectorStartError
from detector_service.models import locate
from detector_service.tfjs.onnx_export import converted_model
from pathlib import Path

import pytest
import shutil


@pytest.fixture(scope="module")
def export(model_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("own")
    onnx_file = folder / "my-detector.onnx"
    shutil.copy(converted_model(locate("nanodet", model_dir)), onnx_file)
    labels = folder / "labels.txt"
    labels.write_text("\n".join(COCO_LABELS) + "\n")
    return onnx_file, labels


def test_an_own_model_is_served_under_its_file_name(export, samples_dir, tmp_path):
    onnx_file, labels = export
    env = {
        "DETECTOR_MODEL_FILE": str(onnx_file),
        "DETECTOR_MODEL_FAMILY": "nanodet",
        "DETECTOR_LABELS_FILE": str(labels),
    }
    with (
        DetectorProcess(model_dir=tmp_path, env=env) as process,
        DetectorClient(process.address, timeout=60) as client,
    ):
        info = client.model_info()
        result = client.detect((samples_dir / "dog.jpg").read_bytes())
    assert (info.name, info.input_width, info.input_height) == ("my-detector", 416, 416)
    assert {"dog", "bicycle"} <= {d.label for d in result.detections}


def test_the_wrong_family_stops_the_server_with_what_was_expected(export, tmp_path):
    onnx_file, labels = export
    process = DetectorProcess(
        model_dir=tmp_path,
        extra_args=[
            "--model-file",
            str(onnx_file),
            "--model-family",
            "yolov8",
            "--labels-file",
            str(labels),
        ],
    )
    with pytest.raises(DetectorStartError) as caught:
        process.start()
    assert "are not those of a yolov8 model with 80 labels" in str(caught.value)
    assert process.process.returncode == 2
