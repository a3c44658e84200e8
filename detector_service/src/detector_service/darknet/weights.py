"""Read darknet's ``.weights`` file: a header, then float32 values in layer order."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class WeightsReader:
    """Hands out a ``.weights`` file's values in the order the layers take them."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        # The header: major, minor, revision, then the images seen in training,
        # which darknet widened to 64 bits in version 0.2.
        major, minor = np.frombuffer(data, dtype="<i4", count=2).tolist()
        wide_seen = major * 10 + minor >= 2 and major < 1000 and minor < 1000
        start = 12 + (8 if wide_seen else 4)
        if (len(data) - start) % 4:
            raise ValueError(f"{path.name}: not a darknet weights file (odd length)")
        self.values = np.frombuffer(data, dtype="<f4", offset=start)
        self.position = 0

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` values (a read-only view)."""
        end = self.position + count
        if end > self.values.size:
            raise ValueError(
                "the weights file ends before the network: it does not match the cfg"
            )
        chunk = self.values[self.position : end]
        self.position = end
        return chunk

    @property
    def remaining(self) -> int:
        return self.values.size - self.position
