"""The client installs alone: Zope gets grpcio and protobuf, never the server's stack.

Checked twice: in the installed metadata (what pip would put in a Plone image) and by
running the client in an interpreter where the server's libraries cannot be imported.
"""

from __future__ import annotations

from importlib import metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import subprocess
import sys
import textwrap


# What only the server, its backends and its CLI need.
SERVER_ONLY = {
    "numpy",
    "pillow",
    "prometheus-client",
    "rich",
    "grpcio-reflection",
    "onnx",
    "onnxruntime",
    "opencv-python-headless",
    "chainer",
    "chainercv",
}


def base_requirements(distribution: str) -> set[str]:
    """Names ``distribution`` requires when installed without extras."""
    names = set()
    for line in metadata.requires(distribution) or ():
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        names.add(canonicalize_name(requirement.name))
    return names


def closure(distribution: str) -> set[str]:
    """Every distribution installing ``distribution`` without extras brings in."""
    seen: set[str] = set()
    todo = [canonicalize_name(distribution)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo.extend(base_requirements(name) - seen)
        except metadata.PackageNotFoundError:
            continue  # an optional platform dependency that is not installed here
    return seen


def test_detector_service_without_extras_is_the_client_alone():
    assert base_requirements("detector-service") == {
        "grpcio",
        "grpcio-health-checking",
        "protobuf",
    }
    assert closure("detector-service") & SERVER_ONLY == set()


def test_server_extra_carries_the_server_stack():
    extras = {
        canonicalize_name(Requirement(line).name)
        for line in metadata.requires("detector-service") or ()
        if Requirement(line).marker
        and Requirement(line).marker.evaluate({"extra": "server"})
    }
    assert {"numpy", "pillow", "prometheus-client", "rich"} <= extras


def test_addon_reaches_the_detector_through_the_client_only():
    reached = closure("collective.objectdetection")
    assert "detector-service" in reached
    ml = {"numpy", "onnx", "onnxruntime", "opencv-python-headless", "chainer"}
    assert reached & ml == set()
    # The console backfill draws its progress with rich: the add-on says so itself.
    assert "rich" in base_requirements("collective.objectdetection")


BLOCKED = (
    "numpy",
    "PIL",
    "prometheus_client",
    "rich",
    "grpc_reflection",
    "onnxruntime",
)

CLIENT_ONLY_SCRIPT = textwrap.dedent(
    f"""
    import importlib.abc, socket, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"blocked: {{name}}", name=name)

    sys.meta_path.insert(0, Block())
    from detector_service.client import DetectorClient
    from detector_service.errors import DetectorUnavailable

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    client = DetectorClient([f"127.0.0.1:{{port}}"], timeout=0.5)
    try:
        client.detect(b"not sent anyway")
    except DetectorUnavailable:
        print("unavailable")
    finally:
        client.close()
    print(sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}))
    """
)


def test_client_runs_without_the_server_libraries():
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_ONLY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["unavailable", "[]"]
