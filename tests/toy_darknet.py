"""A small darknet network with every layer kind the runtimes build, random weights.

Every layer type of the full YOLOv3 and of YOLOv3-tiny, at 64x64: strided
convolution, convolutions with and without batch normalisation, shortcut, both max
pools (darknet's stride-1 one pads bottom-right), routes of one and two layers,
upsample, two yolo heads. Shared by the ONNX converter's tests (main venv) and the
Chainer network's (.venv-chainer): it needs numpy and detector_service only.
"""

from __future__ import annotations

from detector_service.models import FromUrl
from detector_service.models import ModelFile
from detector_service.models import ModelFiles
from detector_service.models import ModelSpec
from detector_service.models import sha256_of
from pathlib import Path

import numpy as np


# A batch-normalised convolution, as most of YOLOv3's.
_LEAKY = """\
[convolutional]
batch_normalize=1
filters={filters}
size={size}
stride={stride}
pad=1
activation=leaky
"""

# A linear 1x1 convolution to 3 anchors * (5 + 2 classes) channels and its head.
_HEAD = """\
[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask = {mask}
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=2
num=6
"""

TOY_CFG = f"""\
[net]
width=64
height=64
channels=3

{_LEAKY.format(filters=8, size=3, stride=1)}

[maxpool]
size=2
stride=1

{_LEAKY.format(filters=16, size=3, stride=2)}

{_LEAKY.format(filters=8, size=1, stride=1)}

{_LEAKY.format(filters=16, size=3, stride=1)}

[shortcut]
from=-3
activation=linear

[maxpool]
size=2
stride=2

{_HEAD.format(mask="3,4,5")}
[route]
layers = -4

{_LEAKY.format(filters=8, size=1, stride=1)}

[upsample]
stride=2

[route]
layers = -1, 0

{_HEAD.format(mask="0,1,2")}"""

# (input channels, filters, size, batch_normalize) of TOY_CFG's convolutions.
TOY_CONVOLUTIONS = [
    (3, 8, 3, True),
    (8, 16, 3, True),
    (16, 8, 1, True),
    (8, 16, 3, True),
    (16, 21, 1, False),
    (16, 8, 1, True),
    (16, 21, 1, False),
]


def toy_weights(rng: np.random.Generator) -> bytes:
    """A darknet 0.2 weights file for TOY_CFG: header, then per convolution the
    bias (or beta, gamma, mean, variance) and the kernel."""
    values = []
    for channels, filters, size, batch_normalize in TOY_CONVOLUTIONS:
        values.append(rng.normal(0, 0.1, filters))  # beta, or the bias
        if batch_normalize:
            values.append(rng.uniform(0.5, 1.5, filters))  # gamma
            values.append(rng.normal(0, 0.1, filters))  # mean
            values.append(rng.uniform(0.5, 1.5, filters))  # variance
        values.append(rng.normal(0, 0.3, filters * channels * size * size))
    header = np.array([0, 2, 0], "<i4").tobytes() + np.array([0], "<i8").tobytes()
    return header + np.concatenate(values).astype("<f4").tobytes()


def toy_model(folder: Path, seed: int) -> ModelFiles:
    """TOY_CFG and weights drawn from ``seed``, written to ``folder`` as model "toy"."""
    cfg, weights = folder / "toy.cfg", folder / "toy.weights"
    cfg.write_text(TOY_CFG)
    weights.write_bytes(toy_weights(np.random.default_rng(seed)))
    spec = ModelSpec(
        name="toy",
        format="darknet",
        labels=("a", "b"),
        input_width=64,
        input_height=64,
        files=(
            ModelFile("cfg", "toy.cfg", None, FromUrl("")),
            ModelFile("weights", "toy.weights", None, FromUrl("")),
        ),
        description="every layer type",
    )
    return ModelFiles(
        spec=spec,
        paths={"cfg": cfg, "weights": weights},
        digests={"cfg": sha256_of(cfg), "weights": sha256_of(weights)},
    )
