"""In-process cost of one backend on one image, printed as JSON.

Run by bench.py in each backend's own virtualenv (Chainer lives in .venv-chainer),
so every backend is measured by the same code. Three figures per backend:

- ``model``: the network alone on an already letterboxed input tensor;
- ``predict``: ``Backend.predict`` on decoded pixels (letterbox + network +
  decoding + NMS);
- ``pipeline``: what the server does per call, in-process: JPEG bytes -> safe
  (reduced) decoding -> predict -> boxes in the image's pixels.
"""

from __future__ import annotations

from pathlib import Path
from timing import timed

import argparse
import json
import platform
import resource
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", required=True)
    parser.add_argument("--model", default="yolov3-tiny")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    from detector_service.backends import load_backend
    from detector_service.config import ServerConfig
    from detector_service.decoding import ImageDecoder
    from detector_service.pipeline import DetectionPipeline
    from detector_service.types import DetectOptions
    from detector_service.yolo import letterbox

    started = time.perf_counter()
    backend = load_backend(args.backend, args.model, args.model_dir)
    load_ms = (time.perf_counter() - started) * 1000.0
    info = backend.info
    defaults = ServerConfig()
    decoder = ImageDecoder(
        defaults.max_message_bytes,
        defaults.max_pixels,
        (info.input_width, info.input_height),
    )
    data = args.image.read_bytes()
    pixels = decoder.decode(data).pixels
    tensor, _ = letterbox(pixels, info.input_width, info.input_height)
    batch = tensor[None]
    pipeline = DetectionPipeline(backend, decoder, defaults.min_score)

    report = {
        "backend": args.backend,
        "model": info.name,
        "input_size": [info.input_width, info.input_height],
        "framework": info.framework,
        "python": platform.python_version(),
        "load_ms": load_ms,
        "image": args.image.name,
        "decoded_size": list(pixels.shape[1::-1]),
    }
    if hasattr(backend, "family"):  # models other than darknet's: their own input
        inputs, _ = backend.family.prepare(pixels)
        feeds = {backend.input_name: inputs[None], **backend.family.extra_inputs(1)}
        report["model_only"] = timed(
            lambda: backend.session.run(None, feeds), args.rounds
        )
    # ChainerCV's own YOLOv3 has no raw-heads entry point; darknet backends do.
    elif hasattr(backend, "raw_outputs"):
        report["model_only"] = timed(lambda: backend.raw_outputs(batch), args.rounds)
    report["predict"] = timed(lambda: backend.predict([pixels]), args.rounds)
    report["pipeline"] = timed(lambda: pipeline(data, DetectOptions()), args.rounds)
    result = pipeline(data, DetectOptions())
    report["detections"] = [
        {"label": d.label, "score": round(d.score, 3)} for d in result.detections
    ]
    # Peak resident memory of this process: model, runtime and the runs above.
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
