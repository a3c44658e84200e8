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
from detector_service.onnx_cache import converted_model as cached_conversion
from detector_service.onnx_cache import write_model
from onnx import helper
from onnx import numpy_helper
from onnx import TensorProto
from pathlib import Path

import numpy as np
import onnx


# Bump when the graph this module builds changes, so cached .onnx files are rebuilt.
CONVERTER_VERSION = 1
OPSET = 17
INPUT_NAME = "images"


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
    return write_model(onnx_path, model.SerializeToString())


def converted_model(files: ModelFiles) -> Path:
    """The ONNX file converted from a located darknet model, built on first use and
    cached by the weights' digest (:mod:`detector_service.onnx_cache`)."""
    spec = files.spec
    size = (spec.input_width, spec.input_height)

    def build() -> bytes:
        cfg = read_cfg(files.cfg)
        model = convert(cfg, WeightsReader(files.weights), spec.name, size)
        return model.SerializeToString()

    return cached_conversion(files, CONVERTER_VERSION, build)
