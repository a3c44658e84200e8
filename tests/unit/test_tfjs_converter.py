"""The TF.js graph reader and the TF.js-to-ONNX converter, op by op, on small graphs
built here and checked against numpy computing TensorFlow's definitions."""

from __future__ import annotations

from detector_service.tfjs.graph import GraphModel
from detector_service.tfjs.graph import GraphModelError
from detector_service.tfjs.graph import Node
from detector_service.tfjs.graph import read_graph_model
from detector_service.tfjs.onnx_export import convert
from detector_service.tfjs.onnx_export import UnsupportedGraph
from numpy.lib.stride_tricks import sliding_window_view

import base64
import json
import numpy as np
import onnxruntime
import pytest


RNG = np.random.default_rng(11)


def node(name: str, op: str, *inputs: str, **attrs) -> Node:
    return Node(name=name, op=op, inputs=inputs, attrs=attrs)


def run(
    nodes: list[Node],
    weights: dict[str, np.ndarray],
    x: np.ndarray,
    outputs: list[str],
) -> list[np.ndarray]:
    """Convert the graph (input ``x`` as Placeholder ``x``) and run it."""
    placeholder = node("x", "Placeholder", dtype="DT_FLOAT", shape=list(x.shape))
    consts = [node(name, "Const") for name in weights]
    model = GraphModel(
        nodes=(placeholder, *consts, *nodes),
        weights=weights,
        inputs=("x",),
        outputs=tuple(outputs),
    )
    onnx_model = convert(
        model, outputs, "test", [f"out{i}" for i in range(len(outputs))]
    )
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding: the odd pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_nhwc(
    x: np.ndarray, kernel: np.ndarray, stride: int, padding: str, depthwise=False
) -> np.ndarray:
    rows, cols = kernel.shape[:2]
    if padding == "SAME":
        x = np.pad(
            x,
            (
                (0, 0),
                same_pads(x.shape[1], rows, stride),
                same_pads(x.shape[2], cols, stride),
                (0, 0),
            ),
        )
    windows = sliding_window_view(x, (rows, cols), axis=(1, 2))[:, ::stride, ::stride]
    # windows: (n, out_h, out_w, channels, rows, cols)
    if depthwise:
        out = np.einsum("nhwcij,ijcm->nhwcm", windows, kernel)
        return out.reshape(*out.shape[:3], -1)
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel)


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def test_the_reader_dequantizes_float16_and_affine_uint8(tmp_path):
    half = np.array([[1.5, -2.25]], np.float16)
    codes = np.array([0, 10, 255], np.uint8)
    ints = np.array([3, -4], np.int32)
    (tmp_path / "w.bin").write_bytes(half.tobytes() + codes.tobytes() + ints.tobytes())
    topology = {
        "node": [
            {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
            {"name": "h", "op": "Const"},
            {
                "name": "y",
                "op": "Conv2D",
                "input": ["x", "h", "^ctrl"],
                "attr": {
                    "padding": {"s": base64.b64encode(b"SAME").decode()},
                    "strides": {"list": {"i": ["1", "2", "2", "1"]}},
                    "epsilon": {"f": 0.5},
                },
            },
        ]
    }
    manifest = [
        {
            "paths": ["w.bin"],
            "weights": [
                {
                    "name": "h",
                    "shape": [1, 2],
                    "dtype": "float32",
                    "quantization": {"dtype": "float16", "original_dtype": "float32"},
                },
                {
                    "name": "q",
                    "shape": [3],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
                },
                {"name": "i", "shape": [2], "dtype": "int32"},
            ],
        }
    ]
    model_json = tmp_path / "model.json"
    model_json.write_text(
        json.dumps(
            {
                "format": "graph-model",
                "modelTopology": topology,
                "weightsManifest": manifest,
                "signature": {"inputs": {"x:0": {}}, "outputs": {"y:0": {}}},
            }
        )
    )
    model = read_graph_model(model_json)
    assert model.weights["h"].dtype == np.float32
    assert model.weights["h"].tolist() == [[1.5, -2.25]]
    assert model.weights["q"].tolist() == [-1.0, 4.0, 126.5]
    assert model.weights["i"].tolist() == [3, -4]
    conv = model.nodes[-1]
    assert conv.inputs == ("x", "h")  # the control input is dropped
    assert conv.attrs == {"padding": "SAME", "strides": [1, 2, 2, 1], "epsilon": 0.5}
    assert (model.inputs, model.outputs) == (("x",), ("y",))
    (tmp_path / "w.bin").write_bytes(half.tobytes())
    with pytest.raises(GraphModelError, match="too short"):
        read_graph_model(model_json)


def test_pad_conv2d_valid_add_and_leaky_relu():
    x, kernel, bias = f32(1, 9, 9, 3), f32(3, 3, 3, 4), f32(4)
    paddings = np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)
    nodes = [
        node("pad", "Pad", "x", "paddings"),
        node("conv", "Conv2D", "pad", "kernel", padding="VALID", strides=[1, 2, 2, 1]),
        node("add", "Add", "conv", "bias"),
        node("act", "LeakyRelu", "add", alpha=0.1),
    ]
    weights = {"paddings": paddings, "kernel": kernel, "bias": bias}
    (ours,) = run(nodes, weights, x, ["act"])
    expected = conv_nhwc(np.pad(x, paddings), kernel, 2, "VALID") + bias
    expected = np.where(expected > 0, expected, 0.1 * expected)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("size", "stride"), [(8, 1), (9, 2), (10, 2)])
