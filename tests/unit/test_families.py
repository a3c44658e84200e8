"""Each model family's decoding, on small ONNX graphs built here whose outputs are
known, served as an operator's own model (``--model-file``) would be."""

from __future__ import annotations

from detector_service import cli
from detector_service.backends import load_backend
from detector_service.config import ServerConfig
from detector_service.families import FamilyMismatch
from detector_service.families.base import grid_cells
from detector_service.models import ModelUnavailable
from onnx import helper
from onnx import numpy_helper
from onnx import TensorProto
from pathlib import Path
from PIL import Image

import numpy as np
import onnx
import pytest


LABELS = ("cat", "dog")
SIZE = 64
CELLS = len(grid_cells(SIZE, SIZE, (8, 16, 32)))  # 64 + 16 + 4


def constant_model(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_shape: tuple[int, ...] = (1, 3, SIZE, SIZE),
) -> Path:
    """An ONNX model with an image input whose outputs are ``outputs``, whatever
    the image (plus 0 x its mean, so the input is used)."""
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0)]
    nodes.append(
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    )
    initializers = [numpy_helper.from_array(np.float32(0.0), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        initializers.append(numpy_helper.from_array(value, f"{name}_value"))
        if value.dtype == np.float32:
            nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        else:
            nodes.append(helper.make_node("Identity", [f"{name}_value"], [name]))
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        graph_outputs.append(helper.make_tensor_value_info(name, elem, value.shape))
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)],
        graph_outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def serve_own(tmp_path: Path, model: Path, family: str, labels=LABELS):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    return load_backend(
        "onnx",
        "unused",
        tmp_path,
        model_file=model,
        model_family=family,
        labels_file=labels_file,
    )


def image(width: int = SIZE, height: int = SIZE) -> np.ndarray:
    return np.zeros((height, width, 3), dtype=np.uint8)


def only(found):
    (detection,) = found
    box = detection.box
    return (
        detection.label,
        detection.score,
        (box.x_min, box.y_min, box.x_max, box.y_max),
    )


def yolox_rows() -> np.ndarray:
    rows = np.zeros((CELLS, 5 + len(LABELS)), np.float32)
    # Stride 16's cell at column 1, row 0: offset (0.5, 0.5), size exp(0) x 16.
    rows[64 + 1] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.1, 0.8]
    return rows


def test_yolox_decodes_grid_offsets_and_log_sizes_in_the_top_left(tmp_path):
    model = constant_model(tmp_path / "x.onnx", {"output": yolox_rows()[None]})
    backend = serve_own(tmp_path, model, "yolox")
    assert (backend.info.input_width, backend.info.input_height) == (SIZE, SIZE)
    label, score, box = only(backend.predict([image()])[0])
    assert label == "dog"
    assert score == pytest.approx(0.72)
    # Centre (1.5 x 16, 0.5 x 16) = (24, 8), 16 x 16.
    assert box == pytest.approx((16, 0, 32, 16))
    # A 128x64 image is scaled by 0.5 into the top left (YOLOX pads right/bottom).
    assert only(backend.predict([image(128, 64)])[0])[2] == pytest.approx(
        (32, 0, 64, 32)
    )


def test_yolox_input_is_bgr_0_255_on_114(tmp_path):
    model = constant_model(tmp_path / "x.onnx", {"output": yolox_rows()[None]})
    backend = serve_own(tmp_path, model, "yolox")
    red = np.zeros((32, 64, 3), np.uint8)
    red[..., 0] = 255
    inputs, _ = backend.family.prepare(red)
    assert inputs[2, 0, 0] == pytest.approx(255)  # red is the last channel
    assert inputs[0, 0, 0] == pytest.approx(0)
    assert inputs[:, 40, 0] == pytest.approx([114, 114, 114])  # padding below


def test_yolov5_reads_pixel_boxes_and_multiplies_objectness(tmp_path):
    rows = np.zeros((3 * CELLS, 5 + len(LABELS)), np.float32)
    rows[7] = [20, 30, 10, 20, 0.5, 0.9, 0.2]
    model = constant_model(tmp_path / "v5.onnx", {"output0": rows[None]})
    backend = serve_own(tmp_path, model, "yolov5")
    label, score, box = only(backend.predict([image()])[0])
    assert (label, score) == ("cat", pytest.approx(0.45))
    assert box == pytest.approx((15, 20, 25, 40))
    inputs, _ = backend.family.prepare(image(64, 32))
    # RGB / 255, centred on grey 114.
    assert inputs[:, 0, 0] == pytest.approx([114 / 255] * 3)
    assert inputs[:, 32, 0] == pytest.approx([0, 0, 0])


