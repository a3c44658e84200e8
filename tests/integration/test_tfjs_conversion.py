"""The TF.js-to-ONNX converter against TensorFlow.js itself: the npm package's graph
run by @tensorflow/tfjs (pure JavaScript, pinned in tests/tfjs/package-lock.json) in
Node, and our ONNX conversion run by ONNX Runtime, on the same real photo."""

from __future__ import annotations

from detector_service.backends.onnx import FamilyBackend
from detector_service.families.centernet import CenterNet
from detector_service.models import locate
from detector_service.models import ModelFiles
from detector_service.tfjs.onnx_export import converted_model
from pathlib import Path
from PIL import Image

import json
import numpy as np
import pytest
import shutil
import subprocess


TFJS = Path(__file__).resolve().parent.parent / "tfjs"
# Measured on dog.jpg and kite.jpg: at most 3.7e-6 of an output's largest value
# (NanoDet: 1.2e-5 on box logits up to 11.8, 8e-7 on scores; CenterNet: 1.7e-3 on
# box sides up to 476 pixels, 8e-7 on the heatmap): float32 summation order. A
# wrong op, weight or layout differs by far more.
RELATIVE_TOLERANCE = 1e-4


def run_tfjs(
    files: ModelFiles, inputs: np.ndarray, outputs: list[str], tmp_path: Path
) -> list[np.ndarray]:
    """The graph's ``outputs`` computed by TensorFlow.js on ``inputs``."""
    node = shutil.which("node")
    if node is None or not (TFJS / "node_modules").is_dir():
        pytest.fail("Node.js or TensorFlow.js missing: run `make tfjs`")
    (tmp_path / "input.f32").write_bytes(inputs.astype("<f4").tobytes())
    graph = files.paths["graph"]
    (input_name,) = [
        name.removesuffix(":0")
        for name in json.loads(graph.read_text())["signature"]["inputs"]
    ]
    request = {
        "model": str(graph),
        "input": {
            "name": input_name,
            "file": str(tmp_path / "input.f32"),
            "shape": list(inputs.shape),
        },
        "outputs": outputs,
        "out_dir": str(tmp_path),
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    done = subprocess.run(
        [node, str(TFJS / "run-graph.js"), str(tmp_path / "request.json")],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shapes = json.loads(done.stdout)["shapes"]
    return [
        np.fromfile(tmp_path / f"{index}.f32", dtype="<f4").reshape(shape)
        for index, shape in enumerate(shapes)
    ]


def _backend(name: str, model_dir: Path) -> FamilyBackend:
    files = locate(name, model_dir)
    return FamilyBackend(files, converted_model(files))


def _photo(samples_dir: Path) -> np.ndarray:
    with Image.open(samples_dir / "dog.jpg") as image:
        return np.asarray(image.convert("RGB"))


def assert_close(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    scale = float(np.abs(reference).max())
    assert np.abs(ours - reference).max() <= RELATIVE_TOLERANCE * max(scale, 1.0)


def test_nanodet_converted_gives_the_tfjs_graphs_outputs(
    model_dir, samples_dir, tmp_path
):
    backend = _backend("nanodet", model_dir)
    spec = locate("nanodet", model_dir).spec
    inputs, _ = backend.family.prepare(_photo(samples_dir))
    batch = inputs[None].astype(np.float32)
    ours = backend.session.run(None, {backend.input_name: batch})
    reference = run_tfjs(
        locate("nanodet", model_dir),
        batch,
        [node for node, _ in spec.outputs],
        tmp_path,
    )
    for mine, theirs in zip(ours, reference, strict=True):
        assert_close(mine, theirs)
    # Scores are probabilities and the finest level's box logits vary: a real image.
    assert 0.5 < max(float(r.max()) for r in reference[:3]) <= 1.0
    assert np.abs(reference[3]).max() > 1.0


def test_centernet_converted_and_decoded_gives_the_tfjs_graphs_detections(
    model_dir, samples_dir, tmp_path
):
    files = locate("centernet", model_dir)
    backend = _backend("centernet", model_dir)
    inputs, _ = backend.family.prepare(_photo(samples_dir))
    batch = inputs[None].astype(np.float32)
    heatmap, sides = backend.session.run(None, {backend.input_name: batch})
    reference_heatmap, reference_sides, detections = run_tfjs(
        files,
        batch,
        ["tower_0/keypoints", "tower_0/wh", "tower_0/detections"],
        tmp_path,
    )
    assert_close(heatmap, reference_heatmap)
    assert_close(sides, reference_sides)
    # The graph's own top-k decoding (x_min, y_min, x_max, y_max, score, class),
    # against ours on the graph's own outputs.
    family = CenterNet(files.spec.labels, 512, 512, score_floor=0.1)
    boxes, scores, classes = family.candidates(
        [reference_heatmap[0], reference_sides[0]]
    )
    expected = detections[0][detections[0][:, 4] > 0.1]
    assert len(expected) >= 3
    np.testing.assert_allclose(scores, expected[:, 4], rtol=1e-6)
    np.testing.assert_array_equal(classes, expected[:, 5].astype(int))
    np.testing.assert_allclose(boxes, expected[:, :4], atol=1e-3)