def test_fused_conv2d_same_padding_bias_and_relu6(size, stride):
    x, kernel, bias = f32(1, size, size, 2), f32(3, 3, 2, 5) * 3, f32(5)
    nodes = [
        node(
            "conv",
            "_FusedConv2D",
            "x",
            "kernel",
            "bias",
            padding="SAME",
            strides=[1, stride, stride, 1],
            fused_ops=["BiasAdd", "Relu6"],
        )
    ]
    (ours,) = run(nodes, {"kernel": kernel, "bias": bias}, x, ["conv"])
    expected = np.clip(conv_nhwc(x, kernel, stride, "SAME") + bias, 0, 6)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_depthwise_convolutions_with_a_channel_multiplier():
    x, kernel, bias = f32(1, 7, 7, 3), f32(3, 3, 3, 2), f32(6)
    nodes = [
        node("dw", "DepthwiseConv2dNative", "x", "kernel", padding="SAME"),
        node(
            "fused",
            "FusedDepthwiseConv2dNative",
            "x",
            "kernel",
            "bias",
            padding="SAME",
            strides=[1, 2, 2, 1],
            fused_ops=["BiasAdd", "Relu"],
        ),
    ]
    plain, fused = run(nodes, {"kernel": kernel, "bias": bias}, x, ["dw", "fused"])
    np.testing.assert_allclose(
        plain, conv_nhwc(x, kernel, 1, "SAME", depthwise=True), rtol=1e-5, atol=1e-5
    )
    expected = np.maximum(conv_nhwc(x, kernel, 2, "SAME", depthwise=True) + bias, 0)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-5)


def test_max_pool_valid_and_same():
    x = f32(1, 7, 7, 2)
    nodes = [
        node("valid", "MaxPool", "x", ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1]),
        node("same", "MaxPool", "x", ksize=[1, 3, 3, 1], padding="SAME"),
    ]
    valid, same = run(nodes, {}, x, ["valid", "same"])
    windows = sliding_window_view(x, (3, 3), axis=(1, 2))
    np.testing.assert_array_equal(valid, windows[:, ::2, ::2].max(axis=(-2, -1)))
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    expected = sliding_window_view(padded, (3, 3), axis=(1, 2)).max(axis=(-2, -1))
    np.testing.assert_array_equal(same, expected)


def bilinear(x: np.ndarray, rows: int, cols: int, half_pixel: bool) -> np.ndarray:
    """TensorFlow's ResizeBilinear (align_corners false), one axis at a time."""

    def axis(values: np.ndarray, size: int, along: int) -> np.ndarray:
        scale = values.shape[along] / size
        out = np.arange(size, dtype=np.float64)
        src = (out + 0.5) * scale - 0.5 if half_pixel else out * scale
        src = np.clip(src, 0, None)
        low = np.minimum(np.floor(src).astype(int), values.shape[along] - 1)
        high = np.minimum(low + 1, values.shape[along] - 1)
        weight = (src - low).reshape([-1 if a == along else 1 for a in range(4)])
        return (
            np.take(values, low, axis=along) * (1 - weight)
            + np.take(values, high, axis=along) * weight
        )

    return axis(axis(x.astype(np.float64), rows, 1), cols, 2)


