"""Convert a darknet cfg + weights into an ONNX graph (the project's own converter).

No registry ships YOLOv3 as ONNX, so the default backend builds its graph here:
convolutions with batch normalisation folded into their weights and bias,
LeakyRelu(0.1), max pooling (darknet pads size-2 stride-1 pooling at the bottom and
right only), route (Concat), shortcut (Add), upsample (nearest Resize). Each
``[yolo]`` layer's input becomes a graph output, raw: decoding is numpy's job
(:mod:`detector_service.yolo`), the same for every runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from detector_service.darknet.cfg import NetworkConfig
from detector_service.darknet.cfg import read_cfg
from detector_service.darknet.cfg import Section
from detector_service.darknet.weights import WeightsReader
from detector_service.models import ModelFiles
from onnx import helper
from onnx import numpy_helper
from onnx import TensorProto
from pathlib import Path

import numpy as np
import onnx
import re
import tempfile


# Bump when the graph this module builds changes, so cached .onnx files are rebuilt.
CONVERTER_VERSION = 1
OPSET = 17
INPUT_NAME = "images"
LEAKY_SLOPE = 0.1
# darknet's batch norm divides by sqrt(variance) + this (src/blas.c, normalize_cpu).
BATCH_NORM_EPSILON = 1e-6


@dataclass
class _Graph:
    """The graph under construction: nodes, weights, and each layer's output."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # tensor name per layer
    channels: list[int] = field(default_factory=list)  # channel count per layer
    heads: list[tuple[str, int]] = field(default_factory=list)  # name, channels

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=output, **attributes)
        )
        return output


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
    current, channels = INPUT_NAME, cfg.channels
    for index, section in enumerate(cfg.layers):
        build = _LAYERS.get(section.kind)
        if build is None:
            raise ValueError(
                f"layer {index}: darknet layer [{section.kind}] is not supported"
            )
        current, channels = build(graph, index, section, current, channels, weights)
        graph.outputs.append(current)
        graph.channels.append(channels)
    if weights.remaining:
        raise ValueError(
            f"{weights.remaining} values are left over in the weights file: "
            "it does not match the cfg"
        )
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
    """Write the converted model to ``onnx_path``, atomically."""
    model = convert(cfg, WeightsReader(weights_path), model_name, input_size)
    # A partial file of its own: several servers may convert at the same time.
    with tempfile.NamedTemporaryFile(
        dir=onnx_path.parent, prefix=onnx_path.name, suffix=".partial", delete=False
    ) as partial:
        partial.write(model.SerializeToString())
    Path(partial.name).replace(onnx_path)
    return onnx_path


def _convolutional(graph, index, section: Section, source, channels, weights):
    filters = section.get_int("filters")
    size = section.get_int("size")
    stride = section.get_int("stride", 1)
    padding = size // 2 if section.get_int("pad", 0) else section.get_int("padding", 0)
    if section.get_int("groups", 1) != 1:
        raise ValueError(f"layer {index}: grouped convolutions are not supported")
    if section.get_int("batch_normalize", 0):
        beta = weights.take(filters)
        gamma = weights.take(filters)
        mean = weights.take(filters)
        variance = weights.take(filters)
        kernel = weights.take(filters * channels * size * size)
        scale = gamma / (np.sqrt(variance) + BATCH_NORM_EPSILON)
        bias = beta - mean * scale
        kernel = kernel.reshape(filters, -1) * scale[:, None]
    else:
        bias = weights.take(filters)
        kernel = weights.take(filters * channels * size * size)
    kernel = kernel.reshape(filters, channels, size, size).astype(np.float32)
    name = f"conv_{index}"
    output = graph.node(
        "Conv",
        [
            source,
            graph.constant(f"{name}.weight", kernel),
            graph.constant(f"{name}.bias", bias.astype(np.float32)),
        ],
        name,
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[padding] * 4,
    )
    activation = section.get_str("activation", "linear")
    if activation == "leaky":
        output = graph.node("LeakyRelu", [output], f"leaky_{index}", alpha=LEAKY_SLOPE)
    elif activation != "linear":
        raise ValueError(f"layer {index}: activation {activation!r} is not supported")
    return output, filters


def _maxpool(graph, index, section: Section, source, channels, weights):
    size = section.get_int("size")
    stride = section.get_int("stride", 1)
    padding = section.get_int("padding", size - 1)
    # darknet starts the window padding // 2 before the image and pads the rest after.
    before, after = padding // 2, padding - padding // 2
    output = graph.node(
        "MaxPool",
        [source],
        f"maxpool_{index}",
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[before, before, after, after],
    )
    return output, channels


def _layer_ref(index: int, ref: int) -> int:
    return index + ref if ref < 0 else ref


def _route(graph, index, section: Section, source, channels, weights):
    refs = [_layer_ref(index, ref) for ref in section.get_ints("layers")]
    if section.get_int("groups", 1) != 1:
        raise ValueError(f"layer {index}: grouped routes are not supported")
    if len(refs) == 1:
        return graph.outputs[refs[0]], graph.channels[refs[0]]
    output = graph.node(
        "Concat", [graph.outputs[ref] for ref in refs], f"route_{index}", axis=1
    )
    return output, sum(graph.channels[ref] for ref in refs)


def _shortcut(graph, index, section: Section, source, channels, weights):
    ref = _layer_ref(index, section.get_int("from"))
    if section.get_str("activation", "linear") != "linear":
        raise ValueError(f"layer {index}: shortcut activations are not supported")
    output = graph.node("Add", [source, graph.outputs[ref]], f"shortcut_{index}")
    return output, channels


def _upsample(graph, index, section: Section, source, channels, weights):
    stride = float(section.get_int("stride", 2))
    scales = graph.constant(
        f"upsample_{index}.scales", np.array([1, 1, stride, stride], np.float32)
    )
    output = graph.node(
        "Resize",
        [source, "", scales],
        f"upsample_{index}",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    return output, channels


def _yolo(graph, index, section: Section, source, channels, weights):
    # An Identity gives the head a stable name; the runtime optimises it away.
    output = graph.node("Identity", [source], f"yolo_{index}")
    graph.heads.append((output, channels))
    return output, channels


_LAYERS = {
    "convolutional": _convolutional,
    "maxpool": _maxpool,
    "route": _route,
    "shortcut": _shortcut,
    "upsample": _upsample,
    "yolo": _yolo,
}


def converted_model(files: ModelFiles) -> Path:
    """The ONNX file converted from a located darknet model, built on first use.

    The file sits next to the weights, named after their sha256 and this converter's
    version, so new weights or a changed converter get a new file (and the older
    conversions of the model go); a read-only model folder falls back to the
    temporary directory.
    """
    spec = files.spec
    filename = f"{spec.name}-{files.version}-c{CONVERTER_VERSION}.onnx"
    stale = re.compile(rf"{re.escape(spec.name)}-[0-9a-f]{{12}}-c\d+\.onnx")
    for folder in (
        files.weights.parent,
        Path(tempfile.gettempdir()) / "detector-service",
    ):
        path = folder / filename
        if path.is_file():
            return path
        try:
            folder.mkdir(parents=True, exist_ok=True)
            export(
                read_cfg(files.cfg),
                files.weights,
                path,
                spec.name,
                (spec.input_width, spec.input_height),
            )
        except PermissionError:
            continue
        for old in folder.glob(f"{spec.name}-*.onnx"):
            if old != path and stale.fullmatch(old.name):
                old.unlink(missing_ok=True)
        return path
    raise PermissionError(f"no writable folder for {filename}")
