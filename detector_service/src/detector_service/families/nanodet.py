"""NanoDet (RangiLyu/nanodet, v0.x heads such as NanoDet-g's): Generalized Focal
Loss outputs, per stride, of class scores and box-side distributions.

As upstream (``nanodet/model/head/gfl_head.py``, ``get_bboxes``): each cell's point
is its centre, ``((col + 0.5) * stride, (row + 0.5) * stride)`` (NanoDet-Plus moved
it to the corner; these heads did not); each side's distance is the expected value
of a softmax over ``reg_max + 1`` bins, times the stride. Input: BGR, normalised by
the training mean and standard deviation (0-255 scale), letterboxed on black
(upstream ``warp_and_resize`` with ``keep_ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from detector_service.families.base import above_floor
from detector_service.families.base import Family

import numpy as np


MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)


def softmax(values: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


class NanoDet(Family):
    name = "nanodet"
    fill = 0.0
    iou_threshold = 0.6  # upstream's test_cfg nms iou_threshold

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        bgr = rgb[::-1] * 255.0
        return (bgr - MEAN_BGR[:, None, None]) / STD_BGR[:, None, None]

    def levels(self, outputs: Sequence[np.ndarray]) -> list[tuple[int, int, int, int]]:
        """(scores output, boxes output, stride, bins) per level, finest first, of
        one image's outputs."""
        shapes = [output.shape for output in outputs]
        classes = len(self.labels)
        scores = {shape[0]: i for i, shape in enumerate(shapes) if shape[-1] == classes}
        boxes = {shape[0]: i for i, shape in enumerate(shapes) if shape[-1] != classes}
        levels = []
        for cells in sorted(scores, reverse=True):
            stride = round((self.input_width * self.input_height / cells) ** 0.5)
            rows, cols = self.input_height // stride, self.input_width // stride
            box = boxes.get(cells)
            if box is None or rows * cols != cells or shapes[box][-1] % 4:
                levels = []
                break
            levels.append((scores[cells], box, stride, shapes[box][-1] // 4))
        if not levels or len(levels) * 2 != len(shapes):
            self.mismatch(
                outputs,
                f"per stride, (cells, {classes}) scores and (cells, 4 x bins) box "
                f"distributions, cells = {self.input_width}x{self.input_height} / "
                "stride^2",
            )
        return levels

    def check(self, outputs: Sequence[np.ndarray]) -> None:
        self.levels([output[0] for output in outputs])

    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found_boxes, found_scores, found_classes = [], [], []
        for scores_at, boxes_at, stride, bins in self.levels(outputs):
            cell, label, score = above_floor(outputs[scores_at], self.score_floor)
            logits = outputs[boxes_at][cell].reshape(-1, 4, bins)
            sides = softmax(logits) @ np.arange(bins, dtype=np.float32) * stride
            cols = self.input_width // stride
            centre_x = (cell % cols + 0.5) * stride
            centre_y = (cell // cols + 0.5) * stride
            found_boxes.append(
                np.stack(
                    [
                        centre_x - sides[:, 0],
                        centre_y - sides[:, 1],
                        centre_x + sides[:, 2],
                        centre_y + sides[:, 3],
                    ],
                    axis=1,
                )
            )
            found_scores.append(score)
            found_classes.append(label)
        return (
            np.concatenate(found_boxes),
            np.concatenate(found_scores),
            np.concatenate(found_classes),
        )
