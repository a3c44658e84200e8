"""What darknet's layers compute, whatever runs them.

Each runtime's builder (the ONNX converter, the Chainer network) is a
:class:`NetworkBuilder`: it walks the cfg here and asks this module for a layer's
parameters, so darknet's conventions (batch norm folding, asymmetric pool padding,
relative layer references) and the layer kinds supported live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from detector_service.darknet.cfg import NetworkConfig
from detector_service.darknet.cfg import Section
from detector_service.darknet.weights import WeightsReader
from typing import Generic
from typing import TypeVar

import numpy as np


LEAKY_SLOPE = 0.1
# darknet's batch norm divides by sqrt(variance) + this (src/blas.c, normalize_cpu).
BATCH_NORM_EPSILON = 1e-6
ACTIVATIONS = ("leaky", "linear")
LAYER_KINDS = ("convolutional", "maxpool", "route", "shortcut", "upsample", "yolo")

# What a runtime keeps of each layer: an ONNX tensor name, a Chainer step.
Output = TypeVar("Output")


class NetworkBuilder(Generic[Output]):
    """Builds a darknet network on one runtime, a layer at a time in cfg order.

    A runtime's subclass has a method named after each of :data:`LAYER_KINDS`,
    called with the layer's index, cfg section, input channels and the weights, and
    returning the layer's output and output channels; ``outputs`` and ``channels``
    hold those of the layers built so far (relative references index them).
    """

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.channels: list[int] = []

    def build(self, cfg: NetworkConfig, weights: WeightsReader) -> None:
        """Every layer of ``cfg``, its values taken from ``weights``, all of them."""
        for index, section in enumerate(cfg.layers):
            if section.kind not in LAYER_KINDS:
                raise ValueError(
                    f"layer {index}: darknet layer [{section.kind}] is not supported"
                )
            channels = self.channels[-1] if self.channels else cfg.channels
            build_layer = getattr(self, section.kind)
            output, out_channels = build_layer(index, section, channels, weights)
            self.outputs.append(output)
            self.channels.append(out_channels)
        if weights.remaining:
            raise ValueError(
                f"{weights.remaining} values are left in the weights file: "
                "it does not match the cfg"
            )


@dataclass(frozen=True)
class Convolution:
    """A ``[convolutional]`` layer for inference, batch normalisation folded in."""

    kernel: np.ndarray  # (filters, channels, size, size) float32
    bias: np.ndarray  # (filters,) float32
    stride: int
    padding: int  # on every side
    activation: str  # one of ACTIVATIONS

    @property
    def filters(self) -> int:
        return self.kernel.shape[0]

    @property
    def size(self) -> int:
        return self.kernel.shape[2]


def read_convolution(
    index: int, section: Section, channels: int, weights: WeightsReader
) -> Convolution:
    """Layer ``index``'s parameters, taking its values from ``weights`` in darknet's
    order: biases (or beta, gamma, mean, variance), then the kernel."""
    filters = section.get_int("filters")
    size = section.get_int("size")
    if section.get_int("groups", 1) != 1:
        raise ValueError(f"layer {index}: grouped convolutions are not supported")
    activation = section.get_str("activation", "linear")
    if activation not in ACTIVATIONS:
        raise ValueError(f"layer {index}: activation {activation!r} is not supported")
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
    return Convolution(
        kernel=kernel.reshape(filters, channels, size, size).astype(np.float32),
        bias=np.asarray(bias, dtype=np.float32),
        stride=section.get_int("stride", 1),
        padding=size // 2
        if section.get_int("pad", 0)
        else section.get_int("padding", 0),
        activation=activation,
    )


@dataclass(frozen=True)
class MaxPool:
    """A ``[maxpool]`` layer; the window skips the padding, as a -inf border does."""

    size: int
    stride: int
    # darknet starts the window padding // 2 before the image and pads the rest
    # after: a size-2 stride-1 pool keeps the size by padding bottom and right only.
    pad_before: int
    pad_after: int


def read_max_pool(section: Section) -> MaxPool:
    size = section.get_int("size")
    padding = section.get_int("padding", size - 1)
    return MaxPool(
        size=size,
        stride=section.get_int("stride", 1),
        pad_before=padding // 2,
        pad_after=padding - padding // 2,
    )


def route_sources(index: int, section: Section) -> list[int]:
    """The layers a ``[route]`` concatenates (along channels), as absolute indices."""
    if section.get_int("groups", 1) != 1:
        raise ValueError(f"layer {index}: grouped routes are not supported")
    return [_absolute(index, ref) for ref in section.get_ints("layers")]


def shortcut_source(index: int, section: Section) -> int:
    """The layer a ``[shortcut]`` adds to its input, as an absolute index."""
    if section.get_str("activation", "linear") != "linear":
        raise ValueError(f"layer {index}: shortcut activations are not supported")
    return _absolute(index, section.get_int("from"))


def _absolute(index: int, ref: int) -> int:
    return index + ref if ref < 0 else ref
