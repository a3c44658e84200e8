"""Read a TensorFlow.js graph model: ``model.json`` (the TensorFlow graph as JSON and
a weights manifest) and its weight files, as plain Python and numpy values.

Only what a frozen inference graph holds is read: nodes with their op, inputs and
attributes, and the constant tensors, dequantized to what the graph computes with
(``float16`` or affine ``uint8``/``uint16`` quantization back to ``float32``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import base64
import json
import numpy as np


class GraphModelError(ValueError):
    """The files are not a TF.js graph model this reader understands."""


_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
}


@dataclass(frozen=True)
class Node:
    """One graph node: TensorFlow's op name, its data inputs (``name`` or
    ``name:index``; control inputs dropped) and its attributes, decoded."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphModel:
    nodes: tuple[Node, ...]
    weights: Mapping[str, np.ndarray]
    # Signature names as the graph spells them, e.g. "input_1:0" -> tensor "input_1".
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def read_graph_model(model_json: Path, weights_dir: Path | None = None) -> GraphModel:
    """The graph of ``model_json``; its weight files are read from ``weights_dir``
    (default: the JSON file's folder)."""
    try:
        document = json.loads(model_json.read_text())
        topology = document["modelTopology"]
        manifest = document["weightsManifest"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GraphModelError(
            f"{model_json}: not a TF.js graph model ({error})"
        ) from error
    if document.get("format") != "graph-model":
        raise GraphModelError(
            f"{model_json}: format {document.get('format')!r}, expected 'graph-model'"
        )
    folder = weights_dir or model_json.parent
    nodes = tuple(_node(raw) for raw in topology["node"])
    signature = document.get("signature") or topology.get("signature") or {}
    return GraphModel(
        nodes=nodes,
        weights=read_weights(manifest, folder),
        inputs=tuple(_tensor(name) for name in signature.get("inputs", {})),
        outputs=tuple(_tensor(name) for name in signature.get("outputs", {})),
    )


def _tensor(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _node(raw: Mapping) -> Node:
    inputs = tuple(name for name in raw.get("input", ()) if not name.startswith("^"))
    attrs = {key: _attr(value) for key, value in raw.get("attr", {}).items()}
    return Node(name=raw["name"], op=raw["op"], inputs=inputs, attrs=attrs)


def _attr(value: Mapping) -> object:
    """A TensorFlow ``AttrValue`` in JSON form as a Python value."""
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(s).decode() for s in items["s"]]
        if "i" in items:
            return [int(i) for i in items["i"]]
        if "f" in items:
            return [float(f) for f in items["f"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        dims = value["shape"].get("dim", [])
        return [int(dim.get("size", -1)) for dim in dims]
    return value


def read_weights(manifest: list[Mapping], folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest, by name: each group's files are one byte
    stream, the weights laid out in it one after the other."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            array, offset = _weight(entry, data, offset)
            weights[entry["name"]] = array
        if offset != len(data):
            raise GraphModelError(
                f"weights {group['paths']}: {len(data)} bytes, the manifest "
                f"describes {offset}"
            )
    return weights


def _weight(entry: Mapping, data: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = tuple(int(size) for size in entry["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    quantization = entry.get("quantization")
    stored = quantization["dtype"] if quantization else entry["dtype"]
    if stored not in _DTYPES:
        raise GraphModelError(f"weight {entry['name']}: unsupported dtype {stored}")
    dtype = np.dtype(_DTYPES[stored]).newbyteorder("<")
    end = offset + count * dtype.itemsize
    if end > len(data):
        raise GraphModelError(f"weight {entry['name']}: the weight files are too short")
    values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    if quantization:
        values = _dequantize(entry, quantization, values)
    else:
        values = values.astype(_DTYPES[entry["dtype"]])
    return values.reshape(shape), end


def _dequantize(
    entry: Mapping, quantization: Mapping, values: np.ndarray
) -> np.ndarray:
    target = _DTYPES[quantization.get("original_dtype", entry["dtype"])]
    if quantization["dtype"] == "float16":
        return values.astype(target)
    if "scale" in quantization:
        scale = np.float32(quantization["scale"])
        minimum = np.float32(quantization["min"])
        return (values.astype(np.float32) * scale + minimum).astype(target)
    raise GraphModelError(
        f"weight {entry['name']}: unsupported quantization {dict(quantization)}"
    )
