"""One detection from bytes to result: decode, run the model, map boxes, filter."""

from __future__ import annotations

from collections.abc import Iterable
from detector_service.backends.base import Backend
from detector_service.decoding import ImageDecoder
from detector_service.types import Box
from detector_service.types import Detection
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions

import time


class DetectionPipeline:
    """Decodes an image, runs the backend and answers in the image's own pixels."""

    def __init__(
        self, backend: Backend, decoder: ImageDecoder, min_score: float
    ) -> None:
        self.backend = backend
        self.decoder = decoder
        self.min_score = min_score

    def __call__(self, data: bytes, options: DetectOptions) -> DetectionResult:
        started = time.perf_counter()
        image = self.decoder.decode(data)
        (found,) = self.backend.predict([image.pixels])
        sx, sy = image.scale
        width, height = image.width, image.height
        mapped = (
            Detection(d.label, d.score, clip(d.box.scaled(sx, sy), width, height))
            for d in found
        )
        return DetectionResult(
            detections=select(mapped, options, self.min_score),
            image_width=width,
            image_height=height,
            model=self.backend.info,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )


def select(
    detections: Iterable[Detection], options: DetectOptions, default_min_score: float
) -> tuple[Detection, ...]:
    """Apply the caller's options: score floor, label allow-list, best-first cap.

    Labels the model does not know simply match nothing, so a client's allow-list
    keeps working when the server's model changes.
    """
    floor = options.min_score or default_min_score
    wanted = set(options.labels)
    kept = [
        d for d in detections if d.score >= floor and (not wanted or d.label in wanted)
    ]
    kept.sort(key=lambda d: d.score, reverse=True)
    if options.max_detections:
        kept = kept[: options.max_detections]
    return tuple(kept)


def clip(box: Box, width: int, height: int) -> Box:
    """The box restricted to the image (models may predict slightly beyond it)."""
    return Box(
        min(max(box.x_min, 0.0), width),
        min(max(box.y_min, 0.0), height),
        min(max(box.x_max, 0.0), width),
        min(max(box.y_max, 0.0), height),
    )
