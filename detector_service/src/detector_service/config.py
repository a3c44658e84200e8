"""The server's settings: one dataclass, filled from command-line arguments.

Every option has an environment variable ``DETECTOR_<NAME>`` as its default, so a
container or a process manager can configure the server without arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from detector_service.models import DEFAULT_MODEL
from detector_service.models import DEFAULT_MODEL_DIR
from pathlib import Path

import argparse
import os


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    backend: str = "onnx"
    model: str = DEFAULT_MODEL
    model_dir: Path = DEFAULT_MODEL_DIR
    # An operator's own ONNX export instead of a catalogue model: the file, its
    # family (detector_service.families) and its labels, one per line.
    model_file: Path | None = None
    model_family: str = ""
    labels_file: Path | None = None
    # Inference threads; each runs one image at a time through the backend.
    workers: int = 1
    # Calls waiting for a worker; beyond this the server answers RESOURCE_EXHAUSTED.
    queue_size: int = 8
    # Largest encoded image accepted (also bounds each gRPC message).
    max_message_bytes: int = 32 * 1024 * 1024
    # Largest image accepted in pixels (width x height), checked before decoding.
    max_pixels: int = 50_000_000
    # Detections below this score are dropped unless the caller asks for another.
    min_score: float = 0.25
    token: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Prometheus metrics on 127.0.0.1:PORT; 0 turns them off.
    metrics_port: int = 0
    # Longest a call may take, upload included, when the caller sets no shorter
    # deadline: idle or trickling streams cannot hold the server for ever.
    max_call_seconds: float = 60.0
    # Seconds between SIGTERM and stopping the listener: health answers NOT_SERVING
    # and new calls are refused, so probes and balancers see the server leave.
    drain: float = 2.0
    # Seconds that calls in flight get to finish after the drain.
    grace: float = 10.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.queue_size < 0:
            raise ValueError("queue_size must not be negative")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_score must be between 0 and 1")
        if self.max_call_seconds <= 0:
            raise ValueError("max_call_seconds must be positive")
        if self.drain < 0 or self.grace < 0:
            raise ValueError("drain and grace must not be negative")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both a certificate and a key file")
        if self.model_file and not (self.model_family and self.labels_file):
            raise ValueError(
                "a model file needs --model-family (yolox, yolov5, yolov8, rtdetr, "
                "nanodet, centernet) and --labels-file"
            )
        if not self.model_file and (self.model_family or self.labels_file):
            raise ValueError("--model-family and --labels-file need --model-file")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def env_name(option: str) -> str:
    return "DETECTOR_" + option.upper()


def add_arguments(
    parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None
) -> None:
    """Add one ``--option`` per field; ``DETECTOR_OPTION`` sets its default."""
    environ = os.environ if environ is None else environ
    defaults = ServerConfig()
    for spec in fields(ServerConfig):
        default = getattr(defaults, spec.name)
        convert = _converter(spec.name, default)
        env = env_name(spec.name)
        if env in environ and environ[env] != "":
            default = convert(environ[env])
        parser.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            type=convert,
            default=default,
            help=f"(env {env}; default: {default if spec.name != 'token' else '-'})",
        )


def from_arguments(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        **{spec.name: getattr(args, spec.name) for spec in fields(ServerConfig)}
    )


def _converter(name: str, default: object):
    if name in {"model_dir", "tls_cert", "tls_key", "model_file", "labels_file"}:
        return Path
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str
