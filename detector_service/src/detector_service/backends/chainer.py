"""The Chainer/ChainerCV backend: the design card's framework, YOLOv3 as in 2018.

Two kinds of model run here. Darknet's COCO weights (``yolov3-tiny``, ``yolov3``)
run on a Chainer network built from the darknet cfg (:class:`DarknetNetwork`); its
raw ``[yolo]`` heads are decoded by :mod:`detector_service.yolo`, the same code as
every other backend. ChainerCV's own ``YOLOv3`` with its ``voc0712`` weights does its
own pre- and post-processing (:class:`ChainerCVYOLOv3Backend`).

Chainer is imported here only: the package's other modules never need it. It is
installed in its own virtualenv (``make chainer``, see docs/chainer.md).
"""

from __future__ import annotations

from chainercv.links import YOLOv3
from collections.abc import Callable
from collections.abc import Sequence
from detector_service.backends.base import Backend
from detector_service.backends.darknet import DarknetBackend
from detector_service.backends.darknet import model_info
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
from detector_service.models import ModelUnavailable
from detector_service.types import Box
from detector_service.types import Detection
from detector_service.yolo import SCORE_FLOOR
from detector_service.yolo import YoloDecoder

import chainer
import chainer.functions as F
import chainer.links as L
import chainercv
import numpy as np
import zipfile


FRAMEWORK = f"chainer {chainer.__version__} / chainercv {chainercv.__version__}"

# One layer's forward: (its input, every earlier layer's output) -> its output.
Step = Callable[[chainer.Variable, list[chainer.Variable]], chainer.Variable]


class DarknetNetwork(chainer.Chain):
    """A darknet cfg as a Chainer chain, its weights loaded from a ``.weights`` file.

    Batch normalisation is folded into the convolutions (inference only). Calling it
    on a ``(N, 3, H, W)`` float32 batch in [0, 1] gives one raw array per ``[yolo]``
    layer, ``(N, anchors * (5 + classes), rows, cols)``, before any sigmoid.
    """

    def __init__(self, cfg: NetworkConfig, weights: WeightsReader) -> None:
        super().__init__()
        layers = _ChainerLayers(self)
        layers.build(cfg, weights)
        self.steps: list[Step] = layers.outputs
        self.heads: list[int] = layers.heads

    def forward(self, batch: np.ndarray) -> list[np.ndarray]:
        outputs: list[chainer.Variable] = []
        current = chainer.Variable(batch)
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            for step in self.steps:
                current = step(current, outputs)
                outputs.append(current)
        return [outputs[index].array for index in self.heads]


class _ChainerLayers(NetworkBuilder[Step]):
    """Each layer's step, its links registered on the network."""

    def __init__(self, network: chainer.Chain) -> None:
        super().__init__()
        self.network = network
        self.heads: list[int] = []

    def convolutional(self, index, section, channels, weights) -> tuple[Step, int]:
        conv = read_convolution(index, section, channels, weights)
        link = L.Convolution2D(
            channels,
            conv.filters,
            ksize=conv.size,
            stride=conv.stride,
            pad=conv.padding,
            initialW=conv.kernel,
            initial_bias=conv.bias,
        )
        with self.network.init_scope():
            setattr(self.network, f"conv{index}", link)
        if conv.activation == "leaky":
            return (lambda x, _: F.leaky_relu(link(x), slope=LEAKY_SLOPE)), conv.filters
        return (lambda x, _: link(x)), conv.filters

    def maxpool(self, index, section, channels, weights) -> tuple[Step, int]:
        pool = read_max_pool(section)
        spatial = (pool.pad_before, pool.pad_after)
        widths = ((0, 0), (0, 0), spatial, spatial)

        def step(x, _):
            if pool.pad_before or pool.pad_after:
                x = F.pad(x, widths, mode="constant", constant_values=-np.inf)
            return F.max_pooling_2d(x, pool.size, stride=pool.stride, cover_all=False)

        return step, channels

    def route(self, index, section, channels, weights) -> tuple[Step, int]:
        sources = route_sources(index, section)
        out_channels = sum(self.channels[source] for source in sources)
        if len(sources) == 1:
            return (lambda x, outputs: outputs[sources[0]]), out_channels
        return (
            lambda x, outputs: F.concat([outputs[source] for source in sources], axis=1)
        ), out_channels

    def shortcut(self, index, section, channels, weights) -> tuple[Step, int]:
        source = shortcut_source(index, section)
        return (lambda x, outputs: x + outputs[source]), channels

    def upsample(self, index, section, channels, weights) -> tuple[Step, int]:
        stride = section.get_int("stride", 2)
        # Unpooling with window == stride repeats each cell: nearest upsampling.
        return (
            lambda x, _: F.unpooling_2d(x, stride, stride, 0, cover_all=False)
        ), channels

    def yolo(self, index, section, channels, weights) -> tuple[Step, int]:
        self.heads.append(index)
        return (lambda x, _: x), channels


