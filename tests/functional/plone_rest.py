"""Helpers for the functional tests: a site served over WSGI, driven over REST."""

from __future__ import annotations

from collections.abc import Callable
from collective.objectdetection.testing import FUNCTIONAL_TESTING
from plone import api
from plone.app.testing import SITE_OWNER_NAME
from plone.app.testing import SITE_OWNER_PASSWORD
from plone.restapi.testing import RelativeSession
from zope.component.hooks import setSite

import base64
import io
import pytest
import socket
import time
import transaction
import unittest


PREFIX = "collective.objectdetection"
PASSWORD = "secret-password-1"
USERS = {
    "member": ["Member"],
    "editor": ["Member", "Editor"],
    # Global Contributor: may add content and run detection, but not edit the items
    # of others.
    "contributor": ["Member", "Contributor"],
    "siteadmin": ["Member", "Site Administrator"],
}


def configure_site(portal, **records) -> None:
    """Set registry records (short names) and commit, so the server sees them."""
    setSite(portal)
    for name, value in records.items():
        api.portal.set_registry_record(f"{PREFIX}.{name}", value)
    transaction.commit()


def add_users(portal) -> None:
    setSite(portal)
    for user_id, roles in USERS.items():
        api.user.create(
            email=f"{user_id}@example.org", username=user_id, password=PASSWORD
        )
        api.user.grant_roles(username=user_id, roles=roles)
    transaction.commit()


def session(test, portal, user: str | None = SITE_OWNER_NAME) -> RelativeSession:
    """A REST session as ``user`` (None: anonymous), closed when ``test`` ends."""
    s = RelativeSession(portal.absolute_url(), test=test)
    s.headers.update({"Accept": "application/json"})
    if user == SITE_OWNER_NAME:
        s.auth = (SITE_OWNER_NAME, SITE_OWNER_PASSWORD)
    elif user is not None:
        s.auth = (user, PASSWORD)
    return s


def image_payload(data: bytes, filename: str, title: str = "") -> dict:
    return {
        "@type": "Image",
        "title": title or filename,
        "image": {
            "data": base64.b64encode(data).decode("ascii"),
            "encoding": "base64",
            "filename": filename,
            "content-type": "image/jpeg",
        },
    }


def tiny_jpeg() -> bytes:
    """A small valid JPEG (32 x 24, green)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(out, format="JPEG")
    return out.getvalue()


def wait_for(check: Callable[[], object], what: str, timeout: float = 120.0):
    """Poll ``check`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DetectorSiteTestCase(unittest.TestCase):
    """The functional layer's site, served over WSGI, using the real detector.

    ``processing_mode`` "sync" makes an upload answer once its detections are stored.
    """

    layer = FUNCTIONAL_TESTING
    processing_mode = "async"

    @pytest.fixture(autouse=True)
    def _detector(self, detector, samples_dir):
        self.detector = detector
        self.samples_dir = samples_dir

    def setUp(self):
        self.portal = self.layer["portal"]
        self.portal_url = self.portal.absolute_url()
        configure_site(
            self.portal,
            detector_addresses=[self.detector.address],
            processing_mode=self.processing_mode,
        )
        add_users(self.portal)
        self.owner = session(self, self.portal)
