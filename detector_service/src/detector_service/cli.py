"""The ``detector-service`` command: serve, detect, fetch-model, info."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from detector_service.errors import DetectorError
from detector_service.types import DetectionResult
from detector_service.types import DetectOptions
from detector_service.types import ModelInfo
from pathlib import Path
from typing import TYPE_CHECKING

import argparse
import json
import os
import sys


if TYPE_CHECKING:
    from detector_service.backends.base import Backend


try:
    from detector_service import config as server_config
    from detector_service.models import DEFAULT_MODEL
    from detector_service.models import model_dir_from_env
    from detector_service.models import ModelFiles
except ModuleNotFoundError as exc:  # the client alone was installed
    raise SystemExit(
        f"detector-service: {exc.name} is missing; the command needs the server's "
        "dependencies: pip install 'detector-service[server]'"
    ) from exc

DEFAULT_ADDRESS = "127.0.0.1:50051"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DetectorError as exc:  # e.g. weights missing: the message names the fix
        print(f"detector-service {args.command}: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detector-service", description="A gRPC object-detection service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    server_config.add_arguments(serve)
    serve.set_defaults(run=run_serve)

    detect = commands.add_parser(
        "detect", help="detect objects in image files (JSON out)"
    )
    detect.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _add_target_arguments(detect)
    detect.add_argument(
        "--min-score", type=float, default=0.0, help="default: the server's"
    )
    detect.add_argument("--max-detections", type=int, default=0)
    detect.add_argument(
        "--label",
        action="append",
        default=[],
        dest="labels",
        help="only this label (repeatable)",
    )
    detect.add_argument(
        "--draw",
        type=Path,
        metavar="OUT",
        help="write the image with its boxes drawn to OUT (a folder for several files)",
    )
    detect.set_defaults(run=run_detect)

    fetch = commands.add_parser(
        "fetch-model",
        help="put a model's verified weights (and its ONNX conversion) in place",
    )
    fetch.add_argument("names", nargs="*", default=[DEFAULT_MODEL], metavar="NAME")
    fetch.add_argument("--model-dir", type=Path, default=model_dir_from_env())
    fetch.set_defaults(run=run_fetch_model)

    info = commands.add_parser("info", help="describe the model (JSON out)")
    _add_target_arguments(info)
    info.set_defaults(run=run_info)
    return parser


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    remote = parser.add_argument_group("against a running server")
    remote.add_argument(
        "--address",
        default=os.environ.get("DETECTOR_ADDRESS", DEFAULT_ADDRESS),
        help="host:port, several comma-separated, or a gRPC target",
    )
    remote.add_argument("--timeout", type=float, default=30.0)
    remote.add_argument("--token", default=os.environ.get("DETECTOR_TOKEN", ""))
    remote.add_argument(
        "--root-cert", type=Path, help="CA certificate to verify TLS with"
    )
    remote.add_argument(
        "--server-name",
        help="host name the servers' TLS certificate carries "
        "(default: the address's host; the first one's for several IP addresses)",
    )
    local = parser.add_argument_group("in this process (--local)")
    local.add_argument(
        "--local", action="store_true", help="load the model here; no server"
    )
    local.add_argument("--backend", default=os.environ.get("DETECTOR_BACKEND", "onnx"))
    local.add_argument(
        "--model", default=os.environ.get("DETECTOR_MODEL") or DEFAULT_MODEL
    )
    local.add_argument("--model-dir", type=Path, default=model_dir_from_env())
    local.add_argument(
        "--model-file",
        type=Path,
        default=os.environ.get("DETECTOR_MODEL_FILE") or None,
        help="your own ONNX export instead of --model",
    )
    local.add_argument(
        "--model-family", default=os.environ.get("DETECTOR_MODEL_FAMILY", "")
    )
    local.add_argument(
        "--labels-file",
        type=Path,
        default=os.environ.get("DETECTOR_LABELS_FILE") or None,
    )


def load_model(settings: argparse.Namespace | server_config.ServerConfig) -> Backend:
    """The backend and model that ``serve``'s settings or ``--local``'s options
    name (the same attribute names)."""
    from detector_service.backends import load_backend

    return load_backend(
        settings.backend,
        settings.model,
        settings.model_dir,
        model_file=settings.model_file,
        model_family=settings.model_family,
        labels_file=settings.labels_file,
    )


def run_serve(args: argparse.Namespace) -> int:
    from detector_service import logs
    from detector_service.server import serve

    logs.configure()
    try:
        config = server_config.from_arguments(args)
    except ValueError as exc:
        print(f"detector-service serve: {exc}", file=sys.stderr)
        return 2
    return serve(config, lambda: load_model(config))


def run_detect(args: argparse.Namespace) -> int:
    options = DetectOptions(args.min_score, args.max_detections, tuple(args.labels))
    detect, _ = _connect(args)
    out, failed = [], False
    for path in args.files:
        try:
            result = detect(path.read_bytes(), options)
        except (OSError, DetectorError) as exc:
            out.append({"file": str(path), "error": str(exc)})
            failed = True
            continue
        out.append({"file": str(path), **result_to_json(result)})
        if args.draw:
            target = args.draw / path.name if len(args.files) > 1 else args.draw
            draw_boxes(path, result, target)
    json.dump(out, sys.stdout, indent=2)
    print()
    return 1 if failed else 0


def run_info(args: argparse.Namespace) -> int:
    _, info = _connect(args)
    try:
        json.dump(asdict(info()), sys.stdout, indent=2)
    except DetectorError as exc:
        print(f"detector-service info: {exc}", file=sys.stderr)
        return 1
    print()
    return 0


def run_fetch_model(args: argparse.Namespace) -> int:
    from detector_service.models import fetch_all
    from detector_service.models import locate
    from rich.console import Console

    console = Console(stderr=True)
    paths = fetch_all(args.names, args.model_dir, console)
    for name in args.names:
        files = locate(name, args.model_dir)
        if files.spec.format not in CONVERTED_FORMATS:
            continue
        try:
            converted_model = CONVERTED_FORMATS[files.spec.format]()
        except ImportError:
            console.print("no ONNX conversion: the onnx extra is not installed")
            continue
        # The onnx backend's file: (re)built here unless it matches its checksum.
        onnx_path = converted_model(files)
        console.print(
            f"[green]✓[/] {files.name}: ONNX conversion in place and verified "
            f"({onnx_path})"
        )
    print("\n".join(str(path) for path in paths))
    return 0


def _darknet_converter() -> Callable[[ModelFiles], Path]:
    from detector_service.darknet.onnx_export import converted_model

    return converted_model


def _tfjs_converter() -> Callable[[ModelFiles], Path]:
    from detector_service.tfjs.onnx_export import converted_model

    return converted_model


# Model formats the onnx backend runs converted, and their converters (imported
# only when used: they need the onnx extra).
CONVERTED_FORMATS = {"darknet": _darknet_converter, "tfjs": _tfjs_converter}


def _connect(
    args: argparse.Namespace,
) -> tuple[Callable[[bytes, DetectOptions], DetectionResult], Callable[[], ModelInfo]]:
    """``detect`` and ``info`` through a server, or on a model loaded here."""
    if args.local:
        from detector_service.decoding import ImageDecoder
        from detector_service.pipeline import DetectionPipeline

        defaults = server_config.ServerConfig()
        backend = load_model(args)
        decoder = ImageDecoder(
            defaults.max_message_bytes,
            defaults.max_pixels,
            (backend.info.input_width, backend.info.input_height),
        )
        pipeline = DetectionPipeline(backend, decoder, defaults.min_score)

        def detect_here(data: bytes, options: DetectOptions) -> DetectionResult:
            return pipeline(data, options)

        return detect_here, lambda: backend.info

    from detector_service.client import DetectorClient

    client = DetectorClient(
        args.address,
        timeout=args.timeout,
        token=args.token or None,
        root_certificates=args.root_cert,
        server_name=args.server_name,
    )
    return (lambda data, options: client.detect(data, options)), client.model_info


def result_to_json(result: DetectionResult) -> dict:
    return {
        "image_width": result.image_width,
        "image_height": result.image_height,
        "model": {"name": result.model.name, "version": result.model.version},
        "elapsed_ms": round(result.elapsed_ms, 2),
        "detections": [
            {
                "label": d.label,
                "score": round(d.score, 4),
                "box": {k: round(v, 1) for k, v in asdict(d.box).items()},
            }
            for d in result.detections
        ],
    }


def draw_boxes(source: Path, result: DetectionResult, target: Path) -> None:
    """Write ``source`` (EXIF-oriented, as the boxes are) with labelled boxes."""
    from PIL import Image
    from PIL import ImageDraw
    from PIL import ImageOps

    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))
    for d in result.detections:
        box = (d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max)
        draw.rectangle(box, outline=(255, 0, 0), width=width)
        caption = f"{d.label} {d.score:.2f}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), caption)
        draw.rectangle((left, top, right + 4, bottom + 2), fill=(255, 0, 0))
        draw.text((box[0] + 2, box[1]), caption, fill=(255, 255, 255))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target)