class DarknetChainerBackend(DarknetBackend):
    """Darknet cfg + weights on Chainer, decoded like every raw-YOLO backend."""

    def __init__(self, files: ModelFiles, score_floor: float = SCORE_FLOOR) -> None:
        super().__init__(files, FRAMEWORK, score_floor)
        self.network = DarknetNetwork(read_cfg(files.cfg), WeightsReader(files.weights))

    def raw_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.network(batch)


class ChainerCVYOLOv3Backend:
    """ChainerCV's ``YOLOv3`` link with weights saved by ChainerCV (``voc0712``).

    The weights are a file ``models.locate`` found (the model folder or ChainerCV's
    own cache) and are loaded here, strictly: ChainerCV's ``pretrained_model`` would
    download when they are missing (leaving lock files behind) and skips arrays
    missing from the file. So a machine without them fails at ``locate``, with the
    fix, and a file of another model fails here.
    """

    def __init__(self, files: ModelFiles, score_floor: float = SCORE_FLOOR) -> None:
        spec = files.spec
        self.model = YOLOv3(n_fg_class=len(spec.labels))
        try:
            chainer.serializers.load_npz(str(files.weights), self.model)
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
            raise ModelUnavailable(
                f"model {spec.name}: {files.weights} is not ChainerCV YOLOv3 weights "
                f"for {len(spec.labels)} classes ({error!r}); replace it: "
                f"`detector-service fetch-model {spec.name}`"
            ) from error
        self.model.nms_thresh = YoloDecoder.iou_threshold
        self.model.score_thresh = score_floor
        self.labels = spec.labels
        self.info = model_info(files, FRAMEWORK)

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        if not images:
            return []
        chw = [
            np.asarray(image, dtype=np.float32).transpose(2, 0, 1) for image in images
        ]
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            bboxes, labels, scores = self.model.predict(chw)
        return [
            _chainercv_detections(bbox, label, score, self.labels, image.shape[:2])
            for bbox, label, score, image in zip(
                bboxes, labels, scores, images, strict=True
            )
        ]


def _chainercv_detections(
    bbox: np.ndarray,
    label: np.ndarray,
    score: np.ndarray,
    names: Sequence[str],
    shape: tuple[int, int],
) -> list[Detection]:
    """ChainerCV's ``(y_min, x_min, y_max, x_max)`` boxes as detections, best first,
    clipped to the ``(rows, cols)`` image like the darknet path's boxes."""
    rows, cols = shape
    boxes = np.asarray(bbox, dtype=np.float64).reshape(-1, 4)[:, [1, 0, 3, 2]]
    np.clip(boxes[:, 0::2], 0.0, cols, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0.0, rows, out=boxes[:, 1::2])
    order = np.argsort(-np.asarray(score), kind="stable")
    return [
        Detection(
            label=names[int(label[index])],
            score=float(score[index]),
            box=Box(*(float(value) for value in boxes[index])),
        )
        for index in order
    ]


_BACKENDS = {"darknet": DarknetChainerBackend, "chainercv": ChainerCVYOLOv3Backend}


def load(files: ModelFiles, score_floor: float = SCORE_FLOOR) -> Backend:
    """The model on Chainer: darknet models on :class:`DarknetNetwork`, ChainerCV
    models on ChainerCV's own link."""
    return _BACKENDS[files.spec.format](files, score_floor=score_floor)
