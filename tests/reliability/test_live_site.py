"""Faults and load against a real Plone (our zope.conf, waitress, the worker thread)
and a real detector process: concurrent uploads, detector outage, Zope killed
mid-queue, detector killed mid-batch, backfill of content that predates the add-on.

The tests share one site and run in file order. Figures go to the terminal with -s
and to ``$RELIABILITY_REPORT`` (JSON) when set: docs/reliability.md quotes them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from live import Detector
from live import LiveSite
from pathlib import Path
from plone_rest import image_payload
from plone_rest import wait_for

import json
import os
import pytest
import requests
import subprocess
import sys
import time


CLIENTS = 8
UPLOADS_PER_CLIENT = 10
FIGURES: dict[str, dict] = {}


def record(scenario: str, **figures) -> None:
    FIGURES[scenario] = figures
    print(f"\n{scenario}: {figures}")
    report = os.environ.get("RELIABILITY_REPORT")
    if report:
        Path(report).write_text(json.dumps(FIGURES, indent=2))


@pytest.fixture(scope="module")
def detector(model_dir):
    detector = Detector(model_dir).start()
    yield detector
    detector.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory, detector):
    site = LiveSite(tmp_path_factory.mktemp("reliability") / "instance", detector)
    site.create()
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def photos(samples_dir) -> list[tuple[str, bytes]]:
    names = ("dog.jpg", "person.jpg", "horses.jpg", "eagle.jpg")
    return [(n, (samples_dir / n).read_bytes()) for n in names]


def upload_many(site, folder: str, photos, clients: int, per_client: int):
    """``clients`` threads each upload ``per_client`` photos; the uploads that
    answered 201 (URL: bytes) and the status codes of the others."""

    def client(number: int):
        created, failed = {}, []
        with site.session() as session:
            for i in range(per_client):
                name, data = photos[(number + i) % len(photos)]
                try:
                    response = session.post(
                        f"{site.url}/{folder}",
                        json=image_payload(data, f"{number}-{i}-{name}"),
                        timeout=120,
                    )
                except requests.RequestException as exc:
                    failed.append(type(exc).__name__)
                    continue
                if response.status_code == 201:
                    created[response.json()["@id"]] = data
                else:
                    failed.append(response.status_code)
        return created, failed

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    created = {url: data for c, _ in results for url, data in c.items()}
    failed = [code for _, f in results for code in f]
    return created, failed


def test_concurrent_uploads_with_detection_on(site, detector, photos):
    site.add_folder("load-on")
    calls_before = detector.detect_calls()
    started = time.monotonic()
    created, failed = upload_many(site, "load-on", photos, CLIENTS, UPLOADS_PER_CLIENT)
    upload_seconds = time.monotonic() - started
    lost = site.lost(created)
    statuses = site.statuses(list(created))
    try:
        site.wait_detected(list(created), timeout=180)
    finally:
        statuses = site.statuses(list(created))
        record(
            "uploads, detection on",
            tried=CLIENTS * UPLOADS_PER_CLIENT,
            created=len(created),
            failed=failed,
            lost=len(lost),
            done=sum(s == "done" for s in statuses.values()),
            detect_calls=detector.detect_calls() - calls_before,
            upload_seconds=round(upload_seconds, 1),
        )
    assert lost == []
    assert len(created) + len(failed) == CLIENTS * UPLOADS_PER_CLIENT
    # Every image detected exactly once.
    assert detector.detect_calls() - calls_before == len(created)


def test_concurrent_uploads_with_detection_off(site, photos):
    site.add_folder("load-off")
    site.set_records(enabled_types=[])
    try:
        created, failed = upload_many(
            site, "load-off", photos, CLIENTS, UPLOADS_PER_CLIENT
        )
    finally:
        site.set_records(enabled_types=["Image"])
    lost = site.lost(created)
    record(
        "uploads, detection off",
        tried=CLIENTS * UPLOADS_PER_CLIENT,
        created=len(created),
        failed=failed,
        lost=len(lost),
    )
    assert lost == []


@pytest.mark.xfail(
    strict=False,
    reason="worker branch: the worker's catalog writes right after each upload make "
    "concurrent uploads conflict (racy: not strict)",
)
def test_detection_does_not_make_uploads_fail_more():
    on = FIGURES["uploads, detection on"]
    off = FIGURES["uploads, detection off"]
    assert len(on["failed"]) == 0
    assert len(on["failed"]) <= len(off["failed"])


OUTAGE_ITEMS = 20


def test_detector_outage(site, detector, photos):
    """Uploads while the detector is down all answer 201 and stay pending; once it
    is back, each is detected once."""
    site.add_folder("outage")
    detector.stop()
    try:
        created, _ = upload_many(site, "outage", photos, 4, OUTAGE_ITEMS // 4)
        # Long enough for the worker to back off several times.
        time.sleep(15)
        assert set(site.statuses(list(created)).values()) == {"pending"}
    finally:
        detector.start()
    recovery = site.wait_detected(list(created), timeout=180)
    record(
        "detector outage",
        tried=OUTAGE_ITEMS,
        created=len(created),
        done=len(created),
        lost=len(site.lost(created)),
        detect_calls=detector.detect_calls(),
        recovery_seconds=round(recovery, 1),
    )
    assert detector.detect_calls() == len(created)


@pytest.mark.xfail(
    strict=True,
    reason="worker branch: the worker waits up to 60 s between tries and the gRPC "
    "reconnect backoff is unbounded; a recovered detector is noticed late",
)
def test_detector_recovery_is_noticed_within_seconds():
    assert FIGURES["detector outage"]["recovery_seconds"] < 10


def test_zope_killed_mid_queue(site, detector, photos):
    """Items pending when Zope dies are detected after it starts again."""
    site.add_folder("killed")
    detector.stop()
    try:
        created, _ = upload_many(site, "killed", photos, 3, 5)
        site.kill()
    finally:
        detector.start()
    site.start()
    recovery = site.wait_detected(list(created), timeout=180)
    record(
        "Zope killed mid-queue",
        tried=len(created),
        done=len(created),
        lost=len(site.lost(created)),
        detect_calls=detector.detect_calls(),
        recovery_seconds=round(recovery, 1),
    )
    assert detector.detect_calls() == len(created)


def test_detector_killed_mid_batch(site, detector, photos):
    """The detector dies (SIGKILL) while the worker is going through a batch: a
    backlog builds up while it is stopped, and it is killed as soon as the first
    item of the backlog is detected."""
    site.add_folder("detector-killed")
    detector.stop()
    try:
        created, _ = upload_many(site, "detector-killed", photos, CLIENTS, 4)
    finally:
        detector.start()
    wait_for(
        lambda: "done" in site.statuses(list(created)).values(),
        "the first item detected",
        timeout=120,
    )
    detector.kill()
    done_before = sum(s == "done" for s in site.statuses(list(created)).values())
    detector.start()
    recovery = site.wait_detected(list(created), timeout=180)
    record(
        "detector killed mid-batch",
        tried=CLIENTS * 4,
        created=len(created),
        done_before_kill=done_before,
        done=len(created),
        lost=len(site.lost(created)),
        recovery_seconds=round(recovery, 1),
    )


def test_backfill_of_content_that_predates_the_addon(site, photos):
    """The first thing a real site does: images exist, the add-on is installed,
    "Detect missing" runs (REST, then the console script). Some images were also
    added while detection was off."""
    addon = "@addons/collective.objectdetection"
    assert site.call("POST", f"{addon}/uninstall").status_code == 204
    site.add_folder("before")
    older, _ = upload_many(site, "before", photos, 1, 3)
    assert site.call("POST", f"{addon}/install").status_code == 204
    # A fresh install has the default settings: point it at our detector.
    site.set_records(detector_addresses=[site.detector.address])
    site.add_folder("while-off")
    site.set_records(enabled_types=[])
    try:
        off, _ = upload_many(site, "while-off", photos, 1, 2)
    finally:
        site.set_records(enabled_types=["Image"])
    assert set(site.statuses([*older, *off]).values()) == {"none"}

    response = site.call("POST", "@detection-backfill", json={"path": "/before"})
    assert response.status_code == 202, response.text[:500]
    assert response.json()["queued"] == 3
    site.wait_detected(list(older), timeout=120)

    # The console script works on the database directly: FileStorage is locked
    # while Zope runs.
    site.stop()
    try:
        script = subprocess.run(
            [
                Path(sys.executable).parent / "objectdetection-backfill",
                site.zope_conf,
                "--site",
                "Plone",
                # The uploads of the "detection off" load test are missing too.
                "--path",
                "while-off",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        site.start()
    assert script.returncode == 0, script.stdout[-2000:] + script.stderr[-2000:]
    assert "2 of 2 items detected" in script.stdout
    assert set(site.statuses(list(off)).values()) == {"done"}
    record("backfill of older content", rest=len(older), script=len(off), done=5)
