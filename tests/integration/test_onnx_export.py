"""The project's darknet-to-ONNX converter against OpenCV DNN, the reference that reads
darknet files itself: same raw outputs, same detections on real photos."""

from __future__ import annotations

from detector_service import cli
from detector_service import models
from detector_service import onnx_cache
from detector_service.backends.onnx import OnnxBackend
from detector_service.backends.opencv import OpenCVBackend
from detector_service.darknet.cfg import read_cfg
from detector_service.darknet.onnx_export import convert
from detector_service.darknet.onnx_export import converted_model
from detector_service.darknet.onnx_export import CONVERTER_VERSION
from detector_service.models import locate
from detector_service.models import ModelFiles
from detector_service.onnx_cache import is_verified
from detector_service.yolo import letterbox
from pathlib import Path
from PIL import Image
from toy_darknet import toy_model

import logging
import numpy as np
import onnxruntime
import pytest


# Measured on the darknet photos: at most 1.7e-4 on logits reaching 20-25 (float32
# summation order and BatchNorm folding differ between the two runtimes).
RAW_TOLERANCE = 1e-3
SHOWN = 0.3


@pytest.fixture(scope="module")
def tiny(model_dir: Path) -> ModelFiles:
    return locate("yolov3-tiny", model_dir)


@pytest.fixture(scope="module")
def backends(tiny: ModelFiles) -> tuple[OnnxBackend, OpenCVBackend]:
    return OnnxBackend(tiny), OpenCVBackend(tiny)


def _photo(samples_dir: Path, name: str) -> np.ndarray:
    with Image.open(samples_dir / name) as image:
        return np.asarray(image.convert("RGB"))


def test_converted_yolov3_tiny_gives_opencv_raw_outputs(backends, samples_dir):
    onnx_backend, opencv_backend = backends
    inputs, _ = letterbox(_photo(samples_dir, "dog.jpg"), 416, 416)
    batch = inputs[None]
    ours = onnx_backend.raw_outputs(batch)
    reference = opencv_backend.raw_outputs(batch)
    assert [a.shape for a in ours] == [(1, 255, 13, 13), (1, 255, 26, 26)]
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine.shape == theirs.shape
        assert np.abs(mine - theirs).max() < RAW_TOLERANCE
        # Logits span tens; a wrong layer would differ by far more than the tolerance.
        assert np.abs(theirs).max() > 5


def _shown(found):
    return [d for d in found if d.score >= SHOWN]


@pytest.mark.parametrize(
    ("photo", "expected"),
    [
        ("dog.jpg", [{"dog"}, {"bicycle"}, {"car", "truck"}]),
        ("person.jpg", [{"person"}, {"dog"}, {"horse"}]),
    ],
)
def test_both_backends_find_the_same_objects(backends, samples_dir, photo, expected):
    image = _photo(samples_dir, photo)
    onnx_found, opencv_found = (_shown(b.predict([image])[0]) for b in backends)
    labels = {d.label for d in onnx_found}
    for alternatives in expected:
        assert labels & alternatives, f"{photo}: none of {alternatives} in {labels}"
    assert [d.label for d in onnx_found] == [d.label for d in opencv_found]
    for mine, theirs in zip(onnx_found, opencv_found, strict=True):
        assert mine.score == pytest.approx(theirs.score, abs=1e-3)
        assert mine.box.x_min == pytest.approx(theirs.box.x_min, abs=0.5)
        assert mine.box.y_max == pytest.approx(theirs.box.y_max, abs=0.5)
    height, width = image.shape[:2]
    for d in onnx_found:
        assert 0 <= d.box.x_min < d.box.x_max <= width
        assert 0 <= d.box.y_min < d.box.y_max <= height


def test_a_batch_gives_what_single_images_give(backends, samples_dir):
    onnx_backend, _ = backends
    dog, person = _photo(samples_dir, "dog.jpg"), _photo(samples_dir, "person.jpg")
    together = onnx_backend.predict([dog, person])
    assert [_shown(found) for found in together] == [
        _shown(onnx_backend.predict([dog])[0]),
        _shown(onnx_backend.predict([person])[0]),
    ]


def test_the_model_info_names_runtime_and_weights(backends, tiny):
    onnx_backend, opencv_backend = backends
    assert onnx_backend.info.framework.startswith("onnxruntime ")
    assert opencv_backend.info.framework.startswith("opencv 4.")
    assert onnx_backend.info.version == tiny.weights_sha256[:12]
    assert (onnx_backend.info.input_width, onnx_backend.info.input_height) == (416, 416)
    assert len(onnx_backend.info.labels) == 80
    assert "motorcycle" in onnx_backend.info.labels


def test_the_converted_model_is_cached_by_weights_digest(tiny):
    path = converted_model(tiny)
    assert path.name == f"yolov3-tiny-{tiny.version}-c{CONVERTER_VERSION}.onnx"
    before = path.stat().st_mtime_ns
    assert converted_model(tiny) == path
    assert path.stat().st_mtime_ns == before


