"""YOLOv5 and YOLOv8-style ONNX exports (ultralytics/yolov5 ``export.py``,
ultralytics ``yolo export format=onnx``, and the many heads that copy them: YOLOv9,
YOLO11, ...). Both decode their grids inside the graph: boxes come as centre x,
centre y, width, height in input pixels.

- ``yolov5``: one (3 x cells, 5 + classes) output: box, objectness, class scores
  (both after their sigmoid); score = objectness x class score.
- ``yolov8``: one (4 + classes, cells) output: box and class scores; no objectness.

Input: RGB / 255, letterboxed in the centre on grey 114 (ultralytics ``LetterBox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from detector_service.families.base import above_floor
from detector_service.families.base import Family
from detector_service.families.base import grid_cells
from detector_service.families.base import xywh_to_corners

import numpy as np


STRIDES = (8, 16, 32)


class _Ultralytics(Family):
    fill = 114 / 255

    @property
    def cells(self) -> int:
        return len(grid_cells(self.input_width, self.input_height, STRIDES))


class YOLOv5(_Ultralytics):
    name = "yolov5"

    def check(self, outputs: Sequence[np.ndarray]) -> None:
        shape = (3 * self.cells, 5 + len(self.labels))
        if len(outputs) != 1 or outputs[0].shape[1:] != shape:
            hint = ""
            if len(outputs) == 1 and outputs[0].shape[1:] == (self.cells, shape[1]):
                hint = " (one row per cell: a yolox export?)"
            elif len(outputs) == 1 and outputs[0].shape[1:] == (
                shape[1] - 1,
                self.cells,
            ):
                hint = " (a yolov8 export?)"
            self.mismatch(outputs, f"one {shape} output{hint}")

    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (rows,) = outputs
        row, label, score = above_floor(rows[:, 5:] * rows[:, 4:5], self.score_floor)
        return xywh_to_corners(rows[row, :4]), score, label


class YOLOv8(_Ultralytics):
    name = "yolov8"

    def check(self, outputs: Sequence[np.ndarray]) -> None:
        shape = (4 + len(self.labels), self.cells)
        if len(outputs) != 1 or outputs[0].shape[1:] != shape:
            hint = ""
            if len(outputs) == 1 and outputs[0].shape[1:] == (
                3 * self.cells,
                shape[0] + 1,
            ):
                hint = " (a yolov5 export?)"
            self.mismatch(outputs, f"one {shape} output{hint}")

    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = outputs[0].T
        row, label, score = above_floor(rows[:, 4:], self.score_floor)
        return xywh_to_corners(rows[row, :4]), score, label
