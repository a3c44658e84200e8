"""Model backends: one module per runtime, each with ``load(files, **options)``.

A backend module is imported only when asked for, so the core service does not need
every runtime installed; a missing runtime is a clear error saying how to install it.
"""

from __future__ import annotations

from detector_service.backends.base import Backend
from detector_service.models import locate
from detector_service.models import ModelUnavailable
from detector_service.models import own_model
from pathlib import Path

import importlib


# backend name -> (module, how to install its runtime)
BACKENDS: dict[str, tuple[str, str]] = {
    "onnx": ("detector_service.backends.onnx", "pip install 'detector-service[onnx]'"),
    "opencv": (
        "detector_service.backends.opencv",
        "pip install 'detector-service[opencv]'",
    ),
    # The chainer extra alone fails on Python 3.11: chainercv needs the project's
    # own build, in its own virtualenv.
    "chainer": (
        "detector_service.backends.chainer",
        "run `make chainer` (see docs/chainer.md)",
    ),
}


class BackendUnavailable(ModelUnavailable):
    """The backend is unknown or its runtime is not installed."""


def load_backend(
    backend: str,
    model: str,
    model_dir: Path,
    *,
    model_file: Path | None = None,
    model_family: str = "",
    labels_file: Path | None = None,
    **options: object,
) -> Backend:
    """The named backend with the model loaded, ready to ``predict``: the
    catalogue's ``model`` from ``model_dir``, or an operator's own ONNX export
    (``model_file`` of ``model_family``, class names in ``labels_file``)."""
    if backend not in BACKENDS:
        raise BackendUnavailable(
            f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}"
        )
    module_name, install = BACKENDS[backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendUnavailable(
            f"the {backend} backend needs {error.name or 'a missing module'}: {install}"
        ) from error
    if model_file is None:
        files = locate(model, Path(model_dir))
    elif not model_family or labels_file is None:
        raise ModelUnavailable(
            "a model file needs its family (--model-family, e.g. yolox, yolov5, "
            "yolov8, rtdetr) and its labels file (--labels-file)"
        )
    else:
        files = own_model(Path(model_file), model_family, Path(labels_file))
    return module.load(files, **options)
