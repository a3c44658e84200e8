"""Helpers for the Classic UI tests: a browser-like session, a photo uploaded."""

from __future__ import annotations

from plone_rest import image_payload
from plone_rest import session

import re
import requests


def login_with_cookie(base_url: str, user: str, password: str) -> requests.Session:
    """A session logged in the way a browser is: Plone's login form, its cookie."""
    browser = requests.Session()
    response = browser.post(
        f"{base_url}/login",
        data={"__ac_name": user, "__ac_password": password, "buttons.login": "Log in"},
    )
    assert response.status_code == 200, response.status_code
    assert "__ac" in browser.cookies, "login did not set Plone's session cookie"
    return browser


def figure_attribute(html: str, name: str) -> str:
    """An attribute of the detections figure rendered in ``html``."""
    match = re.search(rf'class="od-figure"[^>]*?{name}="([^"]*)"', html, re.S)
    assert match, f"no detections figure with {name} in the page"
    return match.group(1)


def upload(test, portal, path, container: str = "/") -> str:
    """Upload the photo at ``path`` as the site owner; its URL."""
    owner = session(test, portal)
    response = owner.post(container, json=image_payload(path.read_bytes(), path.name))
    assert response.status_code == 201, response.text
    return response.json()["@id"]
