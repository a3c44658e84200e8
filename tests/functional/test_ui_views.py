"""The Classic UI over the real WSGI server: who sees which view, what the pages
carry for the scripts, translations, the folder contents action and CSRF."""

from plone import api
from plone.app.testing import SITE_OWNER_NAME
from plone_rest import configure_site
from plone_rest import DetectorSiteTestCase
from plone_rest import PASSWORD
from plone_rest import session
from ui_helpers import figure_attribute
from ui_helpers import login_with_cookie
from ui_helpers import upload
from zope.component.hooks import setSite

import html
import json
import transaction


STATIC = "++plone++collective.objectdetection"


class UiTestCase(DetectorSiteTestCase):
    processing_mode = "sync"

    def page(self, path: str, user: str | None = SITE_OWNER_NAME):
        """``path`` as a browser asks for it (HTML, not the REST API's JSON)."""
        return session(self, self.portal, user).get(
            path, headers={"Accept": "text/html"}
        )

    def upload_dog(self) -> str:
        return upload(self, self.portal, self.samples_dir / "dog.jpg")

    def set_language(self, language: str) -> None:
        setSite(self.portal)
        api.portal.set_registry_record("plone.available_languages", ["en", "de", "ja"])
        api.portal.set_registry_record("plone.default_language", language)
        transaction.commit()


class ImageViewTests(UiTestCase):
    def test_image_view_carries_what_the_script_needs(self):
        url = self.upload_dog()
        page = self.page(url + "/view")
        assert page.status_code == 200
        assert figure_attribute(page.text, "data-od-url") == f"{url}/@detections"
        assert figure_attribute(page.text, "data-od-search-url") == (
            f"{self.portal_url}/@@search"
        )
        assert len(figure_attribute(page.text, "data-od-token")) == 40
        messages = json.loads(
            html.unescape(figure_attribute(page.text, "data-od-messages"))
        )
        assert messages["hide"] == "Hide"
        assert f"{STATIC}/detections.js" in page.text
        assert 'role="img"' in page.text
        assert 'for="od-threshold-input"' in page.text

    def test_anonymous_sees_the_figure_of_a_visible_image(self):
        url = self.upload_dog()
        page = self.page(url + "/view", user=None)
        assert page.status_code == 200
        assert figure_attribute(page.text, "data-od-url") == f"{url}/@detections"

    def test_static_files_are_served_as_javascript_and_css(self):
        for name in ("rest.js", "detections.js", "status.js"):
            response = self.owner.get(f"{STATIC}/{name}")
            assert response.status_code == 200, name
            assert "javascript" in response.headers["Content-Type"], name
        css = self.owner.get(f"{STATIC}/detections.css")
        assert css.status_code == 200
        assert "text/css" in css.headers["Content-Type"]

    def test_lead_image_has_the_figure_only_on_enabled_types(self):
        data = (self.samples_dir / "dog.jpg").read_bytes()
        news = self.owner.post(
            "/",
            json={
                "@type": "News Item",
                "title": "Dog news",
                "image": {
                    "data": __import__("base64").b64encode(data).decode("ascii"),
                    "encoding": "base64",
                    "filename": "dog.jpg",
                    "content-type": "image/jpeg",
                },
            },
        )
        assert news.status_code == 201, news.text
        url = news.json()["@id"]
        plain = self.page(url + "/view").text
        assert "newsImageContainer" in plain
        assert 'class="od-figure"' not in plain

        configure_site(self.portal, enabled_types=["Image", "News Item"])
        assert self.owner.post(f"{url}/@detections", json={}).status_code == 200
        enabled = self.page(url + "/view").text
        assert figure_attribute(enabled, "data-od-url") == f"{url}/@detections"
        assert "dog" in self.owner.get(f"{url}/@detections").json()["labels"]


class StatusViewTests(UiTestCase):
    def status_code(self, user) -> int:
        response = session(self, self.portal, user).get(
            "@@objectdetection-status", allow_redirects=False
        )
        return response.status_code

    def test_only_site_administrators_see_the_status_page(self):
        assert self.status_code(None) in (302, 401, 403)
        assert self.status_code("editor") in (302, 401, 403)
        page = self.page("@@objectdetection-status", user="siteadmin")
        assert page.status_code == 200
        assert 'class="od-status-page"' in page.text
        assert 'data-od-mode="missing"' in page.text
        assert f"{STATIC}/status.js" in page.text
        assert "@@objectdetection-controlpanel" in page.text

    def test_control_panel_offers_minimum_scores_per_label(self):
        page = self.page("@@objectdetection-controlpanel", user="siteadmin")
        assert page.status_code == 200
        assert "form.widgets.label_min_scores" in page.text
        assert "Minimum score per label" in page.text