def test_a_damaged_cached_conversion_is_converted_again(tmp_path, caplog):
    files = toy_model(tmp_path, seed=4)
    path = converted_model(files)
    path.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, "detector_service.onnx_cache"):
        assert converted_model(files) == path
    assert "converting the model again" in caplog.text
    assert is_verified(path)
    batch = np.zeros((1, 3, 64, 64), np.float32)
    assert OnnxBackend(files).raw_outputs(batch)[0].shape == (1, 21, 16, 16)


def test_a_conversion_without_its_recorded_checksum_is_not_trusted(tmp_path):
    files = toy_model(tmp_path, seed=5)
    path = converted_model(files)
    path.with_name(path.name + ".sha256").unlink()
    path.write_bytes(b"left by someone else")
    assert converted_model(files) == path
    assert is_verified(path)
    assert path.read_bytes() != b"left by someone else"


def test_a_read_only_model_folder_falls_back_to_the_users_own_cache(
    monkeypatch, tmp_path
):
    models_dir, cache = tmp_path / "models", tmp_path / "cache"
    models_dir.mkdir()
    files = toy_model(models_dir, seed=6)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    write = onnx_cache._write_atomically

    def read_only_models(path: Path, data) -> None:
        if path.parent == models_dir:
            raise PermissionError(f"read-only: {path}")
        write(path, data)

    monkeypatch.setattr(onnx_cache, "_write_atomically", read_only_models)
    path = converted_model(files)
    assert path.parent == cache / "detector-service" / "onnx"
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert list(models_dir.glob("*.onnx")) == []
    # A file there is used only while it matches the checksum recorded with it.
    path.write_bytes(b"planted")
    assert converted_model(files) == path
    assert is_verified(path)


def test_fetch_model_rebuilds_a_damaged_conversion(monkeypatch, tmp_path, capsys):
    files = toy_model(tmp_path, seed=9)
    monkeypatch.setitem(models.MODELS, "toy", files.spec)
    path = converted_model(files)
    path.write_bytes(b"garbage")
    assert cli.main(["fetch-model", "toy", "--model-dir", str(tmp_path)]) == 0
    assert is_verified(path)
    assert "ONNX conversion in place and verified" in capsys.readouterr().err


def _raw_outputs(files: ModelFiles, batch: np.ndarray):
    """The raw heads of our conversion on ONNX Runtime, and OpenCV's reading."""
    ours = OnnxBackend(files).raw_outputs(batch)
    return ours, OpenCVBackend(files).raw_outputs(batch)


def test_every_layer_type_converts_like_opencv_reads_it(tmp_path):
    files = toy_model(tmp_path, seed=7)
    batch = np.random.default_rng(8).random((2, 3, 64, 64), dtype=np.float32)
    ours, reference = _raw_outputs(files, batch)
    assert [a.shape for a in ours] == [(2, 21, 16, 16), (2, 21, 64, 64)]
    for mine, theirs in zip(ours, reference, strict=True):
        assert np.abs(mine - theirs).max() < 1e-4 * max(1.0, np.abs(theirs).max())


def test_new_weights_get_a_new_conversion_and_the_old_one_goes(tmp_path):
    first = converted_model(toy_model(tmp_path, seed=1))
    second_files = toy_model(tmp_path, seed=2)
    second = converted_model(second_files)
    assert second != first
    assert second.name == f"toy-{second_files.version}-c{CONVERTER_VERSION}.onnx"
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == [second.name]
    batch = np.random.default_rng(3).random((1, 3, 64, 64), dtype=np.float32)
    ours, reference = _raw_outputs(second_files, batch)
    assert np.abs(ours[0] - reference[0]).max() < 1e-3


class _ZeroWeights:
    """Stands in for a weights file: hands out zeros and counts them."""

    remaining = 0

    def __init__(self) -> None:
        self.taken = 0

    def take(self, count: int) -> np.ndarray:
        self.taken += count
        return np.zeros(count, dtype=np.float32)


def test_the_full_yolov3_cfg_converts_and_wants_the_official_file_size():
    cfg_file = models.MODELS["yolov3"].files[0]
    (cfg_path,) = cfg_file.candidates(Path("/nonexistent"))
    weights = _ZeroWeights()
    model = convert(read_cfg(cfg_path), weights, "yolov3", (416, 416))
    # The official yolov3.weights: 248,007,048 bytes = 20 header bytes + floats.
    assert weights.taken * 4 + 20 == 248_007_048
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, {"images": np.zeros((1, 3, 416, 416), np.float32)})
    assert [o.shape for o in outputs] == [
        (1, 255, 13, 13),
        (1, 255, 26, 26),
        (1, 255, 52, 52),
    ]
