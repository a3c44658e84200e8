"""A real Plone instance as `make start` runs it (our zope.conf: FileStorage with its
blob directory, waitress with 4 threads, the worker thread), and a detector process
that can be stopped, killed and started again at the same address."""

from __future__ import annotations

from detector_service.launcher import DetectorProcess
from instance import load_start
from pathlib import Path
from plone_rest import free_port
from plone_rest import wait_for

import os
import re
import requests
import signal
import subprocess
import sys
import time


ADMIN = ("admin", "reliability-secret")
SITE_ID = "Plone"


class Detector:
    """``detector-service serve`` (onnx, yolov3-tiny) on a fixed free port, with its
    Prometheus metrics (Detect calls answered OK count the detector's work)."""

    def __init__(self, model_dir: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.model_dir = model_dir
        self.process: DetectorProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Detector:
        self.process = DetectorProcess(
            "onnx",
            "yolov3-tiny",
            self.model_dir,
            extra_args=[
                "--port",
                str(self.port),
                "--metrics-port",
                str(self.metrics_port),
            ],
        ).start()
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no draining, calls in flight are cut."""
        if self.process is not None:
            self.process.process.send_signal(signal.SIGKILL)
            self.process.process.wait(30)
            self.process = None

    def detect_calls(self) -> int:
        """Detect calls this process answered OK (0 after a restart)."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}", timeout=5).text
        return int(
            sum(
                float(value)
                for labels, value in re.findall(
                    r"^detector_requests_total\{([^}]*)\} (\S+)$", text, re.M
                )
                if 'method="Detect"' in labels and 'code="OK"' in labels
            )
        )


class LiveSite:
    """The instance in ``folder``: created once by start.py's own steps, then
    started and stopped (or killed) at will."""

    def __init__(self, folder: Path, detector: Detector) -> None:
        self.folder = folder
        self.port = free_port()
        self.start_script = load_start(folder, self.port)
        self.detector = detector
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}/{SITE_ID}"
        self.zope_conf = folder / "etc" / "zope.conf"

    def env(self) -> dict:
        return {
            **os.environ,
            "PLONE_INSTANCE_DIR": str(self.folder),
            "PLONE_PORT": str(self.port),
            "PLONE_SITE_ID": SITE_ID,
            "ADMIN_USER": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "DETECTOR_ADDRESS": self.detector.address,
        }

    def create(self) -> None:
        self.start_script.write_instance()
        subprocess.run(
            [
                Path(sys.executable).parent / "zconsole",
                "run",
                self.zope_conf,
                self.start_script.ROOT / "scripts" / "create_site.py",
            ],
            env=self.env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [Path(sys.executable).parent / "runwsgi", self.folder / "etc" / "zope.ini"],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.start_script.wait_for_plone(self.url, self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.start_script.stop(self.process, "Plone")
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = ADMIN
        session.headers["Accept"] = "application/json"
        return session

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        with self.session() as session:
            return session.request(
                method, f"{self.url}/{path.lstrip('/')}", timeout=60, **kwargs
            )

    def add_folder(self, id: str) -> None:
        response = self.call(
            "POST", "", json={"@type": "Folder", "id": id, "title": id}
        )
        assert response.status_code == 201, response.text[:500]

    def set_records(self, **records) -> None:
        body = {f"collective.objectdetection.{k}": v for k, v in records.items()}
        response = self.call("PATCH", "@registry", json=body)
        assert response.status_code == 204, response.text[:500]

    def statuses(self, urls: list[str]) -> dict[str, str]:
        """Each item's detection status, from one catalog search."""
        response = self.call(
            "GET",
            "@search",
            params={
                "portal_type": "Image",
                "metadata_fields": "detection_status",
                "b_size": 10000,
            },
        )
        found = {
            item["@id"]: item.get("detection_status") or "none"
            for item in response.json()["items"]
        }
        return {url: found.get(url, "missing") for url in urls}

    def wait_detected(self, urls: list[str], timeout: float) -> float:
        """Seconds until every item is ``done``; fails after ``timeout``."""
        started = time.monotonic()
        wait_for(
            lambda: all(s == "done" for s in self.statuses(urls).values()),
            f"{len(urls)} items detected",
            timeout,
        )
        return time.monotonic() - started

    def lost(self, uploads: dict[str, bytes]) -> list[str]:
        """Items whose image no longer downloads as it was uploaded."""
        lost = []
        with self.session() as session:
            for url, data in uploads.items():
                response = session.get(f"{url}/@@download/image", timeout=60)
                if response.status_code != 200 or response.content != data:
                    lost.append(url)
        return lost