def test_yolov8_reads_channels_first_boxes_without_objectness(tmp_path):
    columns = np.zeros((4 + len(LABELS), CELLS), np.float32)
    columns[:, 10] = [32, 32, 20, 10, 0.05, 0.7]
    columns[:, 11] = [10, 10, 4, 4, 0.05, 0.02]  # below the floor
    model = constant_model(tmp_path / "v8.onnx", {"output0": columns[None]})
    backend = serve_own(tmp_path, model, "yolov8")
    label, score, box = only(backend.predict([image()])[0])
    assert (label, score) == ("dog", pytest.approx(0.7))
    assert box == pytest.approx((22, 27, 42, 37))


def test_official_rtdetr_export_gets_the_input_size_and_stretches(tmp_path):
    queries = 4
    # boxes = fractions x orig_target_sizes (w, h, w, h): checks what we feed.
    fractions = np.zeros((1, queries, 4), np.float32)
    fractions[0, 2] = [0.25, 0.5, 0.75, 1.0]
    nodes = [
        helper.make_node("Cast", ["orig_target_sizes"], ["sizes"], to=1),
        helper.make_node("Concat", ["sizes", "sizes"], ["sizes4"], axis=1),
        helper.make_node("Unsqueeze", ["sizes4", "one"], ["scale"]),
        helper.make_node("Mul", ["fractions", "scale"], ["boxes"]),
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["scores_value", "nothing"], ["scores"]),
        helper.make_node("Identity", ["labels_value"], ["labels"]),
    ]
    graph = helper.make_graph(
        nodes,
        "rtdetr",
        [
            helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 32]),
            helper.make_tensor_value_info(
                "orig_target_sizes", TensorProto.INT64, [1, 2]
            ),
        ],
        [
            helper.make_tensor_value_info("labels", TensorProto.INT64, [1, queries]),
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, queries, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, queries]),
        ],
        [
            numpy_helper.from_array(fractions, "fractions"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.float32(0.0), "zero"),
            numpy_helper.from_array(
                np.array([[0.05, 0.01, 0.9, 0.02]], np.float32), "scores_value"
            ),
            numpy_helper.from_array(np.array([[0, 0, 1, 0]], np.int64), "labels_value"),
        ],
    )
    path = tmp_path / "rtdetr.onnx"
    path.write_bytes(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17)]
        ).SerializeToString()
    )
    backend = serve_own(tmp_path, path, "rtdetr")
    assert (backend.info.input_width, backend.info.input_height) == (32, 64)
    # A 64x64 image is stretched to 32x64: x halves, y stays.
    label, score, box = only(backend.predict([image(64, 64)])[0])
    assert (label, score) == ("dog", pytest.approx(0.9))
    assert box == pytest.approx((16, 32, 48, 64))


def test_ultralytics_rtdetr_export_keeps_each_querys_best_class(tmp_path):
    queries = np.zeros((1, 3, 4 + len(LABELS)), np.float32)
    queries[0, 1] = [0.5, 0.5, 0.5, 0.25, 0.6, 0.3]
    model = constant_model(tmp_path / "u.onnx", {"output0": queries})
    label, score, box = only(serve_own(tmp_path, model, "rtdetr").predict([image()])[0])
    assert (label, score) == ("cat", pytest.approx(0.6))
    assert box == pytest.approx((16, 24, 48, 40))


