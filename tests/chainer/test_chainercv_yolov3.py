"""ChainerCV's own YOLOv3 (``yolov3-voc0712``): missing weights, and the loading code.

The real voc0712 weights are on no registry, so this machine cannot have them: their
absence must be a quick, clear error that leaves nothing behind. The loading and
prediction code runs on a YOLOv3 saved here with ChainerCV's initial weights.
"""

from __future__ import annotations

from chainercv.links import YOLOv3
from detector_service.backends import load_backend
from detector_service.backends.chainer import _chainercv_detections
from detector_service.backends.chainer import ChainerCVYOLOv3Backend
from detector_service.labels import VOC_LABELS
from detector_service.models import get_spec
from detector_service.models import ModelUnavailable
from detector_service.types import Box
from pathlib import Path
from PIL import Image

import chainer
import numpy as np
import pytest
import time


MODEL = "yolov3-voc0712"


@pytest.fixture
def dataset_root(tmp_path, monkeypatch) -> Path:
    """ChainerCV's download cache, empty, where this test can see what lands in it."""
    root = tmp_path / "chainer-dataset"
    root.mkdir()
    monkeypatch.setenv("CHAINER_DATASET_ROOT", str(root))
    monkeypatch.setattr(chainer.dataset.download, "_dataset_root", str(root))
    return root


def test_missing_weights_fail_fast_naming_the_fix(tmp_path, dataset_root):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        load_backend("chainer", MODEL, model_dir)
    assert time.monotonic() - started < 10  # no download attempt, no retry loop
    message = str(raised.value)
    assert "yolo_v3_voc0712_converted_2018_05_01.npz" in message
    assert f"detector-service fetch-model {MODEL}" in message
    # ChainerCV's own download path was not taken: no lock files, no cache folders.
    assert list(dataset_root.rglob("*")) == []
    assert list(model_dir.iterdir()) == []


DOG = VOC_LABELS.index("dog")
LOGIT = 5.0  # sigmoid(5) = 0.9933


def yolov3_seeing_dogs() -> YOLOv3:
    """A 20-class YOLOv3 whose first head reports, in every cell, a dog of its first
    anchor's size (90 high, 116 wide at 416x416) with score sigmoid(5) ** 2."""
    np.random.seed(0)  # ChainerCV's initialisers draw from numpy's global generator
    model = YOLOv3(n_fg_class=20)
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        model(np.zeros((1, 3, 32, 32), dtype=np.float32))  # materialise lazy weights
    per_anchor = 4 + 1 + 20
    for index, head in enumerate(model.subnet):
        conv = head[-1]
        conv.W.array[...] = 0
        conv.b.array[...] = -20  # objectness and classes off, locations exp(-20)
        if index == 0:
            conv.b.array[:4] = 0  # centred, anchor-sized
            conv.b.array[4] = LOGIT
            conv.b.array[5 + DOG] = LOGIT
        assert conv.b.array.size == 3 * per_anchor
    return model


@pytest.fixture(scope="module")
def saved_yolov3(tmp_path_factory) -> tuple[Path, YOLOv3]:
    """That YOLOv3 saved where ``yolov3-voc0712``'s weights go."""
    model_dir = tmp_path_factory.mktemp("models")
    model = yolov3_seeing_dogs()
    (weights,) = (f.filename for f in get_spec(MODEL).files if f.role == "weights")
    chainer.serializers.save_npz(model_dir / weights, model, compression=False)
    return model_dir, model


def test_voc0712_weights_load_into_chainercv_yolov3(saved_yolov3, samples_dir):
    model_dir, saved = saved_yolov3
    backend = load_backend("chainer", MODEL, model_dir)

    assert isinstance(backend, ChainerCVYOLOv3Backend)
    assert backend.info.labels == VOC_LABELS
    assert backend.info.framework.startswith("chainer 7.8.1 / chainercv 0.13.1")
    loaded = dict(backend.model.namedparams())
    assert loaded.keys() == dict(saved.namedparams()).keys()
    for name, param in saved.namedparams():
        np.testing.assert_array_equal(loaded[name].array, param.array, err_msg=name)

    image = np.asarray(Image.open(samples_dir / "dog.jpg").convert("RGB"))
    (found,) = backend.predict([image])
    assert len(found) > 4  # a grid of dogs, thinned by NMS
    assert {d.label for d in found} == {"dog"}
    score = (1 / (1 + np.exp(-LOGIT))) ** 2
    np.testing.assert_allclose([d.score for d in found], score, rtol=1e-5)
    scale = 768 / 416  # the 768x576 photo was resized to 416x312 (ChainerCV pads)
    for detection in found:
        box = detection.box
        assert 0 <= box.x_min < box.x_max <= 768 and 0 <= box.y_min < box.y_max <= 576
        if box.x_min > 0 and box.x_max < 768 and box.y_min > 0 and box.y_max < 576:
            assert box.x_max - box.x_min == pytest.approx(116 * scale, rel=1e-3)
            assert box.y_max - box.y_min == pytest.approx(90 * scale, rel=1e-3)
    assert backend.predict([]) == []


def test_weights_of_another_model_are_refused(saved_yolov3, tmp_path):
    model_dir, _ = saved_yolov3
    (weights,) = (f.filename for f in get_spec(MODEL).files if f.role == "weights")
    with np.load(model_dir / weights) as arrays:
        kept = {k: arrays[k] for k in arrays.files if not k.startswith("subnet/2/")}
    np.savez(tmp_path / weights, **kept)

    with pytest.raises(ModelUnavailable, match="is not ChainerCV YOLOv3 weights"):
        load_backend("chainer", MODEL, tmp_path)


def test_chainercv_boxes_become_clipped_detections_in_x_y_order_best_first():
    bbox = np.array([[10, 20, 30, 40], [1, 2, 3, 4]], dtype=np.float32)  # y, x, y, x
    label = np.array([11, 14])
    score = np.array([0.4, 0.9], dtype=np.float32)

    found = _chainercv_detections(bbox, label, score, VOC_LABELS, (25, 35))

    assert [d.label for d in found] == ["person", "dog"]
    assert [d.score for d in found] == pytest.approx([0.9, 0.4])
    assert found[0].box == Box(x_min=2, y_min=1, x_max=4, y_max=3)
    # Clipped to the 35x25 image, as the darknet path's boxes are.
    assert found[1].box == Box(x_min=20, y_min=10, x_max=35, y_max=25)
