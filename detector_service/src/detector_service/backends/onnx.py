"""The default backend: the darknet model converted to ONNX, run by ONNX Runtime.

Chosen for speed on CPU (see docs/benchmarks.md): fp32 with every graph
optimisation and a fixed number of intra-op threads; one batch per ``predict``.
"""

from __future__ import annotations

from detector_service.backends.darknet import DarknetBackend
from detector_service.darknet.onnx_export import converted_model
from detector_service.darknet.onnx_export import INPUT_NAME
from detector_service.models import ModelFiles
from detector_service.yolo import SCORE_FLOOR

import numpy as np
import onnxruntime


class OnnxBackend(DarknetBackend):
    def __init__(
        self, files: ModelFiles, threads: int = 2, score_floor: float = SCORE_FLOOR
    ) -> None:
        super().__init__(files, f"onnxruntime {onnxruntime.__version__}", score_floor)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = (
            onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(converted_model(files)), options, providers=["CPUExecutionProvider"]
        )

    def raw_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {INPUT_NAME: batch})


def load(
    files: ModelFiles, threads: int = 2, score_floor: float = SCORE_FLOOR
) -> OnnxBackend:
    return OnnxBackend(files, threads=threads, score_floor=score_floor)
