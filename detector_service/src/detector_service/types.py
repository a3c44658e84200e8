"""Domain types shared by the server, the backends and the client.

Plain dataclasses with no numpy or protobuf in them: the client (and so the Zope
process) imports this module, the ML side produces these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels; (0, 0) is the top-left corner."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def scaled(self, sx: float, sy: float) -> Box:
        """The same box in an image scaled by ``sx`` horizontally, ``sy`` vertically."""
        return Box(self.x_min * sx, self.y_min * sy, self.x_max * sx, self.y_max * sy)


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: Box


@dataclass(frozen=True)
class DetectOptions:
    """What the caller wants back; zero values mean the server's defaults."""

    min_score: float = 0.0
    max_detections: int = 0
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    framework: str
    input_width: int
    input_height: int
    labels: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DetectionResult:
    """What the detector found in one image."""

    detections: tuple[Detection, ...]
    image_width: int
    image_height: int
    model: ModelInfo
    elapsed_ms: float = 0.0
