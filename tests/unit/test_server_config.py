"""ServerConfig from command-line arguments and DETECTOR_* variables."""

from __future__ import annotations

from detector_service.config import add_arguments
from detector_service.config import from_arguments
from detector_service.config import ServerConfig
from pathlib import Path

import argparse
import pytest


def parse(args: list[str], environ: dict[str, str]) -> ServerConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser, environ)
    return from_arguments(parser.parse_args(args))


def test_defaults_listen_on_loopback_with_the_default_model():
    config = parse([], {})
    assert config.address == "127.0.0.1:50051"
    # NanoDet: the best of `make eval` within 1.5x YOLOv3-tiny's latency.
    assert (config.backend, config.model) == ("onnx", "nanodet")
    assert parse([], {"DETECTOR_MODEL": "yolov3-tiny"}).model == "yolov3-tiny"
    assert not config.tls and not config.token


def test_call_limit_and_drain_come_from_the_environment():
    assert (ServerConfig().max_call_seconds, ServerConfig().drain) == (60.0, 2.0)
    environ = {"DETECTOR_MAX_CALL_SECONDS": "15", "DETECTOR_DRAIN": "0.5"}
    config = parse([], environ)
    assert (config.max_call_seconds, config.drain) == (15.0, 0.5)


def test_environment_sets_defaults_and_arguments_win():
    environ = {
        "DETECTOR_PORT": "6000",
        "DETECTOR_MODEL_DIR": "/srv/models",
        "DETECTOR_MIN_SCORE": "0.4",
        "DETECTOR_TOKEN": "t",
        "DETECTOR_WORKERS": "",
    }
    config = parse(["--port", "7000", "--workers", "3"], environ)
    assert config.port == 7000
    assert config.model_dir == Path("/srv/models")
    assert config.min_score == 0.4
    assert config.token == "t"
    assert config.workers == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "workers"),
        (["--min-score", "2"], "min_score"),
        (["--tls-cert", "c.pem"], "both a certificate and a key"),
        (["--max-call-seconds", "0"], "max_call_seconds"),
        (["--drain", "-1"], "drain"),
    ],
)
def test_inconsistent_settings_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        parse(args, {})
