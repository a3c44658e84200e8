"""Read darknet's ``.weights`` file: a header, then float32 values in layer order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    # Images seen in training; darknet widened it to 64 bits in version 0.2.
    seen: int


class WeightsReader:
    """Hands out a ``.weights`` file's values in the order the layers take them."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        major, minor, revision = np.frombuffer(data, dtype="<i4", count=3).tolist()
        wide_seen = major * 10 + minor >= 2 and major < 1000 and minor < 1000
        seen_dtype = "<i8" if wide_seen else "<i4"
        seen = int(np.frombuffer(data, dtype=seen_dtype, count=1, offset=12)[0])
        start = 12 + np.dtype(seen_dtype).itemsize
        if (len(data) - start) % 4:
            raise ValueError(f"{path.name}: not a darknet weights file (odd length)")
        self.header = WeightsHeader(major, minor, revision, seen)
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
