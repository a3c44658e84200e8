"""CenterNet on MobileNetV3 (610265158/mobilenetv3_centernet): a heatmap of object
centres per class and, per cell, the four distances from the centre to the box's
sides, at a quarter of the input's resolution.

Decoded as upstream's graph does it (``lib/core/model/centernet.py``,
``postprocess``): peaks are the cells equal to the 3x3 maximum around them, the
best 100 peaks over every class are kept, and the box of the peak at (row, col) is
``col * stride - left, row * stride - top, col * stride + right, row * stride +
bottom``, the cell's corner being its point. No other suppression. Input: RGB,
0-255, NHWC, letterboxed on black (upstream ``preprocess``).
"""

from __future__ import annotations

from collections.abc import Sequence
from detector_service.families.base import Family

import numpy as np


def peaks_above(heatmap: np.ndarray, floor: float) -> np.ndarray:
    """Flat indices of the cells of ``heatmap`` (rows, cols, classes) above
    ``floor`` that equal their 3x3 neighbourhood's maximum (max pooling with SAME
    padding, as upstream), checked for those cells only."""
    row, col, label = np.nonzero(heatmap > floor)
    rows, cols, _ = heatmap.shape
    # Clipping at the border stands for SAME padding: the cell it repeats is in
    # the neighbourhood anyway, so the maximum is the same.
    neighbourhood = np.max(
        [
            heatmap[
                np.clip(row + dy, 0, rows - 1), np.clip(col + dx, 0, cols - 1), label
            ]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ],
        axis=0,
        initial=-np.inf,
    )
    keep = heatmap[row, col, label] == neighbourhood
    classes = heatmap.shape[2]
    return (row[keep] * cols + col[keep]) * classes + label[keep]


class CenterNet(Family):
    name = "centernet"
    fill = 0.0
    iou_threshold = None
    max_detections = 100  # upstream's top-k

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        return rgb.transpose(1, 2, 0) * 255.0

    def check(self, outputs: Sequence[np.ndarray]) -> None:
        shapes = [output.shape for output in outputs]
        classes = len(self.labels)
        if (
            len(shapes) != 2
            or len(shapes[0]) != 4
            or shapes[0][-1] != classes
            or tuple(shapes[1]) != (*shapes[0][:3], 4)
        ):
            self.mismatch(
                outputs, f"a (rows, cols, {classes}) heatmap and (rows, cols, 4) sides"
            )

    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        heatmap, sides = outputs
        _, cols, classes = heatmap.shape
        stride = self.input_width / cols
        flat = heatmap.reshape(-1)
        # The top-k of the peaks above the floor: the same as the graph's top-k
        # followed by the floor, without pooling and sorting every cell.
        above = peaks_above(heatmap, self.score_floor)
        best = above[np.argsort(-flat[above], kind="stable")][: self.max_detections]
        cell, label = np.divmod(best, classes)
        row, col = np.divmod(cell, cols)
        distances = sides.reshape(-1, 4)[cell]
        x, y = col * stride, row * stride
        boxes = np.stack(
            [
                x - distances[:, 0],
                y - distances[:, 1],
                x + distances[:, 2],
                y + distances[:, 3],
            ],
            axis=1,
        )
        return boxes, flat[best], label
