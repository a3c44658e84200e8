"""YOLO pre- and post-processing on synthetic data: letterbox, decoding, NMS."""

from __future__ import annotations

from detector_service.yolo import decode_head
from detector_service.yolo import Letterbox
from detector_service.yolo import letterbox
from detector_service.yolo import non_max_suppression
from detector_service.yolo import PAD_VALUE
from detector_service.yolo import SCORE_FLOOR
from detector_service.yolo import sigmoid
from detector_service.yolo import YoloDecoder
from detector_service.yolo import YoloHead

import importlib
import inspect
import numpy as np
import pytest


def test_letterbox_of_a_wide_image_pads_above_and_below():
    image = np.full((400, 800, 3), 255, dtype=np.uint8)
    inputs, placement = letterbox(image, 416, 416)
    assert inputs.shape == (3, 416, 416)
    assert inputs.dtype == np.float32
    assert (placement.offset_x, placement.offset_y) == (0, 104)
    assert placement.scale_x == pytest.approx(416 / 800)
    assert np.all(inputs[:, :104] == PAD_VALUE)
    assert np.all(inputs[:, 104 + 208 :] == PAD_VALUE)
    assert np.allclose(inputs[:, 104 : 104 + 208], 1.0)


def test_letterbox_of_a_tall_image_pads_left_and_right():
    image = np.zeros((900, 300, 3), dtype=np.uint8)
    inputs, placement = letterbox(image, 416, 416)
    new_w = 300 * 416 // 900
    assert placement.offset_x == (416 - new_w) // 2
    assert placement.offset_y == 0
    assert np.all(inputs[:, :, : placement.offset_x] == PAD_VALUE)
    assert np.all(inputs[:, :, placement.offset_x : placement.offset_x + new_w] == 0)


def test_letterbox_keeps_the_colour_channels_in_rgb_order():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[..., 0] = 255  # pure red
    inputs, _ = letterbox(image, 64, 64)
    assert inputs[0].min() == pytest.approx(1.0)
    assert inputs[1].max() == pytest.approx(0.0)


def test_letterbox_rejects_what_is_not_rgb_uint8():
    with pytest.raises(ValueError, match="RGB"):
        letterbox(np.zeros((10, 10), dtype=np.uint8), 416, 416)
    with pytest.raises(ValueError, match="RGB"):
        letterbox(np.zeros((10, 10, 3), dtype=np.float32), 416, 416)


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (3000, 2000), (37, 901)])
def test_boxes_go_back_to_the_image_pixels_they_came_from(size):
    width, height = size
    image = np.zeros((height, width, 3), dtype=np.uint8)
    _, placement = letterbox(image, 416, 416)
    rng = np.random.default_rng(1)
    corners = np.sort(rng.uniform(0, 1, (20, 2, 2)), axis=1)
    boxes = np.stack(
        [
            corners[:, 0, 0] * width,
            corners[:, 0, 1] * height,
            corners[:, 1, 0] * width,
            corners[:, 1, 1] * height,
        ],
        axis=1,
    )
    in_input = boxes.copy()
    in_input[:, 0::2] = boxes[:, 0::2] * placement.scale_x + placement.offset_x
    in_input[:, 1::2] = boxes[:, 1::2] * placement.scale_y + placement.offset_y
    assert np.all(in_input <= 416)
    assert np.allclose(placement.to_image(in_input), boxes)


def test_boxes_beyond_the_image_are_clipped_to_it():
    placement = Letterbox(200, 100, 2.0, 2.0, 8, 108)
    boxes = np.array([[-50.0, 0.0, 500.0, 416.0]])
    assert placement.to_image(boxes).tolist() == [[0.0, 0.0, 200.0, 100.0]]


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    scores = np.array([0.6, 0.9, 0.5])
    classes = np.array([0, 0, 0])
    assert non_max_suppression(boxes, scores, classes, 0.45).tolist() == [1, 2]


def test_nms_is_class_wise():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.6, 0.9])
    assert non_max_suppression(boxes, scores, np.array([3, 7]), 0.45).tolist() == [
        1,
        0,
    ]
    assert non_max_suppression(boxes, scores, np.array([3, 3]), 0.45).tolist() == [1]


def test_nms_keeps_boxes_that_overlap_less_than_the_threshold():
    # IoU of these two is 25 / 175 = 0.14.
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], float)
    kept = non_max_suppression(boxes, np.array([0.9, 0.8]), np.array([0, 0]), 0.45)
    assert kept.tolist() == [0, 1]
    kept = non_max_suppression(boxes, np.array([0.9, 0.8]), np.array([0, 0]), 0.1)
    assert kept.tolist() == [0]


