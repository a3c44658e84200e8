"""Translation between the protobuf messages and the domain types of ``types.py``.

The only module that knows both sides: servicers and the client convert at the
edge with these functions, so nothing else handles protobuf messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from detector_service.proto.detection.v1 import detector_pb2
from detector_service.proto.legacy import mlserver_pb2
from detector_service.types import Box
from detector_service.types import Detection
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo


SERVICE_NAME = detector_pb2.DESCRIPTOR.services_by_name["Detector"].full_name
# Room in a gRPC message for the fields around the image bytes: both ends allow
# messages of the image limit plus this.
ENVELOPE_BYTES = 64 * 1024


def options_to_proto(options: DetectOptions) -> detector_pb2.DetectOptions:
    return detector_pb2.DetectOptions(
        min_score=options.min_score,
        max_detections=options.max_detections,
        labels=list(options.labels),
    )


def options_from_proto(message: detector_pb2.DetectOptions) -> DetectOptions:
    return DetectOptions(
        min_score=message.min_score,
        max_detections=message.max_detections,
        labels=tuple(message.labels),
    )


def model_info_to_proto(info: ModelInfo) -> detector_pb2.ModelInfo:
    return detector_pb2.ModelInfo(
        name=info.name,
        version=info.version,
        framework=info.framework,
        input_width=info.input_width,
        input_height=info.input_height,
        labels=list(info.labels),
    )


def model_info_from_proto(message: detector_pb2.ModelInfo) -> ModelInfo:
    return ModelInfo(
        name=message.name,
        version=message.version,
        framework=message.framework,
        input_width=message.input_width,
        input_height=message.input_height,
        labels=tuple(message.labels),
    )


def detection_to_proto(detection: Detection) -> detector_pb2.Detection:
    box = detection.box
    return detector_pb2.Detection(
        label=detection.label,
        score=detection.score,
        box=detector_pb2.Box(
            x_min=box.x_min, y_min=box.y_min, x_max=box.x_max, y_max=box.y_max
        ),
    )


def detection_from_proto(message: detector_pb2.Detection) -> Detection:
    box = message.box
    return Detection(
        label=message.label,
        score=message.score,
        box=Box(box.x_min, box.y_min, box.x_max, box.y_max),
    )


def result_to_proto(result: DetectionResult) -> detector_pb2.DetectResponse:
    return detector_pb2.DetectResponse(
        detections=[detection_to_proto(d) for d in result.detections],
        image_width=result.image_width,
        image_height=result.image_height,
        model=model_info_to_proto(result.model),
        elapsed_ms=result.elapsed_ms,
    )


def result_from_proto(message: detector_pb2.DetectResponse) -> DetectionResult:
    return DetectionResult(
        detections=tuple(detection_from_proto(d) for d in message.detections),
        image_width=message.image_width,
        image_height=message.image_height,
        model=model_info_from_proto(message.model),
        elapsed_ms=message.elapsed_ms,
    )


def legacy_reply(detections: Iterable[Detection]) -> mlserver_pb2.Reply:
    """The 2018 reply: parallel lists, boxes as ``[y_min, x_min, y_max, x_max]``."""
    reply = mlserver_pb2.Reply()
    for detection in detections:
        box = detection.box
        reply.boxes.add(box=[box.y_min, box.x_min, box.y_max, box.x_max])
        reply.classes.append(detection.label)
        reply.confs.append(detection.score)
    return reply
