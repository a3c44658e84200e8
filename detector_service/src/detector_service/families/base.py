"""What a model family is: how an image becomes the network's input, and how the
network's raw outputs for one image become detections."""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Mapping
from collections.abc import Sequence
from detector_service.models import ModelUnavailable
from detector_service.types import Detection
from detector_service.yolo import Letterbox
from detector_service.yolo import letterbox
from detector_service.yolo import SCORE_FLOOR
from detector_service.yolo import to_detections

import numpy as np


class FamilyMismatch(ModelUnavailable):
    """The model's outputs are not what its family (or its labels) say."""


class Family(ABC):
    """One family's pre- and post-processing for a model of ``labels`` whose input
    is ``input_width`` x ``input_height``."""

    name: str
    # Letterbox: fill value in [0, 1] and whether the aspect ratio is kept.
    fill: float = 0.0
    keep_ratio: bool = True
    centre: bool = True
    iou_threshold: float | None = 0.45
    max_detections: int = 300

    def __init__(
        self,
        labels: Sequence[str],
        input_width: int,
        input_height: int,
        score_floor: float = SCORE_FLOOR,
    ) -> None:
        self.labels = tuple(labels)
        self.input_width = input_width
        self.input_height = input_height
        self.score_floor = score_floor

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """An HxWx3 uint8 RGB image as one network input (no batch axis)."""
        rgb, placement = letterbox(
            image,
            self.input_width,
            self.input_height,
            self.fill,
            self.keep_ratio,
            self.centre,
        )
        return self.normalise(rgb), placement

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        """The letterboxed ``(3, h, w)`` RGB input in [0, 1] as the network wants it."""
        return rgb

    def extra_inputs(self, batch_size: int) -> Mapping[str, np.ndarray]:
        """Inputs other than the image, by name (DETR exports take the size)."""
        return {}

    @abstractmethod
    def check(self, outputs: Sequence[np.ndarray]) -> None:
        """Raise :class:`FamilyMismatch` unless these outputs (of a batch of one)
        are this family's for ``len(self.labels)`` classes."""

    @abstractmethod
    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One image's outputs (no batch axis) as candidate boxes (x_min, y_min,
        x_max, y_max in input pixels), scores and class indices above the floor."""

    def detections(
        self, outputs: Sequence[np.ndarray], placement: Letterbox
    ) -> list[Detection]:
        """One image's outputs (no batch axis) as detections in image pixels."""
        boxes, scores, classes = self.candidates(outputs)
        return to_detections(
            boxes,
            scores,
            classes,
            self.labels,
            placement,
            self.iou_threshold,
            self.max_detections,
        )

    def mismatch(self, outputs: Sequence[np.ndarray], expected: str) -> None:
        found = ", ".join(str(tuple(output.shape)) for output in outputs)
        raise FamilyMismatch(
            f"the model's outputs {found} are not those of a {self.name} model with "
            f"{len(self.labels)} labels: expected {expected}. Check the family "
            "name and that the labels file has one line per class of the model."
        )


def grid_cells(width: int, height: int, strides: Sequence[int]) -> np.ndarray:
    """``(cells, 3)`` column, row and stride of every cell of every stride's grid,
    row by row, finest stride first: the order anchor-free heads list them in."""
    parts = []
    for stride in strides:
        rows, cols = height // stride, width // stride
        row, col = np.divmod(np.arange(rows * cols), cols)
        parts.append(np.stack([col, row, np.full_like(col, stride)], axis=1))
    return np.concatenate(parts).astype(np.float32)


def xywh_to_corners(boxes: np.ndarray) -> np.ndarray:
    """``(n, 4)`` centre x, centre y, width, height as x_min, y_min, x_max, y_max."""
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def above_floor(
    scores: np.ndarray, floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n, classes)`` scores as (row, class, score) of every pair above ``floor``."""
    rows, classes = np.nonzero(scores > floor)
    return rows, classes, scores[rows, classes]
