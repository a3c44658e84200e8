"""The committed generated code is exactly what protos/ generates."""

from __future__ import annotations

from detector_service import protogen
from pathlib import Path

import shutil


def test_committed_code_matches_the_protos():
    stale = protogen.differences()
    assert stale == [], f"stale generated code {stale}: run `make protos`"


def test_drift_is_detected(tmp_path: Path):
    protos = tmp_path / "protos"
    shutil.copytree(protogen.PROTOS_DIR, protos)
    legacy = protos / "legacy" / "mlserver.proto"
    legacy.write_text(legacy.read_text() + "\nmessage Extra { string note = 1; }\n")
    assert protogen.differences(protos) == [
        "legacy/mlserver_pb2.py",
        "legacy/mlserver_pb2.pyi",
    ]


def test_generated_imports_are_package_absolute():
    grpc_code = (
        protogen.PACKAGE_DIR / "proto" / "detection" / "v1" / "detector_pb2_grpc.py"
    ).read_text()
    assert "from detector_service.proto.detection.v1 import detector_pb2" in grpc_code
