"""The 2018 demo's client, written from protos/legacy/mlserver.proto alone.

Its Python code is generated here, into a temporary folder, and it runs as its own
program (as the demo's web app did): it streams the image file in 1 MiB chunks to
``/MLServer/predict`` and reads parallel lists of boxes, classes and confidences.
"""

from __future__ import annotations

from detector_service.protogen import PROTOS_DIR
from grpc_tools import protoc
from io import BytesIO
from pathlib import Path
from PIL import Image

import json
import subprocess
import sys


CLIENT = """
import json
import sys

import grpc

import mlserver_pb2
import mlserver_pb2_grpc

CHUNK_SIZE = 1024 * 1024


def chunks(path):
    with open(path, "rb") as f:
        while True:
            buffer = f.read(CHUNK_SIZE)
            if not buffer:
                return
            yield mlserver_pb2.Chunk(buffer=buffer)


address, path = sys.argv[1:]
with grpc.insecure_channel(address) as channel:
    # No timeout, exactly as the 2018 client called it.
    reply = mlserver_pb2_grpc.MLServerStub(channel).predict(chunks(path))
print(json.dumps({
    "boxes": [list(b.box) for b in reply.boxes],
    "classes": list(reply.classes),
    "confs": list(reply.confs),
}))
"""


def generate_client(folder: Path) -> Path:
    legacy = PROTOS_DIR / "legacy"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{legacy}",
            f"--python_out={folder}",
            f"--grpc_python_out={folder}",
            str(legacy / "mlserver.proto"),
        ]
    )
    assert status == 0
    script = folder / "client_2018.py"
    script.write_text(CLIENT)
    return script


def ask(script: Path, address: str, photo: Path) -> dict:
    """The 2018 client's reply for ``photo``: boxes, classes, confs."""
    run = subprocess.run(
        [sys.executable, str(script), address, str(photo)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_2018_client_streams_a_big_photo_and_finds_the_dog(
    detector, samples_dir, tmp_path
):
    script = generate_client(tmp_path)
    photo = tmp_path / "dog-3000x2250.jpg"
    with Image.open(samples_dir / "dog.jpg") as image:
        out = BytesIO()
        image.resize((3000, 2250)).save(out, "JPEG", quality=95)
    photo.write_bytes(out.getvalue())
    assert photo.stat().st_size > 1024 * 1024  # several chunks
    reply = ask(script, detector.address, photo)
    assert {"dog", "bicycle"} <= set(reply["classes"])
    assert len(reply["boxes"]) == len(reply["classes"]) == len(reply["confs"])
    # [y_min, x_min, y_max, x_max] in the pixels of the 3000x2250 upload: the dog
    # is in the lower left.
    y_min, x_min, y_max, x_max = reply["boxes"][reply["classes"].index("dog")]
    assert 0 <= x_min < x_max <= 3000 / 2 + 300
    assert 2250 / 3 < y_max <= 2250
    assert y_min < y_max