def test_nms_of_nothing_is_nothing():
    kept = non_max_suppression(
        np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), 0.45
    )
    assert kept.size == 0


HEAD = YoloHead(anchors=((10, 14), (23, 27), (37, 58)), classes=4)


def _raw_head(rows: int, cols: int) -> np.ndarray:
    """A head where nothing is found: objectness logits very negative."""
    raw = np.zeros((3, 5 + HEAD.classes, rows, cols), dtype=np.float32)
    raw[:, 4] = -20.0
    raw[:, 5:] = -20.0
    return raw


def test_decode_places_a_box_at_its_cell_with_its_anchor_size():
    raw = _raw_head(13, 13)
    # Anchor 1 at row 4, column 6: centred in the cell, anchor-sized, class 2.
    raw[1, 0:4, 4, 6] = (0.0, 0.0, 0.0, 0.0)
    raw[1, 4, 4, 6] = 3.0
    raw[1, 5 + 2, 4, 6] = 2.0
    boxes, scores, classes = decode_head(raw.reshape(-1, 13, 13), HEAD, (416, 416), 0.1)
    cell = 416 / 13
    centre_x, centre_y = 6.5 * cell, 4.5 * cell
    assert classes.tolist() == [2]
    assert scores[0] == pytest.approx(sigmoid(3.0) * sigmoid(2.0))
    assert boxes[0] == pytest.approx(
        [centre_x - 11.5, centre_y - 13.5, centre_x + 11.5, centre_y + 13.5]
    )


def test_decode_scales_the_anchor_by_the_exponent_and_shifts_by_sigmoid():
    raw = _raw_head(26, 26)
    raw[2, 0:4, 0, 0] = (20.0, -20.0, np.log(2.0), np.log(0.5))
    raw[2, 4, 0, 0] = 5.0
    raw[2, 5 + 0, 0, 0] = 5.0
    boxes, _, _ = decode_head(raw.reshape(-1, 26, 26), HEAD, (416, 416), 0.1)
    cell = 416 / 26
    # sigmoid(20) is 1: the centre sits on the cell's right edge; sigmoid(-20) is 0.
    assert boxes[0] == pytest.approx([cell - 37, 0 - 14.5, cell + 37, 0 + 14.5])


def test_decode_drops_candidates_below_the_floor():
    raw = _raw_head(13, 13)
    raw[0, 4, 0, 0] = 0.0  # objectness 0.5
    raw[0, 5 + 1, 0, 0] = -1.0  # class 0.27: score 0.13
    boxes, _, _ = decode_head(raw.reshape(-1, 13, 13), HEAD, (416, 416), 0.2)
    assert boxes.shape == (0, 4)
    boxes, scores, _ = decode_head(raw.reshape(-1, 13, 13), HEAD, (416, 416), 0.1)
    assert scores.tolist() == pytest.approx([0.5 * sigmoid(-1.0)])


def test_decoder_maps_detections_into_image_pixels_with_labels():
    decoder = YoloDecoder(
        heads=(HEAD,),
        labels=("cat", "dog", "horse", "kite"),
        input_width=416,
        input_height=416,
    )
    raw = _raw_head(13, 13)
    raw[0, 4, 6, 6] = 4.0
    raw[0, 5 + 3, 6, 6] = 4.0
    raw[0, 5 + 1, 6, 6] = -0.5
    # An 832x416 image sits at y 104..312 of the input, at half scale.
    placement = Letterbox(832, 416, 0.5, 0.5, 0, 104)
    found = decoder.detections([raw.reshape(-1, 13, 13)], placement)
    assert [d.label for d in found] == ["kite", "dog"]
    assert found[0].score > found[1].score
    box = found[0].box
    assert (box.x_min + box.x_max) / 2 == pytest.approx(416.0)
    assert (box.y_min + box.y_max) / 2 == pytest.approx((208 - 104) * 2)
    assert box.x_max - box.x_min == pytest.approx(20.0)


def test_decoder_refuses_labels_that_do_not_match_the_heads():
    with pytest.raises(ValueError, match="4 classes"):
        YoloDecoder(heads=(HEAD,), labels=("cat",), input_width=416, input_height=416)


@pytest.mark.parametrize("module", ["onnx", "opencv"])
def test_every_backend_reports_down_to_the_one_score_floor(module):
    backend = importlib.import_module(f"detector_service.backends.{module}")
    assert inspect.signature(backend.load).parameters["score_floor"].default == (
        SCORE_FLOOR
    )
    assert YoloDecoder((), (), 416, 416).score_floor == SCORE_FLOOR
