"""Errors raised by the client, one per way a call can fail."""

from __future__ import annotations


class DetectorError(Exception):
    """A detection call failed."""


class InvalidImage(DetectorError):
    """The detector could not decode the image, or it is beyond the limits."""


class DetectorBusy(DetectorError):
    """The detector's queue is full; try again later."""


class DetectorUnavailable(DetectorError):
    """No detector answered in time (down, still loading, or too slow)."""


class DetectorDenied(DetectorError):
    """The detector refused the credentials (token or TLS)."""
