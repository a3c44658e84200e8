"""RT-DETR and D-FINE-style ONNX exports: a fixed number of queries, each one
object, without non-maximum suppression.

Two export styles are read:
- the official RT-DETR (lyuwenyu/RT-DETR) and D-FINE ``export_onnx.py``: inputs
  ``images`` and ``orig_target_sizes`` (width, height), outputs ``labels``
  (queries,), ``boxes`` (queries, 4: x_min, y_min, x_max, y_max in the target
  size's pixels) and ``scores`` (queries,). The target size given here is the
  network input's, so boxes come in input pixels.
- ultralytics' RT-DETR export: one (queries, 4 + classes) output, boxes as centre
  x, centre y, width, height in fractions of the input, then class scores; each
  query keeps its best class.

Input: RGB / 255, stretched to the input size (no letterbox), as both resize.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from detector_service.families.base import Family
from detector_service.families.base import FamilyMismatch
from detector_service.families.base import xywh_to_corners

import numpy as np


class RTDETR(Family):
    name = "rtdetr"
    keep_ratio = False
    iou_threshold = None

    def extra_inputs(self, batch_size: int) -> Mapping[str, np.ndarray]:
        size = [self.input_width, self.input_height]
        return {"orig_target_sizes": np.array([size] * batch_size, dtype=np.int64)}

    def roles(self, outputs: Sequence[np.ndarray]) -> tuple[int, int, int] | None:
        """Indices of (labels, boxes, scores) among official-style outputs."""
        if len(outputs) != 3:
            return None
        ranks = [output.ndim for output in outputs]
        if sorted(ranks) != [1, 1, 2] or outputs[ranks.index(2)].shape[-1] != 4:
            return None
        boxes = ranks.index(2)
        others = [i for i in range(3) if i != boxes]
        labels, scores = sorted(others, key=lambda i: outputs[i].dtype.kind == "f")
        if outputs[labels].dtype.kind not in "iu" or outputs[scores].dtype.kind != "f":
            return None
        return labels, boxes, scores

    def check(self, outputs: Sequence[np.ndarray]) -> None:
        single = [output[0] for output in outputs]
        if self.roles(single) is not None:
            return
        classes = len(self.labels)
        if (
            len(single) == 1
            and single[0].ndim == 2
            and single[0].shape[1] == 4 + classes
        ):
            return
        self.mismatch(
            outputs,
            "labels (queries,), boxes (queries, 4) and scores (queries,), or one "
            f"(queries, {4 + classes}) output",
        )

    def candidates(
        self, outputs: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        roles = self.roles(outputs)
        if roles is None:
            (queries,) = outputs
            label = queries[:, 4:].argmax(axis=1)
            score = queries[np.arange(len(queries)), 4 + label]
            size = np.array([self.input_width, self.input_height] * 2, np.float32)
            boxes = xywh_to_corners(queries[:, :4] * size)
        else:
            labels, boxes_at, scores = roles
            label = outputs[labels].astype(np.int64)
            score = outputs[scores].astype(np.float32)
            boxes = outputs[boxes_at].astype(np.float32)
        keep = score > self.score_floor
        label = label[keep]
        if label.size and (label.min() < 0 or label.max() >= len(self.labels)):
            raise FamilyMismatch(
                f"the model answered class {int(label.max())}, beyond the "
                f"{len(self.labels)} labels of its labels file"
            )
        return boxes[keep], score[keep], label