def test_nanodet_takes_the_expected_distance_from_the_cells_centre(tmp_path):
    size, bins = 32, 3
    scores = {s: np.zeros((1, (size // s) ** 2, 2), np.float32) for s in (8, 16, 32)}
    sides = {
        s: np.zeros((1, (size // s) ** 2, 4 * bins), np.float32) for s in (8, 16, 32)
    }
    # Stride 8, row 1, column 2: centre (20, 12). Left and top certain of bin 1
    # (8 px); right and bottom uniform over the bins: expected bin 1 (8 px) too.
    scores[8][0, 6, 1] = 0.9
    sides[8][0, 6, 0:3] = [-30, 30, -30]
    sides[8][0, 6, 3:6] = [-30, 30, -30]
    outputs = {f"scores_{s}": v for s, v in scores.items()}
    outputs |= {f"boxes_{s}": v for s, v in sides.items()}
    model = constant_model(tmp_path / "n.onnx", outputs, (1, 3, size, size))
    backend = serve_own(tmp_path, model, "nanodet")
    label, score, box = only(backend.predict([image(size, size)])[0])
    assert (label, score) == ("dog", pytest.approx(0.9))
    assert box == pytest.approx((12, 4, 28, 20))


def test_nanodet_input_is_bgr_normalised_on_black(tmp_path):
    scores = {s: np.zeros((1, (32 // s) ** 2, 2), np.float32) for s in (8, 16, 32)}
    outputs = {f"scores_{s}": v for s, v in scores.items()}
    outputs |= {
        f"boxes_{s}": np.zeros((1, (32 // s) ** 2, 8), np.float32) for s in (8, 16, 32)
    }
    backend = serve_own(
        tmp_path,
        constant_model(tmp_path / "n.onnx", outputs, (1, 3, 32, 32)),
        "nanodet",
    )
    white = np.full((16, 32, 3), 255, np.uint8)
    inputs, _ = backend.family.prepare(white)
    blue = (255 - 103.53) / 57.375
    assert inputs[0, 16, 0] == pytest.approx(blue, rel=1e-5)
    assert inputs[:, 0, 0] == pytest.approx(
        [-103.53 / 57.375, -116.28 / 57.12, -123.675 / 58.395], rel=1e-5
    )


def test_centernet_keeps_peaks_and_measures_from_the_cells_corner(tmp_path):
    heatmap = np.zeros((1, 8, 8, 2), np.float32)
    heatmap[0, 2, 3, 1] = 0.8
    heatmap[0, 2, 4, 1] = 0.5  # next to a higher peak: suppressed
    heatmap[0, 6, 6, 0] = 0.3
    sides = np.full((1, 8, 8, 4), 4.0, np.float32)
    model = constant_model(
        tmp_path / "c.onnx",
        {"heatmap": heatmap, "sides": sides},
        (1, 32, 32, 3),
    )
    backend = serve_own(tmp_path, model, "centernet")
    found = backend.predict([image(32, 32)])[0]
    assert [(d.label, round(d.score, 2)) for d in found] == [("dog", 0.8), ("cat", 0.3)]
    box = found[0].box
    # Stride 4: the peak at column 3, row 2 is the point (12, 8).
    assert (box.x_min, box.y_min, box.x_max, box.y_max) == pytest.approx((8, 4, 16, 12))


def test_a_yolov5_export_served_as_yolox_is_refused_with_a_hint(tmp_path):
    rows = np.zeros((1, 3 * CELLS, 5 + len(LABELS)), np.float32)
    model = constant_model(tmp_path / "v5.onnx", {"output0": rows})
    with pytest.raises(FamilyMismatch) as caught:
        serve_own(tmp_path, model, "yolox")
    message = str(caught.value)
    assert "not those of a yolox model with 2 labels" in message
    assert "yolov5 export?" in message


def test_a_labels_file_of_the_wrong_length_is_refused(tmp_path):
    columns = np.zeros((1, 4 + 80, CELLS), np.float32)
    model = constant_model(tmp_path / "v8.onnx", {"output0": columns})
    with pytest.raises(FamilyMismatch, match="with 2 labels: expected one \\(6, 84\\)"):
        serve_own(tmp_path, model, "yolov8")
    with pytest.raises(FamilyMismatch, match="labels file has one line per class"):
        serve_own(tmp_path, model, "yolov8", labels=("a", "b", "c"))
    assert serve_own(tmp_path, model, "yolov8", labels=[str(i) for i in range(80)])


def test_unknown_family_and_bad_labels_files_say_what_is_wrong(tmp_path):
    model = constant_model(tmp_path / "x.onnx", {"output": yolox_rows()[None]})
    with pytest.raises(FamilyMismatch, match=r"unknown model family 'yolo9'.*yolox"):
        serve_own(tmp_path, model, "yolo9")
    with pytest.raises(ModelUnavailable, match="without blank lines"):
        serve_own(tmp_path, model, "yolox", labels=("cat", "", "dog"))
    with pytest.raises(ModelUnavailable, match="does not exist"):
        serve_own(tmp_path, tmp_path / "missing.onnx", "yolox")
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelUnavailable, match="ONNX Runtime cannot load"):
        serve_own(tmp_path, tmp_path / "broken.onnx", "yolox")


def test_a_model_file_needs_its_family_and_labels():
    with pytest.raises(ValueError, match="needs --model-family"):
        ServerConfig(model_file=Path("m.onnx"))
    with pytest.raises(ValueError, match="need --model-file"):
        ServerConfig(model_family="yolox")


def test_the_cli_detects_locally_with_an_own_model(tmp_path, capsys):
    model = constant_model(tmp_path / "x.onnx", {"output": yolox_rows()[None]})
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    Image.fromarray(image()).save(tmp_path / "photo.png")
    status = cli.main(
        [
            "detect",
            "--local",
            "--model-file",
            str(model),
            "--model-family",
            "yolox",
            "--labels-file",
            str(tmp_path / "labels.txt"),
            str(tmp_path / "photo.png"),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert '"name": "x"' in out
    assert '"label": "dog"' in out


def test_a_model_with_inputs_the_family_does_not_feed_is_refused(tmp_path):
    rows = yolox_rows()[None]
    nodes = [helper.make_node("Add", ["rows", "extra"], ["output"])]
    graph = helper.make_graph(
        nodes,
        "two-inputs",
        [
            helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64]),
            helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, rows.shape)],
        [numpy_helper.from_array(rows, "rows")],
    )
    path = tmp_path / "two.onnx"
    path.write_bytes(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17)]
        ).SerializeToString()
    )
    with pytest.raises(FamilyMismatch, match=r"inputs \['extra'\] that a yolox model"):
        serve_own(tmp_path, path, "yolox")
