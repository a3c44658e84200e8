"""Fixtures shared by every level of tests: sample photos, weights, a real detector.

Nothing is skipped silently: a missing photo or missing weights fail the test with
the command that puts them in place.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from detector_service.launcher import DetectorProcess
from detector_service.launcher import DetectorStartError
from pathlib import Path

import os
import pytest


REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The sample photos (darknet's dog.jpg, person.jpg, ...; scikit-image's)."""
    path = Path(os.environ.get("SAMPLES_DIR") or REPO_ROOT / "var" / "samples")
    if not (path / "dog.jpg").is_file() or not (path / "person.jpg").is_file():
        pytest.fail(f"sample photos missing in {path}: run `make samples`")
    return path


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Where the model weights are (``$DETECTOR_MODEL_DIR``)."""
    path = Path(os.environ.get("DETECTOR_MODEL_DIR") or REPO_ROOT / "var" / "models")
    if not path.is_dir() or not any(path.iterdir()):
        pytest.fail(f"no model weights in {path}: run `make models`")
    return path


def _start(model_dir: Path, **kwargs) -> DetectorProcess:
    process = DetectorProcess("onnx", "yolov3-tiny", model_dir, **kwargs)
    try:
        return process.start()
    except DetectorStartError as exc:
        pytest.fail(f"{exc}\n(weights missing or corrupt? run `make models`)")


@pytest.fixture(scope="session")
def detector(model_dir: Path) -> Iterator[DetectorProcess]:
    """A real ``onnx`` server process on 127.0.0.1, shared by the whole session."""
    process = _start(model_dir)
    yield process
    process.stop()


@pytest.fixture
def start_detector(model_dir: Path) -> Iterator[Callable[..., DetectorProcess]]:
    """Starts real ``onnx`` servers (``DetectorProcess`` options); stops them after."""
    started: list[DetectorProcess] = []

    def start(**kwargs) -> DetectorProcess:
        started.append(_start(model_dir, **kwargs))
        return started[-1]

    yield start
    for process in started:
        process.stop()
