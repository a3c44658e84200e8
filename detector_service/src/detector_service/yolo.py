"""YOLO pre- and post-processing in numpy, shared by every backend with raw YOLO heads
(the letterbox, NMS and :func:`to_detections` also by the other model families).

Preprocessing is darknet's letterbox: the image is scaled to fit the network input
keeping its aspect ratio, centred, and the rest filled with grey (0.5). The network's
``[yolo]`` heads come out raw (before any sigmoid); decoding them, class-wise
non-maximum suppression and the mapping back to image pixels happen here, so every
runtime (ONNX Runtime, OpenCV, Chainer) gives the same detections for the same raw
outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from detector_service.types import Box
from detector_service.types import Detection
from PIL import Image

import numpy as np


PAD_VALUE = 0.5
# The lowest score a backend reports: a caller's lower min_score gets detections
# down to here only. Lower would flood NMS with noise and cost time on every call.
SCORE_FLOOR = 0.1


@dataclass(frozen=True)
class YoloHead:
    """One ``[yolo]`` layer: its anchors (in network-input pixels) and class count."""

    anchors: tuple[tuple[int, int], ...]
    classes: int


@dataclass(frozen=True)
class Letterbox:
    """Where an image went in the network input: ``input = image * scale + offset``."""

    image_width: int
    image_height: int
    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """``(n, 4)`` x_min, y_min, x_max, y_max boxes from input to image pixels."""
        out = np.empty_like(boxes, dtype=np.float64)
        out[:, 0::2] = (boxes[:, 0::2] - self.offset_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.offset_y) / self.scale_y
        np.clip(out[:, 0::2], 0.0, self.image_width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, self.image_height, out=out[:, 1::2])
        return out


def letterbox(
    image: np.ndarray,
    width: int,
    height: int,
    fill: float = PAD_VALUE,
    keep_ratio: bool = True,
    centre: bool = True,
) -> tuple[np.ndarray, Letterbox]:
    """An HxWx3 ``uint8`` RGB image as a ``(3, height, width)`` float32 input,
    values in [0, 1], and where the image went in it.

    The rest of the input is ``fill`` (darknet's grey by default); ``keep_ratio``
    false stretches the image over the whole input instead (DETR-style models);
    ``centre`` false puts the image in the top left corner (YOLOX).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an HxWx3 uint8 RGB array, got {image.shape} {image.dtype}"
        )
    rows, cols = image.shape[:2]
    # darknet's letterbox_image sizes: the limiting side fills the input exactly.
    if not keep_ratio:
        new_w, new_h = width, height
    elif width * rows < height * cols:
        new_w, new_h = width, max(1, rows * width // cols)
    else:
        new_w, new_h = max(1, cols * height // rows), height
    offset_x, offset_y = (width - new_w) // 2, (height - new_h) // 2
    if not centre:
        offset_x = offset_y = 0
    # Pillow's bilinear widens its kernel when shrinking (no aliasing, unlike
    # OpenCV's LINEAR); reducing_gap first box-reduces very large images, cheaply.
    resized = Image.fromarray(image).resize(
        (new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0
    )
    canvas = np.full((3, height, width), fill, dtype=np.float32)
    pixels = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
    canvas[:, offset_y : offset_y + new_h, offset_x : offset_x + new_w] = pixels
    placement = Letterbox(
        image_width=cols,
        image_height=rows,
        scale_x=new_w / cols,
        scale_y=new_h / rows,
        offset_x=offset_x,
        offset_y=offset_y,
    )
    return canvas, placement


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def decode_head(
    output: np.ndarray, head: YoloHead, input_size: tuple[int, int], score_floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One raw head of one image, ``(anchors * (5 + classes), rows, cols)``, as
    candidate boxes (x_min, y_min, x_max, y_max in input pixels), scores and class
    indices: one candidate per box and class scoring above ``score_floor``."""
    width, height = input_size
    count = len(head.anchors)
    _, rows, cols = output.shape
    raw = output.reshape(count, 5 + head.classes, rows, cols)
    objectness = sigmoid(raw[:, 4])
    anchor, row, col = np.nonzero(objectness > score_floor)
    cells = raw[anchor, :, row, col]  # (n, 5 + classes)
    scores = objectness[anchor, row, col][:, None] * sigmoid(cells[:, 5:])
    box_index, class_index = np.nonzero(scores > score_floor)
    cells = cells[box_index]
    anchors = np.asarray(head.anchors, dtype=np.float32)[anchor[box_index]]
    centre_x = (col[box_index] + sigmoid(cells[:, 0])) * (width / cols)
    centre_y = (row[box_index] + sigmoid(cells[:, 1])) * (height / rows)
    half_w = np.exp(cells[:, 2]) * anchors[:, 0] / 2
    half_h = np.exp(cells[:, 3]) * anchors[:, 1] / 2
    boxes = np.stack(
        [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h],
        axis=1,
    )
    return boxes, scores[box_index, class_index], class_index


def non_max_suppression(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Indices of the boxes kept by greedy class-wise NMS, best score first."""
    order = np.argsort(-scores, kind="stable")
    if order.size == 0:
        return order
    # Shifting each class to its own region makes one pass class-wise.
    shift = (float(np.abs(boxes).max()) + 1.0) * 2 * classes.astype(np.float64)
    shifted = boxes.astype(np.float64) + shift[:, None]
    areas = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        x_min = np.maximum(shifted[best, 0], shifted[rest, 0])
        y_min = np.maximum(shifted[best, 1], shifted[rest, 1])
        x_max = np.minimum(shifted[best, 2], shifted[rest, 2])
        y_max = np.minimum(shifted[best, 3], shifted[rest, 3])
        overlap = np.clip(x_max - x_min, 0, None) * np.clip(y_max - y_min, 0, None)
        union = areas[best] + areas[rest] - overlap
        iou = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


@dataclass(frozen=True)
class YoloDecoder:
    """Raw YOLO head outputs of one image to its detections in image pixels."""

    heads: tuple[YoloHead, ...]
    labels: tuple[str, ...]
    input_width: int
    input_height: int
    # The backend's floor; the server applies the caller's higher minimum.
    score_floor: float = SCORE_FLOOR
    iou_threshold: float = 0.45
    max_detections: int = 300

    def __post_init__(self) -> None:
        for head in self.heads:
            if head.classes != len(self.labels):
                raise ValueError(
                    f"a YOLO head has {head.classes} classes "
                    f"but there are {len(self.labels)} labels"
                )

    def detections(
        self, outputs: Sequence[np.ndarray], placement: Letterbox
    ) -> list[Detection]:
        """``outputs``: one raw array per head, in the heads' order, for one image."""
        if len(outputs) != len(self.heads):
            raise ValueError(
                f"expected {len(self.heads)} head outputs, got {len(outputs)}"
            )
        size = (self.input_width, self.input_height)
        parts = [
            decode_head(
                np.asarray(output, dtype=np.float32), head, size, self.score_floor
            )
            for output, head in zip(outputs, self.heads, strict=True)
        ]
        boxes = np.concatenate([part[0] for part in parts])
        scores = np.concatenate([part[1] for part in parts])
        classes = np.concatenate([part[2] for part in parts])
        return to_detections(
            boxes,
            scores,
            classes,
            self.labels,
            placement,
            self.iou_threshold,
            self.max_detections,
        )


def to_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    labels: Sequence[str],
    placement: Letterbox,
    iou_threshold: float | None,
    max_detections: int,
) -> list[Detection]:
    """Candidates in network-input pixels (x_min, y_min, x_max, y_max) to
    detections in image pixels, best first, after class-wise NMS (``None``: the
    model suppresses duplicates itself), at most ``max_detections``."""
    if iou_threshold is None:
        keep = np.argsort(-scores, kind="stable")
    else:
        keep = non_max_suppression(boxes, scores, classes, iou_threshold)
    keep = keep[:max_detections]
    image_boxes = placement.to_image(boxes[keep])
    return [
        Detection(
            label=labels[int(classes[index])],
            score=float(scores[index]),
            box=Box(*(float(value) for value in image_box)),
        )
        for index, image_box in zip(keep, image_boxes, strict=True)
    ]
