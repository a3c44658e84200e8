"""`make start`'s launcher end to end: detector and Plone up, samples detected, and
Ctrl-C leaves nothing behind.

Runs scripts/start.py (what `make start` runs once installed) on free ports with its
own instance folder and two sample photos.
"""

from detector_service.client import DetectorClient
from pathlib import Path

import os
import requests
import shutil
import signal
import socket
import subprocess
import sys
import time


ROOT = Path(__file__).resolve().parents[2]
BANNER = "Ctrl-C stops both."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(*words: str) -> list[str]:
    """Command lines of running processes that contain any of ``words``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(word in command for word in words):
            found.append(command)
    return found


def wait_for(check, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def test_start_serves_the_demo_and_ctrl_c_stops_everything(
    tmp_path, samples_dir, model_dir
):
    samples = tmp_path / "samples"
    samples.mkdir()
    for name in ("dog.jpg", "person.jpg"):
        shutil.copy(samples_dir / name, samples / name)
    plone_port, detector_port = free_port(), free_port()
    log = (tmp_path / "start.log").open("w+")
    env = {
        **{k: v for k, v in os.environ.items() if k != "DETECTOR_MODEL"},
        "PLONE_PORT": str(plone_port),
        "DETECTOR_PORT": str(detector_port),
        "PLONE_INSTANCE_DIR": str(tmp_path / "instance"),
        "SAMPLES_DIR": str(samples),
        "DETECTOR_MODEL_DIR": str(model_dir),
        "ADMIN_PASSWORD": "demo-secret",
    }
    start = subprocess.Popen(
        [sys.executable, ROOT / "scripts" / "start.py"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: (
                BANNER in (tmp_path / "start.log").read_text()
                or start.poll() is not None
            ),
            "the start banner",
            timeout=300,
        )
        output = (tmp_path / "start.log").read_text()
        assert start.poll() is None, output[-3000:]
        site = f"http://127.0.0.1:{plone_port}/Plone"
        assert f"Plone:     {site}" in output
        assert "(2 photos uploaded)" in output

        with DetectorClient(f"127.0.0.1:{detector_port}", timeout=5) as client:
            assert client.health() == "SERVING"
            # The default of docs/quality.md, no DETECTOR_MODEL given.
            assert client.model_info().name == "nanodet"
        admin = requests.Session()
        admin.auth = ("admin", "demo-secret")
        admin.headers["Accept"] = "application/json"
        addon = admin.get(f"{site}/@addons/collective.objectdetection").json()
        assert addon["is_installed"] is True

        def both_done():
            counts = admin.get(f"{site}/@detection-status").json()["counts"]
            return counts["done"] == 2

        wait_for(both_done, "both samples detected", timeout=120)
        # Anonymous visitors find the published samples by what is in them.
        found = requests.get(
            f"{site}/@search",
            params={"detected_objects": "dog"},
            headers={"Accept": "application/json"},
        ).json()
        assert found["items_total"] == 2
    finally:
        # What a terminal's Ctrl-C does: SIGINT to the whole process group.
        os.killpg(start.pid, signal.SIGINT)
        code = start.wait(timeout=90)
        log.close()
    assert code == 0, (tmp_path / "start.log").read_text()[-3000:]
    assert not listening(plone_port)
    assert not listening(detector_port)
    # Plone's command line names the instance folder, the detector's its port.
    assert (
        processes_mentioning(str(tmp_path / "instance"), f"--port {detector_port}")
        == []
    )
