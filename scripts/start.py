"""`make start`: run the detector service and Plone with a demo site, until Ctrl-C.

Everything lives under var/: the model weights, the sample photos and the Zope
instance (FileStorage + blobs). Configuration comes from the environment; see the
README's table for the variables and their defaults.
"""

from __future__ import annotations

from detector_service.launcher import DetectorProcess
from pathlib import Path

import base64
import mimetypes
import os
import requests
import signal
import subprocess
import sys
import time


ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
INSTANCE = Path(os.environ.get("PLONE_INSTANCE_DIR", VAR / "instance"))
BIN = Path(sys.executable).parent

HOST = "127.0.0.1"
PLONE_PORT = int(os.environ.get("PLONE_PORT", "8080"))
DETECTOR_PORT = int(os.environ.get("DETECTOR_PORT", "50051"))
SITE_ID = os.environ.get("PLONE_SITE_ID", "Plone")
ADMIN_USER = os.environ.get("ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "admin")
SAMPLES_DIR = Path(os.environ.get("SAMPLES_DIR", VAR / "samples"))
# The same default as the Makefile's, for running this script by hand.
os.environ.setdefault("DETECTOR_MODEL_DIR", str(VAR / "models"))
SAMPLES_FOLDER = "sample-photos"
STARTUP_SECONDS = 180
# One try at the first page; a slower answer is tried again until STARTUP_SECONDS.
TRY_SECONDS = 10


def write_instance() -> None:
    """Write zope.conf and zope.ini from their templates (cheap; always current)."""
    for sub in ("etc", "var/log", "var/filestorage", "var/blobstorage", "var/cache"):
        (INSTANCE / sub).mkdir(parents=True, exist_ok=True)
    templates = Path(__file__).parent / "instance"
    values = {"instance": INSTANCE, "host": HOST, "port": PLONE_PORT}
    for name in ("zope.conf", "zope.ini"):
        text = (templates / f"{name}.in").read_text()
        (INSTANCE / "etc" / name).write_text(text.format(**values))


def create_site(detector_address: str) -> None:
    env = dict(os.environ, DETECTOR_ADDRESS=detector_address)
    subprocess.run(
        [
            BIN / "zconsole",
            "run",
            INSTANCE / "etc" / "zope.conf",
            Path(__file__).parent / "create_site.py",
        ],
        env=env,
        check=True,
    )


def wait_for_plone(url: str, plone: subprocess.Popen) -> None:
    """Until the site answers, Plone exits, or the deadline passes. A first page
    slower than one try's timeout (a cold start on a busy machine) is tried again."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if plone.poll() is not None:
            log = INSTANCE / "var" / "log" / "event.log"
            sys.exit(f"start: Plone exited with {plone.returncode}; see {log}")
        try:
            if requests.get(url, timeout=TRY_SECONDS).status_code < 500:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.5)
    sys.exit(f"start: Plone did not answer at {url} within {STARTUP_SECONDS} s")


def upload_samples(site_url: str) -> int:
    """Upload the sample photos once, into a folder of their own."""
    session = requests.Session()
    session.auth = (ADMIN_USER, ADMIN_PASSWORD)
    session.headers["Accept"] = "application/json"
    folder_url = f"{site_url}/{SAMPLES_FOLDER}"
    if session.get(folder_url, timeout=10).status_code == 200:
        return 0
    session.post(
        site_url,
        json={"@type": "Folder", "id": SAMPLES_FOLDER, "title": "Sample photos"},
        timeout=30,
    ).raise_for_status()
    # Published, so that visitors find the photos by what is in them too.
    session.post(f"{folder_url}/@workflow/publish", timeout=30).raise_for_status()
    photos = sorted(p for p in SAMPLES_DIR.glob("*") if p.suffix in (".jpg", ".png"))
    for photo in photos:
        content_type = mimetypes.guess_type(photo.name)[0] or "image/jpeg"
        session.post(
            folder_url,
            json={
                "@type": "Image",
                "title": photo.stem.replace("_", " ").capitalize(),
                "image": {
                    "data": base64.b64encode(photo.read_bytes()).decode("ascii"),
                    "encoding": "base64",
                    "filename": photo.name,
                    "content-type": content_type,
                },
            },
            timeout=60,
        ).raise_for_status()
    return len(photos)


def stop(process: subprocess.Popen, name: str) -> None:
    """SIGINT first: waitress and the ZODB close cleanly. A shell that started us in
    the background may have set SIGINT to be ignored, so SIGTERM, then SIGKILL."""
    for how in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"start: {name} did not stop on {how.name}")


def main() -> None:
    write_instance()
    detector = DetectorProcess(
        backend=os.environ.get("DETECTOR_BACKEND", "onnx"),
        model=os.environ.get("DETECTOR_MODEL") or None,  # else serve's default
        extra_args=["--port", str(DETECTOR_PORT)],
    )
    # Ctrl-C reaches the whole process group; children handle it themselves, and we
    # turn SIGTERM into the same clean path. Installing a handler also undoes an
    # ignored SIGINT inherited from a shell's background job, for us and (reset to
    # the default on exec) for the children started below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    plone = None
    try:
        detector.start()
        create_site(detector.address)
        plone = subprocess.Popen(
            [BIN / "runwsgi", INSTANCE / "etc" / "zope.ini"],
            start_new_session=True,
        )
        site_url = f"http://{HOST}:{PLONE_PORT}/{SITE_ID}"
        wait_for_plone(site_url, plone)
        uploaded = upload_samples(site_url)
        print(
            "\n".join(
                [
                    "",
                    f"  Plone:     {site_url}",
                    f"  Login:     {ADMIN_USER} / {ADMIN_PASSWORD}",
                    f"  Samples:   {site_url}/{SAMPLES_FOLDER}"
                    + (f"   ({uploaded} photos uploaded)" if uploaded else ""),
                    f"  Search:    {site_url}/@@search?detected_objects=dog",
                    f"  REST:      {site_url}/@detection-status",
                    f"  Detector:  {detector.address}   (gRPC, health: SERVING)",
                    "",
                    "  Ctrl-C stops both.",
                    "",
                ]
            ),
            flush=True,
        )
        plone.wait()
        sys.exit(f"start: Plone exited with {plone.returncode}")
    except KeyboardInterrupt:
        print("\nstart: stopping")
    finally:
        if plone is not None:
            stop(plone, "Plone")
        detector.stop()


if __name__ == "__main__":
    main()
