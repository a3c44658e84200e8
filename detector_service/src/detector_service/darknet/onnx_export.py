"""Convert a darknet cfg + weights into an ONNX graph (the project's own converter).

No registry ships YOLOv3 as ONNX, so the default backend builds its graph here,
from the layer parameters :mod:`detector_service.darknet.layers` reads: convolutions
with batch normalisation folded into their weights and bias, LeakyRelu(0.1), max
pooling (darknet pads size-2 stride-1 pooling at the bottom and right only), route
(Concat), shortcut (Add), upsample (nearest Resize). Each ``[yolo]`` layer's input
becomes a graph output, raw: decoding is numpy's job (:mod:`detector_service.yolo`),
the same for every runtime.
"""

from __future__ import annotations

from detector_service.darknet.cfg import NetworkConfig
from detector_service.darknet.cfg import read_cfg
from detector_service.darknet.layers import LEAKY_SLOPE
from detector_service.darknet.layers import NetworkBuilder
from detector_service.darknet.layers import read_convolution
from detector_service.darknet.layers import read_max_pool
from detector_service.darknet.layers import route_sources
from detector_service.darknet.layers import shortcut_source
from detector_service.darknet.weights import WeightsReader
from detector_service.models import ModelFiles
from detector_service.models import sha256_of
from detector_service.models import user_cache_dir
from onnx import helper
from onnx import numpy_helper
from onnx import TensorProto
from pathlib import Path

import hashlib
import logging
import numpy as np
import onnx
import re
import tempfile


# Bump when the graph this module builds changes, so cached .onnx files are rebuilt.
CONVERTER_VERSION = 1
OPSET = 17
INPUT_NAME = "images"

log = logging.getLogger("detector_service.onnx_export")


