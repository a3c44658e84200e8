"""The benchmarks of docs/benchmarks.md, side by side in one run (``make bench``).

1. In-process inference per backend (onnx, opencv, and chainer when .venv-chainer
   exists), each in its own process through bench/inference.py.
2. A 3000x2000, about 2 MB JPEG: decoding cost (full vs reduced "draft" decoding),
   then end-to-end latency through gRPC (Detect and DetectStream) against the
   in-process pipeline and the model alone.
3. Throughput with 1, 2, 4 and 8 concurrent clients, each on its own channel.

Every loop is bounded; everything runs on 127.0.0.1. Results go to bench/results/.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import UTC
from detector_service.client import DetectorClient
from detector_service.config import ServerConfig
from detector_service.decoding import ImageDecoder
from detector_service.errors import DetectorError
from detector_service.launcher import DetectorProcess
from detector_service.types import DetectOptions
from detector_service.yolo import letterbox
from io import BytesIO
from pathlib import Path
from PIL import Image
from tables import markdown
from timing import summary
from timing import timed

import argparse
import json
import numpy as np
import os
import platform
import statistics
import subprocess
import sys
import time


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIG_SIZE = (3000, 2000)
BIG_BYTES = 2_000_000
CONCURRENCY = (1, 2, 4, 8)
# The catalogue's models that run here without internet, on the onnx backend.
MODELS = ("yolov3-tiny", "nanodet", "centernet")


def machine() -> dict:
    cpu = "unknown"
    flags: set[str] = set()
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    with open("/proc/meminfo") as info:
        memory_kb = int(info.readline().split()[1])
    import cv2
    import onnxruntime

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "simd": sorted(flags & {"avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"}),
        "memory_gb": round(memory_kb / 1e6, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "load_average_before": os.getloadavg(),
    }


def big_jpeg(samples_dir: Path) -> Path:
    """dog.jpg upscaled to 3000x2000 with grain, saved at the quality giving ~2 MB."""
    path = RESULTS / "dog-3000x2000.jpg"
    if path.is_file():
        return path
    with Image.open(samples_dir / "dog.jpg") as photo:
        # The 3:2 band of the 4:3 photo that keeps the dog, bicycle and truck.
        upscaled = photo.convert("RGB").crop((0, 32, 768, 544))
        upscaled = upscaled.resize(BIG_SIZE, Image.Resampling.LANCZOS)
    pixels = np.asarray(upscaled, dtype=np.float32)
    grain = np.random.default_rng(0).normal(0.0, 6.0, pixels.shape)
    noisy = Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8))
    best = b""
    for quality in range(70, 97, 2):
        buffer = BytesIO()
        noisy.save(buffer, "JPEG", quality=quality)
        best = buffer.getvalue()
        if len(best) >= BIG_BYTES:
            break
    path.write_bytes(best)
    return path


def backend_inference(
    python: Path,
    backend: str,
    model_dir: Path,
    image: Path,
    rounds: int,
    models: tuple[str, ...] = ("yolov3-tiny",),
) -> list[dict]:
    """bench/inference.py's report per model (measured interleaved in one process),
    or one entry with the error."""
    command = [
        str(python),
        str(ROOT / "bench" / "inference.py"),
        "--backend",
        backend,
        *(option for model in models for option in ("--model", model)),
        "--model-dir",
        str(model_dir),
        "--image",
        str(image),
        "--rounds",
        str(rounds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        error = done.stderr.strip().splitlines()[-1:]
        return [{"backend": backend, "model": ", ".join(models), "error": error}]
    return [json.loads(line) for line in done.stdout.strip().splitlines()]


def decoding_costs(data: bytes, rounds: int) -> dict:
    defaults = ServerConfig()
    full = ImageDecoder(defaults.max_message_bytes, defaults.max_pixels)
    draft = ImageDecoder(defaults.max_message_bytes, defaults.max_pixels, (416, 416))
    full_pixels = full.decode(data).pixels
    draft_pixels = draft.decode(data).pixels
    return {
        "full_decode": timed(lambda: full.decode(data), rounds),
        "draft_decode": timed(lambda: draft.decode(data), rounds),
        "draft_size": list(draft_pixels.shape[1::-1]),
        "letterbox_from_full": timed(lambda: letterbox(full_pixels, 416, 416), rounds),
        "letterbox_from_draft": timed(
            lambda: letterbox(draft_pixels, 416, 416), rounds
        ),
    }


def end_to_end(address: str, data: bytes, rounds: int) -> dict:
    options = DetectOptions()
    results = {}
    # chunk_bytes decides the RPC: above it the client streams the image.
    for rpc, chunk_bytes in (("Detect", 64 << 20), ("DetectStream", 1 << 20)):
        with DetectorClient(address, timeout=60.0, chunk_bytes=chunk_bytes) as client:
            server_ms: list[float] = []

            def call(client=client, server_ms=server_ms):
                server_ms.append(client.detect(data, options).elapsed_ms)

            results[rpc] = timed(call, rounds)
            results[rpc]["server_median_ms"] = statistics.median(server_ms[2:])
    return results


def throughput(address: str, data: bytes, requests_per_level: int) -> list[dict]:
    levels = []
    for clients in CONCURRENCY:
        per_client = max(2, requests_per_level // clients)
        channels = [
            DetectorClient(address, timeout=60.0, retries=0) for _ in range(clients)
        ]
        for channel in channels:
            channel.detect(data)  # connect and warm up

        def run(channel: DetectorClient, count: int = per_client) -> tuple:
            latencies, errors = [], 0
            for _ in range(count):
                started = time.perf_counter()
                try:
                    channel.detect(data)
                except DetectorError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000.0)
            return latencies, errors

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            outcomes = list(pool.map(run, channels))
        wall = time.perf_counter() - started
        for channel in channels:
            channel.close()
        latencies = [value for outcome in outcomes for value in outcome[0]]
        levels.append(
            {
                "clients": clients,
                "requests": clients * per_client,
                "errors": sum(outcome[1] for outcome in outcomes),
                "images_per_s": len(latencies) / wall,
                "latency": summary(latencies),
            }
        )
    return levels


def measure_backends(
    report: dict,
    model_dir: Path,
    samples_dir: Path,
    big: Path,
    args: argparse.Namespace,
) -> None:
    """yolov3-tiny on every backend, the decoding, gRPC and throughput."""
    data = big.read_bytes()
    pythons = [(ROOT / ".venv" / "bin" / "python", name) for name in ("onnx", "opencv")]
    chainer_python = ROOT / ".venv-chainer" / "bin" / "python"
    if chainer_python.is_file():
        pythons.append((chainer_python, "chainer"))
    report["inference"] = {}
    for photo in (samples_dir / "dog.jpg", big):
        for python, backend in pythons:
            rounds = args.chainer_rounds if backend == "chainer" else args.rounds
            print(f"inference: {backend} on {photo.name}", file=sys.stderr)
            results = backend_inference(python, backend, model_dir, photo, rounds)
            report["inference"].setdefault(photo.name, []).extend(results)

    print("decoding", file=sys.stderr)
    report["decoding"] = decoding_costs(data, args.rounds)

    report["servers"] = []
    for workers in (1, 2):
        print(f"gRPC: onnx server with {workers} worker(s)", file=sys.stderr)
        process = DetectorProcess(
            "onnx", "yolov3-tiny", model_dir, extra_args=["--workers", str(workers)]
        )
        with process:
            entry = {"workers": workers}
            if workers == 1:
                entry["end_to_end"] = end_to_end(process.address, data, args.rounds)
            entry["throughput"] = throughput(process.address, data, args.requests)
            report["servers"].append(entry)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--chainer-rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=48, help="per concurrency")
    parser.add_argument(
        "--models-only",
        action="store_true",
        help="only the models side by side (onnx backend, in-process)",
    )
    args = parser.parse_args()
    model_dir = Path(os.environ.get("DETECTOR_MODEL_DIR") or ROOT / "var" / "models")
    samples_dir = Path(os.environ.get("SAMPLES_DIR") or ROOT / "var" / "samples")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench  (bash bench/run.sh " + " ".join(sys.argv[1:]) + ")",
        "machine": machine(),
    }
    big = big_jpeg(samples_dir)
    data = big.read_bytes()
    report["image"] = {"file": big.name, "bytes": len(data), "size": list(BIG_SIZE)}
    print(f"image: {big} ({len(data) / 1e6:.2f} MB)", file=sys.stderr)

    python = ROOT / ".venv" / "bin" / "python"
    report["models"] = {}
    for photo in (samples_dir / "dog.jpg", big):
        print(f"models: {', '.join(MODELS)} on {photo.name}", file=sys.stderr)
        report["models"][photo.name] = backend_inference(
            python, "onnx", model_dir, photo, args.rounds, MODELS
        )
    if not args.models_only:
        measure_backends(report, model_dir, samples_dir, big, args)

    report["machine"]["load_average_after"] = os.getloadavg()
    out = RESULTS / "results.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"results: {out}", file=sys.stderr)
    text = markdown(report)
    (RESULTS / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
