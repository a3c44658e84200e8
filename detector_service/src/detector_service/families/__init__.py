"""Model families: how each kind of detector's input is prepared and its outputs
decoded, whatever runs the network. The catalogue's TF.js models and an operator's
own ONNX exports (``--model-file``, ``--model-family``) use them.

| family | outputs |
|---|---|
| ``nanodet`` | per stride: (cells, classes) scores, (cells, 4 x bins) sides |
| ``centernet`` | (rows, cols, classes) centre heatmap, (rows, cols, 4) sides |
| ``yolox`` | (anchors, 5 + classes): grid offsets, log sizes, objectness, classes |
| ``yolov5`` | (anchors, 5 + classes): centre, size in pixels, objectness, classes |
| ``yolov8`` | (4 + classes, anchors): centre, size in pixels, classes |
| ``rtdetr`` | labels, boxes, scores of each query (RT-DETR and D-FINE exports) |
"""

from __future__ import annotations

from detector_service.families.base import Family
from detector_service.families.base import FamilyMismatch
from detector_service.families.centernet import CenterNet
from detector_service.families.detr import RTDETR
from detector_service.families.nanodet import NanoDet
from detector_service.families.ultralytics import YOLOv5
from detector_service.families.ultralytics import YOLOv8
from detector_service.families.yolox import YOLOX


FAMILIES: dict[str, type[Family]] = {
    family.name: family
    for family in (NanoDet, CenterNet, YOLOX, YOLOv5, YOLOv8, RTDETR)
}


__all__ = ["FAMILIES", "Family", "FamilyMismatch", "get_family"]


def get_family(name: str) -> type[Family]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise FamilyMismatch(
            f"unknown model family {name!r}; known families: {', '.join(FAMILIES)}"
        ) from None
