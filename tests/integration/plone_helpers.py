"""Helpers for the Plone integration tests: a stand-in detector client, images."""

from __future__ import annotations

from detector_service.types import Box
from detector_service.types import Detection
from detector_service.types import DetectionResult
from detector_service.types import ModelInfo
from PIL import Image

import io


MODEL = ModelInfo("fake", "1", "test", 416, 416)


def jpeg(width: int = 640, height: int = 480, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG")
    return out.getvalue()


class FakeClient:
    """Answers with fixed detections in the pixels of the image it is sent."""

    def __init__(self, labels: dict[str, float]) -> None:
        self.labels = labels
        self.calls = 0

    def detect(self, image: bytes, options=None, timeout=None) -> DetectionResult:
        self.calls += 1
        width, height = Image.open(io.BytesIO(image)).size
        box = Box(0, 0, width / 2, height / 2)
        return DetectionResult(
            tuple(Detection(label, score, box) for label, score in self.labels.items()),
            width,
            height,
            MODEL,
        )
