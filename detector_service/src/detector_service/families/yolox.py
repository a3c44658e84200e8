"""YOLOX (Megvii-BaseDetection/YOLOX) ONNX exports, as ``tools/export_onnx.py``
writes them by default (without ``--decode_in_inference``): one output of
(cells, 5 + classes) rows over the stride 8, 16 and 32 grids, each row the box's
offset from its cell and log size in strides, objectness and class scores (both
after their sigmoid).

Decoded as upstream's ``demo_postprocess``: centre = (offset + cell) x stride, size
= exp(log size) x stride; score = objectness x class score. Input: BGR, 0-255, not
normalised, in the top left corner of a canvas of 114 (upstream ``preproc``).
"""

from __future__ import annotations

from collections.abc import Sequence
from detector_service.families.base import above_floor
from detector_service.families.base import Family
from detector_service.families.base import grid_cells
from detector_service.families.base import xywh_to_corners

import numpy as np


STRIDES = (8, 16, 32)


class YOLOX(Family):
    name = "yolox"
    fill = 114 / 255
    centre = False

    def normalise(self, rgb: np.ndarray) -> np.ndarray:
        return rgb[::-1] * 255.0

    def check(self, outputs: Sequence[np.ndarray]) -> None:
        cells = len(grid_cells(self.input_width, self.input_height, STRIDES))
        columns = 5 + len(self.labels)
        if len(outputs) != 1 or outputs[0].shape[1:] != (cells, columns):
            hint = ""
            if len(outputs) == 1 and outputs[0].shape[1:] == (3 * cells, columns):
                hint = " (3 rows per cell: a yolov5 export?)"
            self.mismatch(outputs, f"one ({cells}, {columns}) output{hint}")

    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (rows,) = outputs
        row, label, score = above_floor(rows[:, 5:] * rows[:, 4:5], self.score_floor)
        cells = grid_cells(self.input_width, self.input_height, STRIDES)[row]
        picked = rows[row]
        stride = cells[:, 2:3]
        centre = (picked[:, :2] + cells[:, :2]) * stride
        size = np.exp(picked[:, 2:4]) * stride
        return xywh_to_corners(np.concatenate([centre, size], axis=1)), score, label