class _Graph(NetworkBuilder[str]):
    """The graph under construction: nodes, weights, each layer's output tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.heads: list[tuple[str, int]] = []  # name, channels

    @property
    def source(self) -> str:
        """The tensor the next layer reads."""
        return self.outputs[-1] if self.outputs else INPUT_NAME

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=output, **attributes)
        )
        return output

    def convolutional(self, index, section, channels, weights) -> tuple[str, int]:
        conv = read_convolution(index, section, channels, weights)
        name = f"conv_{index}"
        output = self.node(
            "Conv",
            [
                self.source,
                self.constant(f"{name}.weight", conv.kernel),
                self.constant(f"{name}.bias", conv.bias),
            ],
            name,
            kernel_shape=[conv.size, conv.size],
            strides=[conv.stride, conv.stride],
            pads=[conv.padding] * 4,
        )
        if conv.activation == "leaky":
            output = self.node(
                "LeakyRelu", [output], f"leaky_{index}", alpha=LEAKY_SLOPE
            )
        return output, conv.filters

    def maxpool(self, index, section, channels, weights) -> tuple[str, int]:
        pool = read_max_pool(section)
        before, after = pool.pad_before, pool.pad_after
        output = self.node(
            "MaxPool",
            [self.source],
            f"maxpool_{index}",
            kernel_shape=[pool.size, pool.size],
            strides=[pool.stride, pool.stride],
            pads=[before, before, after, after],
        )
        return output, channels

    def route(self, index, section, channels, weights) -> tuple[str, int]:
        sources = route_sources(index, section)
        out_channels = sum(self.channels[source] for source in sources)
        if len(sources) == 1:
            return self.outputs[sources[0]], out_channels
        inputs = [self.outputs[source] for source in sources]
        return self.node("Concat", inputs, f"route_{index}", axis=1), out_channels

    def shortcut(self, index, section, channels, weights) -> tuple[str, int]:
        other = self.outputs[shortcut_source(index, section)]
        return self.node("Add", [self.source, other], f"shortcut_{index}"), channels

    def upsample(self, index, section, channels, weights) -> tuple[str, int]:
        stride = float(section.get_int("stride", 2))
        scales = self.constant(
            f"upsample_{index}.scales", np.array([1, 1, stride, stride], np.float32)
        )
        output = self.node(
            "Resize",
            [self.source, "", scales],
            f"upsample_{index}",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        return output, channels

    def yolo(self, index, section, channels, weights) -> tuple[str, int]:
        # An Identity gives the head a stable name; the runtime optimises it away.
        output = self.node("Identity", [self.source], f"yolo_{index}")
        self.heads.append((output, channels))
        return output, channels


def convert(
    cfg: NetworkConfig,
    weights: WeightsReader,
    model_name: str,
    input_size: tuple[int, int] | None = None,
) -> onnx.ModelProto:
    """The ONNX model of a darknet network; input ``images`` (N, 3, H, W) RGB in [0, 1],
    one raw output per ``[yolo]`` layer, named ``yolo_<layer>``.

    ``input_size`` (width, height) overrides the cfg's: darknet's published YOLOv3
    cfg says 608, and the same weights run at any multiple of 32.
    """
    width, height = input_size or (cfg.width, cfg.height)
    graph = _Graph()
    graph.build(cfg, weights)
    batch = "batch"
    onnx_graph = helper.make_graph(
        graph.nodes,
        model_name,
        inputs=[
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, [batch, cfg.channels, height, width]
            )
        ],
        outputs=[
            helper.make_tensor_value_info(
                name,
                TensorProto.FLOAT,
                [batch, channels, f"{name}_rows", f"{name}_cols"],
            )
            for name, channels in graph.heads
        ],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="detector-service",
        producer_version=str(CONVERTER_VERSION),
    )
    onnx.checker.check_model(model)
    return model


def export(
    cfg: NetworkConfig,
    weights_path: Path,
    onnx_path: Path,
    model_name: str,
    input_size: tuple[int, int] | None = None,
) -> Path:
    """Write the converted model to ``onnx_path``, and its sha256 next to it in
    ``<name>.sha256``, each atomically."""
    model = convert(cfg, WeightsReader(weights_path), model_name, input_size)
    data = model.SerializeToString()
    _write_atomically(onnx_path, data)
    _write_atomically(_checksum_path(onnx_path), hashlib.sha256(data).hexdigest())
    return onnx_path


def _write_atomically(path: Path, data: bytes | str) -> None:
    # A partial file of its own: several servers may convert at the same time.
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=path.name, suffix=".partial", delete=False
    ) as partial:
        partial.write(data.encode() if isinstance(data, str) else data)
    Path(partial.name).replace(path)


def _checksum_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".sha256")


def is_verified(onnx_path: Path) -> bool:
    """Whether ``onnx_path`` is whole and the one this converter wrote: its sha256
    matches the one recorded when it was converted."""
    checksum = _checksum_path(onnx_path)
    if not onnx_path.is_file() or not checksum.is_file():
        return False
    return checksum.read_text().strip() == sha256_of(onnx_path)


def converted_model(files: ModelFiles) -> Path:
    """The ONNX file converted from a located darknet model, built on first use.

    The file sits next to the weights, named after their sha256 and this converter's
    version, so new weights or a changed converter get a new file (and the older
    conversions of the model go). It is used only if it matches the sha256 recorded
    at conversion; a damaged or unrecorded file is converted again from the
    verified weights. A read-only model folder falls back to this user's own cache
    (``~/.cache/detector-service/onnx``), never a folder other users can write.
    """
    spec = files.spec
    filename = f"{spec.name}-{files.version}-c{CONVERTER_VERSION}.onnx"
    stale = re.compile(rf"{re.escape(spec.name)}-[0-9a-f]{{12}}-c\d+\.onnx(\.sha256)?")
    for folder in (files.weights.parent, user_cache_dir() / "onnx"):
        path = folder / filename
        if is_verified(path):
            return path
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if path.exists():
                log.warning(
                    "converting the model again: the cached ONNX file does not "
                    "match the checksum recorded at its conversion",
                    extra={"fields": {"path": str(path)}},
                )
            export(
                read_cfg(files.cfg),
                files.weights,
                path,
                spec.name,
                (spec.input_width, spec.input_height),
            )
        except PermissionError:
            continue
        for old in folder.glob(f"{spec.name}-*.onnx*"):
            if old.name not in (path.name, _checksum_path(path).name) and (
                stale.fullmatch(old.name)
            ):
                old.unlink(missing_ok=True)
        return path
    raise PermissionError(f"no writable folder for {filename}")
