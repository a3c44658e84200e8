"""The one small interface every model backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from detector_service.types import Detection
from detector_service.types import ModelInfo
from typing import Protocol
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np


class Backend(Protocol):
    """A loaded model that finds objects in RGB images.

    ``predict`` takes HxWx3 ``uint8`` RGB arrays of any size (the backend does its
    own letterboxing) and returns, per image, the detections after non-maximum
    suppression, best first, with boxes in that array's pixels. It applies only the
    backend's low floor score; the server applies the caller's options.
    """

    info: ModelInfo

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Detection]]: ...