@pytest.mark.parametrize("half_pixel", [True, False])
def test_resize_bilinear(half_pixel):
    x = f32(1, 4, 5, 3)
    nodes = [
        node(
            "resize",
            "ResizeBilinear",
            "x",
            "size",
            align_corners=False,
            half_pixel_centers=half_pixel,
        )
    ]
    (ours,) = run(nodes, {"size": np.array([8, 10], np.int32)}, x, ["resize"])
    np.testing.assert_allclose(ours, bilinear(x, 8, 10, half_pixel), atol=1e-5)


def test_split_concat_transpose_reshape_sigmoid_mean_and_arithmetic():
    x = f32(1, 4, 6)
    # A Reshape target computed from constants, as NanoDet's graph does it.
    nodes = [
        node("split", "SplitV", "x", "sizes", "axis"),
        node("sig", "Sigmoid", "split:1"),
        node("cat", "ConcatV2", "sig", "split", "cat_axis"),
        node("perm", "Transpose", "cat", "order"),
        node("dense", "SparseToDense", "where", "dense_shape", "dense_values", "zero"),
        node("shape", "AddV2", "base_shape", "dense"),
        node("flat", "Reshape", "perm", "shape"),
        node("mean", "Mean", "x", "mean_axes", keep_dims=True),
        node("scaled", "Mul", "mean", "two"),
        node("shifted", "Sub", "scaled", "one"),
        node("padded", "PadV2", "x", "pads", "fill"),
        node("same", "Identity", "padded"),
        node("relu", "Relu", "x"),
    ]
    weights = {
        "sizes": np.array([2, 4], np.int32),
        "axis": np.array(2, np.int32),
        "cat_axis": np.array(-1, np.int32),
        "order": np.array([0, 2, 1], np.int32),
        "where": np.array([[1]], np.int64),
        "dense_shape": np.array([2], np.int64),
        "dense_values": np.array([-1], np.int64),
        "zero": np.array(0, np.int64),
        "base_shape": np.array([1, 0], np.int64),
        "mean_axes": np.array([1, 2], np.int32),
        "two": np.array(2.0, np.float32),
        "one": np.array(1.0, np.float32),
        "pads": np.array([[0, 0], [1, 0], [0, 2]], np.int32),
        "fill": np.array(-3.0, np.float32),
    }
    flat, shifted, same, relu = run(
        nodes, weights, x, ["flat", "shifted", "same", "relu"]
    )
    first, second = x[..., :2], x[..., 2:]
    expected = np.concatenate([1 / (1 + np.exp(-second)), first], axis=-1)
    np.testing.assert_allclose(
        flat, expected.transpose(0, 2, 1).reshape(1, -1), rtol=1e-6
    )
    np.testing.assert_allclose(
        shifted, x.mean(axis=(1, 2), keepdims=True) * 2 - 1, rtol=1e-5
    )
    np.testing.assert_array_equal(
        same, np.pad(x, ((0, 0), (1, 0), (0, 2)), constant_values=-3.0)
    )
    np.testing.assert_array_equal(relu, np.maximum(x, 0))


def test_an_unsupported_op_is_named_with_its_node():
    nodes = [node("top", "TopKV2", "x", "k")]
    with pytest.raises(
        UnsupportedGraph, match="op TopKV2 \\(node top\\) is not supported"
    ):
        run(nodes, {"k": np.array(3, np.int32)}, f32(1, 5), ["top"])


def test_unsupported_variants_fail_clearly():
    x = f32(1, 3, 6, 6)
    nchw = [node("pool", "MaxPool", "x", ksize=[1, 1, 2, 2], data_format="NCHW")]
    with pytest.raises(UnsupportedGraph, match="data_format 'NCHW'"):
        run(nchw, {}, x, ["pool"])
    sparse = [node("dense", "SparseToDense", "x", "shape", "x", "zero")]
    weights = {"shape": np.array([4], np.int64), "zero": np.array(0.0, np.float32)}
    with pytest.raises(UnsupportedGraph, match="only on constant inputs"):
        run(sparse, weights, x, ["dense"])
    fused = [
        node(
            "conv",
            "_FusedConv2D",
            "x",
            "k",
            "b",
            fused_ops=["BiasAdd", "Elu"],
        )
    ]
    weights = {"k": f32(1, 1, 6, 2), "b": f32(2)}
    with pytest.raises(UnsupportedGraph, match="fused activation Elu"):
        run(fused, weights, x, ["conv"])
    with pytest.raises(UnsupportedGraph, match="no node 'missing'"):
        run([], {}, x, ["missing"])
