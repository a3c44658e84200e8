"""wire: domain types survive the trip through protobuf, both contracts."""

from __future__ import annotations

from detector_service import wire
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.types import Box
from detector_service.types import Detection
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo

import pytest


INFO = ModelInfo(
    "yolov3-tiny", "darknet-coco", "onnxruntime 1.32.0", 416, 416, ("a", "b")
)
DOG = Detection("dog", 0.875, Box(10.5, 20.25, 300.0, 400.0))


def test_result_round_trip():
    result = DetectionResult((DOG,), 768, 576, INFO, 12.5)
    message = wire.result_to_proto(result)
    back = wire.result_from_proto(
        detector_pb2.DetectResponse.FromString(message.SerializeToString())
    )
    assert back == result
    assert back.model.labels == ("a", "b")


def test_options_round_trip_and_defaults():
    options = DetectOptions(0.5, 3, ("dog", "cat"))
    assert wire.options_from_proto(wire.options_to_proto(options)) == options
    assert wire.options_from_proto(detector_pb2.DetectOptions()) == DetectOptions()


def test_box_fields_keep_their_names():
    box = wire.detection_to_proto(DOG).box
    assert (box.x_min, box.y_min, box.x_max, box.y_max) == (10.5, 20.25, 300.0, 400.0)


def test_legacy_reply_uses_chainercv_box_order_and_parallel_lists():
    cat = Detection("cat", 0.5, Box(1.0, 2.0, 3.0, 4.0))
    reply = wire.legacy_reply([DOG, cat])
    assert list(reply.classes) == ["dog", "cat"]
    assert list(reply.confs) == pytest.approx([0.875, 0.5])
    assert list(reply.boxes[0].box) == [20.25, 10.5, 400.0, 300.0]
    assert list(reply.boxes[1].box) == [2.0, 1.0, 4.0, 3.0]
