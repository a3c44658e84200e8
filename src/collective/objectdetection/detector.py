"""The one place where Plone meets the detector service: through its client library.

Builds the derivative, calls ``DetectorClient.detect`` and maps the boxes back to the
pixels of the original image.
"""

from __future__ import annotations

from collective.objectdetection.images import make_derivative
from collective.objectdetection.settings import DetectionSettings
from dataclasses import replace
from detector_service.client import DetectorClient
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from pathlib import Path

import threading


# Weak detections are stored too (only those at or above the site's minimum score are
# indexed): the image view's slider can show them, and lowering the minimum score
# takes effect without detecting again. The detector's own floor is 0.1.
STORED_MIN_SCORE = 0.1

_clients: dict[tuple, DetectorClient] = {}
_clients_lock = threading.Lock()


def get_client(settings: DetectionSettings) -> DetectorClient:
    """A client for these settings, shared by all threads (gRPC channels are)."""
    key = (
        settings.detector_addresses,
        settings.timeout_seconds,
        settings.token,
        settings.root_certificates_path,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # Settings changed: the old channels are no longer wanted.
            for old in _clients.values():
                old.close()
            _clients.clear()
            client = _clients[key] = DetectorClient(
                list(settings.detector_addresses),
                timeout=settings.timeout_seconds,
                token=settings.token or None,
                root_certificates=(
                    Path(settings.root_certificates_path)
                    if settings.root_certificates_path
                    else None
                ),
            )
        return client


def detect(data: bytes, settings: DetectionSettings) -> DetectionResult:
    """Detect objects in the encoded image ``data``; boxes in its own pixels.

    Raises the client's errors (``detector_service.errors``); a file Pillow cannot
    read raises ``InvalidImage`` before anything is sent.
    """
    derivative = make_derivative(data, settings.derivative_longest_edge)
    options = DetectOptions(
        min_score=STORED_MIN_SCORE, labels=settings.label_allow_list
    )
    result = get_client(settings).detect(derivative.data, options)
    detections = tuple(
        replace(d, box=d.box.scaled(derivative.scale_x, derivative.scale_y))
        for d in result.detections
    )
    return replace(
        result,
        detections=detections,
        image_width=derivative.original_width,
        image_height=derivative.original_height,
    )
