"""Parse darknet's ``.cfg`` network description.

A cfg file is a list of ``[section]`` headers with ``key = value`` lines; the first
section (``[net]``) holds the input size, every later one is a layer, numbered from 0
in file order (routes and shortcuts refer to layers by those numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from detector_service.yolo import YoloHead
from pathlib import Path


@dataclass(frozen=True)
class Section:
    """One ``[kind]`` block of a cfg file."""

    kind: str
    options: dict[str, str]

    def get_int(self, key: str, default: int | None = None) -> int:
        return int(self._value(key, default))

    def get_str(self, key: str, default: str | None = None) -> str:
        return str(self._value(key, default))

    def get_ints(self, key: str) -> list[int]:
        return [int(item) for item in self._value(key, None).split(",") if item.strip()]

    def _value(self, key: str, default: object) -> object:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise ValueError(f"[{self.kind}] has no {key!r}")
        return default


@dataclass(frozen=True)
class NetworkConfig:
    """The ``[net]`` section and the layers of a cfg file."""

    net: Section
    layers: tuple[Section, ...]

    @property
    def width(self) -> int:
        return self.net.get_int("width")

    @property
    def height(self) -> int:
        return self.net.get_int("height")

    @property
    def channels(self) -> int:
        return self.net.get_int("channels", 3)

    def yolo_heads(self) -> list[YoloHead]:
        """The ``[yolo]`` layers' anchors and class counts, in layer order."""
        heads = []
        for section in self.layers:
            if section.kind != "yolo":
                continue
            pairs = section.get_ints("anchors")
            anchors = list(zip(pairs[0::2], pairs[1::2], strict=True))
            heads.append(
                YoloHead(
                    anchors=tuple(anchors[i] for i in section.get_ints("mask")),
                    classes=section.get_int("classes"),
                )
            )
        return heads


def parse_cfg(text: str) -> NetworkConfig:
    """Read a cfg file's text; comments (``#``, ``;``) and blank lines are skipped."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append(Section(kind=line[1:-1].strip(), options={}))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ValueError(f"line {number} of the cfg is not understood: {raw!r}")
    if not sections or sections[0].kind not in {"net", "network"}:
        raise ValueError("a darknet cfg starts with a [net] section")
    return NetworkConfig(net=sections[0], layers=tuple(sections[1:]))


def read_cfg(path: Path) -> NetworkConfig:
    return parse_cfg(path.read_text(encoding="utf-8"))
