"""In-process cost of one backend's models on one image, printed as JSON (one
object per model, one per line).

Run by bench.py in each backend's own virtualenv (Chainer lives in .venv-chainer),
so every backend is measured by the same code. Three figures per model:

- ``model``: the network alone on an already letterboxed input tensor;
- ``predict``: ``Backend.predict`` on decoded pixels (letterbox + network +
  decoding + NMS);
- ``pipeline``: what the server does per call, in-process: JPEG bytes -> safe
  (reduced) decoding -> predict -> boxes in the image's pixels.

Several ``--model`` are measured in turn within each round (interleaved), so a
machine whose load changes during the run slows them alike and their ratios hold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from timing import interleaved

import argparse
import json
import platform
import resource
import sys
import time


def subject(backend_name: str, model: str, model_dir: Path, data: bytes) -> dict:
    """One loaded model: its report so far and the calls to time."""
    from detector_service.backends import load_backend
    from detector_service.config import ServerConfig
    from detector_service.decoding import ImageDecoder
    from detector_service.pipeline import DetectionPipeline
    from detector_service.types import DetectOptions
    from detector_service.yolo import letterbox

    started = time.perf_counter()
    backend = load_backend(backend_name, model, model_dir)
    load_ms = (time.perf_counter() - started) * 1000.0
    info = backend.info
    defaults = ServerConfig()
    decoder = ImageDecoder(
        defaults.max_message_bytes,
        defaults.max_pixels,
        (info.input_width, info.input_height),
    )
    pixels = decoder.decode(data).pixels
    pipeline = DetectionPipeline(backend, decoder, defaults.min_score)
    calls: dict[str, Callable[[], object]] = {
        "predict": lambda: backend.predict([pixels]),
        "pipeline": lambda: pipeline(data, DetectOptions()),
    }
    if hasattr(backend, "family"):  # models other than darknet's: their own input
        inputs, _ = backend.family.prepare(pixels)
        feeds = {backend.input_name: inputs[None], **backend.family.extra_inputs(1)}
        calls["model_only"] = lambda: backend.session.run(None, feeds)
    # ChainerCV's own YOLOv3 has no raw-heads entry point; darknet backends do.
    elif hasattr(backend, "raw_outputs"):
        batch = letterbox(pixels, info.input_width, info.input_height)[0][None]
        calls["model_only"] = lambda: backend.raw_outputs(batch)
    result = pipeline(data, DetectOptions())
    report = {
        "backend": backend_name,
        "model": info.name,
        "input_size": [info.input_width, info.input_height],
        "framework": info.framework,
        "python": platform.python_version(),
        "load_ms": load_ms,
        "decoded_size": list(pixels.shape[1::-1]),
        "detections": [
            {"label": d.label, "score": round(d.score, 3)} for d in result.detections
        ],
    }
    return {"report": report, "calls": calls}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--model", action="append", help="repeatable")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    data = args.image.read_bytes()
    subjects = [
        subject(args.backend, model, args.model_dir, data)
        for model in args.model or ["yolov3-tiny"]
    ]
    for kind in ("model_only", "predict", "pipeline"):
        calls = {
            index: entry["calls"][kind]
            for index, entry in enumerate(subjects)
            if kind in entry["calls"]
        }
        for index, figures in interleaved(calls, args.rounds).items():
            subjects[index]["report"][kind] = figures
    # Peak resident memory of this process: its models, runtime and the runs above.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for entry in subjects:
        report = entry["report"]
        report["image"] = args.image.name
        report["peak_rss_mb"] = peak_rss_mb
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