class TranslationTests(UiTestCase):
    def check_language(self, language, dog, heading, hide):
        url = self.upload_dog()
        self.set_language(language)
        body = self.owner.get(f"{url}/@detections").json()
        titles = {d["label"]: d["title"] for d in body["detections"]}
        assert titles["dog"] == dog
        page = self.page(url + "/view").text
        assert heading in page
        messages = json.loads(html.unescape(figure_attribute(page, "data-od-messages")))
        assert messages["hide"] == hide

    def test_german(self):
        self.check_language("de", "Hund", "Erkannte Objekte", "Ausblenden")

    def test_japanese(self):
        self.check_language("ja", "犬", "検出された物体", "非表示")


class FolderContentsActionTests(UiTestCase):
    def test_folder_contents_offers_the_action(self):
        page = self.page("folder_contents")
        assert page.status_code == 200
        assert "@@fc-detect-objects" in page.text

    def token(self, url: str) -> str:
        return figure_attribute(self.page(url + "/view").text, "data-od-token")

    def test_action_reruns_detection_of_the_selection(self):
        url = self.upload_dog()
        uid = self.owner.get(url).json()["UID"]
        before = self.owner.get(f"{url}/@detections").json()["attempts"]
        response = self.owner.post(
            "@@fc-detect-objects",
            data={
                "selection": json.dumps([uid]),
                "folder": "/",
                "_authenticator": self.token(url),
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "success", response.text
        after = self.owner.get(f"{url}/@detections").json()
        assert after["attempts"] == before + 1
        assert after["status"] == "done"

    def test_action_refuses_a_request_without_the_token(self):
        url = self.upload_dog()
        uid = self.owner.get(url).json()["UID"]
        before = self.owner.get(f"{url}/@detections").json()["attempts"]
        response = self.owner.post(
            "@@fc-detect-objects", data={"selection": json.dumps([uid]), "folder": "/"}
        )
        assert response.status_code in (401, 403)
        assert self.owner.get(f"{url}/@detections").json()["attempts"] == before


class BrowserSessionWriteTests(UiTestCase):
    """What the image view's script does: cookie session, JSON, X-CSRF-TOKEN."""

    def test_editor_session_with_the_token_hides_a_label(self):
        url = self.upload_dog()
        browser = login_with_cookie(self.portal_url, "editor", PASSWORD)
        page = browser.get(url + "/view").text
        token = figure_attribute(page, "data-od-token")
        response = browser.patch(
            f"{url}/@detections",
            json={"hidden_labels": ["dog"]},
            headers={"Accept": "application/json", "X-CSRF-TOKEN": token},
        )
        assert response.status_code == 200, response.text
        assert "dog" not in response.json()["labels"]
        found = self.owner.get("@search", params={"detected_objects": "dog"}).json()
        assert url not in [item["@id"] for item in found["items"]]


class BrowserSessionCsrfTests(UiTestCase):
    """A browser session's write without plone.protect's token is refused.

    Basic and bearer clients cannot be forged cross-site; a cookie session can, so
    the writing services check the token when the request has no Authorization
    header.
    """

    def test_cookie_session_write_without_token_is_refused(self):
        url = self.upload_dog()
        browser = login_with_cookie(self.portal_url, "editor", PASSWORD)
        headers = {"Accept": "application/json"}
        patched = browser.patch(
            f"{url}/@detections", json={"hidden_labels": ["dog"]}, headers=headers
        )
        rerun = browser.post(f"{url}/@detections", headers=headers)
        deleted = browser.delete(f"{url}/@detections", headers=headers)
        assert [patched.status_code, rerun.status_code, deleted.status_code] == [
            403,
            403,
            403,
        ]
        assert "dog" in self.owner.get(f"{url}/@detections").json()["labels"]

    def test_cookie_session_write_with_a_wrong_token_is_refused(self):
        url = self.upload_dog()
        browser = login_with_cookie(self.portal_url, "editor", PASSWORD)
        response = browser.patch(
            f"{url}/@detections",
            json={"hidden_labels": ["dog"]},
            headers={"Accept": "application/json", "X-CSRF-TOKEN": "0" * 40},
        )
        assert response.status_code == 403
