"""Darknet's YOLOv3-tiny COCO weights on the Chainer network, against ONNX Runtime.

ONNX Runtime cannot be installed beside chainer (numpy 1 here, numpy 2 there), so the
reference outputs are computed by the main virtualenv's ``onnx`` backend in a child
process, on the very same letterboxed inputs.
"""

from __future__ import annotations

from detector_service.backends import load_backend
from detector_service.backends.chainer import DarknetChainerBackend
from detector_service.backends.chainer import DarknetNetwork
from detector_service.darknet.cfg import read_cfg
from detector_service.darknet.weights import WeightsReader
from detector_service.labels import COCO_LABELS
from detector_service.models import locate
from detector_service.models import ModelFiles
from detector_service.yolo import letterbox
from pathlib import Path
from PIL import Image
from toy_darknet import toy_model

import numpy as np
import os
import pytest
import subprocess


REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ("dog.jpg", "person.jpg")

# Run by the main venv: the project's darknet-to-ONNX converter on ONNX Runtime.
ONNX_REFERENCE = """
import sys
from pathlib import Path
import numpy as np
import onnxruntime
from detector_service.darknet.cfg import read_cfg
from detector_service.darknet.onnx_export import export
cfg, weights, batch, out = map(Path, sys.argv[1:])
model = export(read_cfg(cfg), weights, out.with_suffix(".onnx"), "reference")
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
np.savez(out, *session.run(None, {"images": np.load(batch)}))
"""


def onnx_reference(
    python: Path, cfg: Path, weights: Path, batch: np.ndarray, tmp_path: Path
) -> list[np.ndarray]:
    np.save(tmp_path / "batch.npy", batch)
    out = tmp_path / "reference.npz"
    arguments = [str(path) for path in (cfg, weights, tmp_path / "batch.npy", out)]
    done = subprocess.run(
        [str(python), "-c", ONNX_REFERENCE, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with np.load(out) as saved:
        return [saved[f"arr_{index}"] for index in range(len(saved.files))]


@pytest.fixture(scope="module")
def tiny_files(model_dir: Path) -> ModelFiles:
    return locate("yolov3-tiny", model_dir)


@pytest.fixture(scope="module")
def backend(tiny_files: ModelFiles) -> DarknetChainerBackend:
    return DarknetChainerBackend(tiny_files)


@pytest.fixture(scope="module")
def photos(samples_dir: Path) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(Image.open(samples_dir / name).convert("RGB"))
        for name in PHOTOS
    }


@pytest.fixture(scope="module")
def main_python() -> Path:
    """The main virtualenv's interpreter, where ONNX Runtime is."""
    path = Path(os.environ.get("MAIN_VENV") or REPO_ROOT / ".venv") / "bin" / "python"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make install`")
    return path


def test_raw_heads_equal_onnx_runtime(
    backend, photos, tiny_files, main_python, tmp_path
):
    batch = np.stack([letterbox(image, 416, 416)[0] for image in photos.values()])
    reference = onnx_reference(
        main_python, tiny_files.cfg, tiny_files.weights, batch, tmp_path
    )

    outputs = backend.raw_outputs(batch)

    assert [o.shape for o in outputs] == [(2, 255, 13, 13), (2, 255, 26, 26)]
    assert [o.shape for o in outputs] == [r.shape for r in reference]
    for output, expected in zip(outputs, reference, strict=True):
        # Raw logits reach about 25; float32 summation order differs by runtime.
        np.testing.assert_allclose(output, expected, rtol=0, atol=1e-3)


def test_every_layer_kind_equals_onnx_runtime(main_python, tmp_path):
    toy = toy_model(tmp_path, seed=7)
    batch = np.random.default_rng(8).uniform(0, 1, (2, 3, 64, 64)).astype(np.float32)
    reference = onnx_reference(main_python, toy.cfg, toy.weights, batch, tmp_path)

    outputs = DarknetNetwork(read_cfg(toy.cfg), WeightsReader(toy.weights))(batch)

    assert [o.shape for o in outputs] == [(2, 21, 16, 16), (2, 21, 64, 64)]
    for output, expected in zip(outputs, reference, strict=True):
        assert np.abs(expected).max() > 0.1  # the network does compute something
        np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)


def labels_above(detections, score: float) -> set[str]:
    return {d.label for d in detections if d.score >= score}


def test_dog_photo_gives_dog_bicycle_and_car_or_truck(backend, photos):
    (found,) = backend.predict([photos["dog.jpg"]])
    labels = labels_above(found, 0.3)
    assert {"dog", "bicycle"} <= labels
    assert labels & {"car", "truck"}
    dog = next(d for d in found if d.label == "dog")
    # The dog sits in the lower left of the 768x576 photo.
    assert 0 <= dog.box.x_min < dog.box.x_max < 768 / 2 + 100
    assert 576 / 3 < dog.box.y_max <= 576


def test_person_photo_gives_person_dog_and_horse(backend, photos):
    (found,) = backend.predict([photos["person.jpg"]])
    assert {"person", "dog", "horse"} <= labels_above(found, 0.3)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


def test_a_batch_gives_what_single_images_give(backend, photos):
    batched = backend.predict(list(photos.values()))
    singles = [backend.predict([image])[0] for image in photos.values()]
    assert [[d.label for d in found] for found in batched] == [
        [d.label for d in found] for found in singles
    ]
    for found, single in zip(batched, singles, strict=True):
        np.testing.assert_allclose(
            [d.score for d in found], [d.score for d in single], atol=1e-5
        )
    assert backend.predict([]) == []


def test_model_info_names_chainer_and_the_weights(model_dir, tiny_files):
    backend = load_backend("chainer", "yolov3-tiny", model_dir)
    info = backend.info
    assert info.framework.startswith("chainer 7.8.1 / chainercv 0.13.1")
    assert (info.name, info.input_width, info.input_height) == ("yolov3-tiny", 416, 416)
    assert info.version == tiny_files.version
    assert info.labels == COCO_LABELS


def test_weights_shorter_than_the_network_are_refused(tiny_files, tmp_path):
    short = tmp_path / "short.weights"
    short.write_bytes(tiny_files.weights.read_bytes()[:-4096])
    with pytest.raises(ValueError, match="does not match the cfg"):
        DarknetNetwork(read_cfg(tiny_files.cfg), WeightsReader(short))


def test_weights_longer_than_the_network_are_refused(tiny_files, tmp_path):
    long = tmp_path / "long.weights"
    long.write_bytes(tiny_files.weights.read_bytes() + bytes(4096))
    with pytest.raises(ValueError, match="left in the weights file"):
        DarknetNetwork(read_cfg(tiny_files.cfg), WeightsReader(long))
