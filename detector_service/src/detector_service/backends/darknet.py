"""What every backend running a darknet model shares: the network outputs raw YOLO
heads, and the letterbox, decoding and NMS around it are :mod:`detector_service.yolo`'s.

A runtime subclasses :class:`DarknetBackend` and supplies ``raw_outputs``; so the
runtimes differ only in the network's arithmetic and their detections can be
compared one for one. :func:`model_info` is what any backend, ChainerCV's own
YOLOv3 too, reports of the model it runs.
"""

from __future__ import annotations

from abc import ABC
from abc import abstractmethod
from collections.abc import Sequence
from detector_service.darknet.cfg import read_cfg
from detector_service.models import ModelFiles
from detector_service.models import ModelUnavailable
from detector_service.types import Detection
from detector_service.types import ModelInfo
from detector_service.yolo import letterbox
from detector_service.yolo import YoloDecoder

import numpy as np


def model_info(files: ModelFiles, framework: str) -> ModelInfo:
    """What a backend says of the located model it runs on ``framework``."""
    spec = files.spec
    return ModelInfo(
        name=spec.name,
        version=files.version,
        framework=framework,
        input_width=spec.input_width,
        input_height=spec.input_height,
        labels=spec.labels,
    )


class DarknetBackend(ABC):
    """A darknet cfg + weights model behind the :class:`Backend` protocol."""

    def __init__(self, files: ModelFiles, framework: str, score_floor: float) -> None:
        spec = files.spec
        if spec.format != "darknet":
            raise ModelUnavailable(
                f"{type(self).__name__} runs darknet models; {files.name} is a "
                f"{spec.format} model (use the chainer backend)"
            )
        self.decoder = YoloDecoder(
            heads=tuple(read_cfg(files.cfg).yolo_heads()),
            labels=spec.labels,
            input_width=spec.input_width,
            input_height=spec.input_height,
            score_floor=score_floor,
        )
        self.info = model_info(files, framework)

    @abstractmethod
    def raw_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """The raw YOLO heads, in cfg order, for an ``(n, 3, h, w)`` float32 batch."""

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        if not images:
            return []
        width, height = self.info.input_width, self.info.input_height
        boxed = [letterbox(image, width, height) for image in images]
        outputs = self.raw_outputs(np.stack([inputs for inputs, _ in boxed]))
        return [
            self.decoder.detections([head[index] for head in outputs], placement)
            for index, (_, placement) in enumerate(boxed)
        ]
