"""The default backend: ONNX Runtime running a model converted to ONNX by the
project's own converters (darknet, TF.js) or an operator's own ONNX export.

Chosen for speed on CPU (see docs/benchmarks.md): fp32 with every graph
optimisation and a fixed number of intra-op threads; one batch per ``predict``.
Darknet models decode their YOLO heads as every darknet runtime does
(:class:`DarknetBackend`); the others through their family
(:mod:`detector_service.families`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from detector_service.backends.base import Backend
from detector_service.backends.darknet import DarknetBackend
from detector_service.backends.darknet import model_info
from detector_service.darknet import onnx_export as darknet_export
from detector_service.darknet.onnx_export import INPUT_NAME
from detector_service.families import FamilyMismatch
from detector_service.families import get_family
from detector_service.models import ModelFiles
from detector_service.models import ModelUnavailable
from detector_service.tfjs import onnx_export as tfjs_export
from detector_service.types import Detection
from detector_service.yolo import Letterbox
from detector_service.yolo import SCORE_FLOOR
from pathlib import Path

import numpy as np
import onnxruntime


FRAMEWORK = f"onnxruntime {onnxruntime.__version__}"
# Input size for an operator's model whose input size is dynamic: what YOLOv5/8,
# YOLOX and RT-DETR are trained at.
DEFAULT_SIZE = 640


# What ONNX Runtime raises for a file it cannot load (plain Exception subclasses).
_ORT_LOAD_ERRORS = (
    onnxruntime.capi.onnxruntime_pybind11_state.Fail,
    onnxruntime.capi.onnxruntime_pybind11_state.InvalidProtobuf,
    onnxruntime.capi.onnxruntime_pybind11_state.InvalidGraph,
    onnxruntime.capi.onnxruntime_pybind11_state.NoSuchFile,
)


def session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )


class OnnxBackend(DarknetBackend):
    """A darknet model converted to ONNX."""

    def __init__(
        self, files: ModelFiles, threads: int = 2, score_floor: float = SCORE_FLOOR
    ) -> None:
        super().__init__(files, FRAMEWORK, score_floor)
        self.session = session(darknet_export.converted_model(files), threads)

    def raw_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {INPUT_NAME: batch})


def _input_size(shape: Sequence[int | str | None]) -> dict[str, int]:
    """Width and height of an NCHW or NHWC image input; DEFAULT_SIZE where the
    model leaves them free."""
    dims = shape[2:4] if shape[1] == 3 else shape[1:3]
    height, width = (dim if isinstance(dim, int) else DEFAULT_SIZE for dim in dims)
    return {"input_width": width, "input_height": height}


class FamilyBackend:
    """An ONNX model whose family prepares its input and decodes its outputs."""

    def __init__(
        self,
        files: ModelFiles,
        onnx_path: Path,
        threads: int = 2,
        score_floor: float = SCORE_FLOOR,
    ) -> None:
        spec = files.spec
        try:
            self.session = session(onnx_path, threads)
        except _ORT_LOAD_ERRORS as error:
            raise ModelUnavailable(
                f"model {spec.name}: ONNX Runtime cannot load {onnx_path} ({error})"
            ) from error
        images = [i for i in self.session.get_inputs() if len(i.shape) == 4]
        if len(images) != 1:
            raise ModelUnavailable(
                f"model {spec.name}: expected one image input (rank 4), the model "
                f"has {[(i.name, i.shape) for i in self.session.get_inputs()]}"
            )
        self.input_name = images[0].name
        self.other_inputs = [
            i.name for i in self.session.get_inputs() if i.name != self.input_name
        ]
        if not spec.input_width:  # an operator's own model: its input says
            spec = replace(spec, **_input_size(images[0].shape))
            files = replace(files, spec=spec)
        self.family = get_family(spec.family)(
            spec.labels, spec.input_width, spec.input_height, score_floor
        )
        self.info = model_info(files, FRAMEWORK)
        unknown = set(self.other_inputs) - set(self.family.extra_inputs(1))
        if unknown:
            raise FamilyMismatch(
                f"model {spec.name} has inputs {sorted(unknown)} that a "
                f"{spec.family} model does not take: is the family right?"
            )
        # One run on a blank image checks the outputs against the family and the
        # labels now, rather than on the first upload.
        blank = np.zeros((spec.input_height, spec.input_width, 3), np.uint8)
        self.family.check(self.run([blank])[0])

    def run(
        self, images: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], list[Letterbox]]:
        """The network's outputs for ``images``, and where each went in its input."""
        prepared = [self.family.prepare(image) for image in images]
        batch = np.stack([inputs for inputs, _ in prepared]).astype(np.float32)
        extra = self.family.extra_inputs(len(images))
        feeds = {name: extra[name] for name in self.other_inputs}
        feeds[self.input_name] = batch
        return self.session.run(None, feeds), [where for _, where in prepared]

    def predict(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        if not images:
            return []
        outputs, placements = self.run(images)
        return [
            self.family.detections([output[index] for output in outputs], placement)
            for index, placement in enumerate(placements)
        ]


def load(
    files: ModelFiles, threads: int = 2, score_floor: float = SCORE_FLOOR
) -> Backend:
    spec = files.spec
    if spec.format == "darknet":
        return OnnxBackend(files, threads=threads, score_floor=score_floor)
    if spec.format == "tfjs":
        path = tfjs_export.converted_model(files)
    elif spec.format == "onnx":
        path = files.weights
    else:
        raise ModelUnavailable(
            f"the onnx backend does not run {spec.format} models ({spec.name}); "
            "use the chainer backend"
        )
    return FamilyBackend(files, path, threads=threads, score_floor=score_floor)
