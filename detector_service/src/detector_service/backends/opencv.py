"""The reference backend: OpenCV DNN reading the darknet cfg and weights directly.

It checks the project's own ONNX conversion (same raw outputs) and is the baseline
of the benchmarks (docs/benchmarks.md).
"""

from __future__ import annotations

from detector_service.backends.darknet import DarknetBackend
from detector_service.darknet.cfg import read_cfg
from detector_service.models import ModelFiles
from detector_service.models import ModelUnavailable
from detector_service.yolo import SCORE_FLOOR

import cv2
import numpy as np


class OpenCVBackend(DarknetBackend):
    def __init__(
        self, files: ModelFiles, threads: int = 2, score_floor: float = SCORE_FLOOR
    ) -> None:
        super().__init__(files, f"opencv {cv2.__version__}", score_floor)
        cv2.setNumThreads(threads)
        self.net = cv2.dnn.readNetFromDarknet(str(files.cfg), str(files.weights))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        # OpenCV names the cfg's layer i after its type and i; each [yolo] layer
        # reads the linear convolution just before it, whose output is the raw head.
        self.head_layers = [
            f"conv_{index - 1}"
            for index, section in enumerate(read_cfg(files.cfg).layers)
            if section.kind == "yolo"
        ]
        unknown = set(self.head_layers) - set(self.net.getLayerNames())
        if unknown:
            raise ModelUnavailable(f"OpenCV's network has no layers {sorted(unknown)}")

    def raw_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(batch)
        return list(self.net.forward(self.head_layers))


def load(
    files: ModelFiles, threads: int = 2, score_floor: float = SCORE_FLOOR
) -> OpenCVBackend:
    return OpenCVBackend(files, threads=threads, score_floor=score_floor)
