"""Hostile and careless requests over HTTP (the functional layer's WSGI server): what
anonymous users can learn about private items, size limits on labels, malformed
bodies on every service, CSRF on @detect."""

from __future__ import annotations

from collective.objectdetection import storage
from collective.objectdetection.results import reindex
from collective.objectdetection.testing import FUNCTIONAL_TESTING
from plone import api
from plone.namedfile.file import NamedBlobImage
from plone_rest import add_users
from plone_rest import configure_site
from plone_rest import free_port
from plone_rest import PASSWORD
from plone_rest import session
from plone_rest import tiny_jpeg
from ui_helpers import figure_attribute
from ui_helpers import login_with_cookie
from zope.component.hooks import setSite

import transaction
import unittest


LABELS_VOCABULARY = "@vocabularies/collective.objectdetection.vocabularies.Labels"


class HostileRequestTests(unittest.TestCase):
    layer = FUNCTIONAL_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        # No detector listens: nothing here needs one.
        configure_site(self.portal, detector_addresses=[f"127.0.0.1:{free_port()}"])
        add_users(self.portal)
        setSite(self.portal)
        # Images have no workflow of their own: they are as visible as their folder.
        api.portal.get_tool("portal_workflow").setChainForPortalTypes(
            ["Folder"], "simple_publication_workflow"
        )
        with api.env.adopt_roles(["Manager"]):
            for id, labels, public in (
                ("private", ["secret-plan", "dog"], False),
                ("public", ["cat"], True),
            ):
                folder = api.content.create(container=self.portal, type="Folder", id=id)
                if public:
                    api.content.transition(folder, "publish")
                image = api.content.create(
                    container=folder,
                    type="Image",
                    id="photo",
                    image=NamedBlobImage(data=tiny_jpeg(), filename=f"{id}.jpg"),
                )
                storage.ensure_record(image).set_corrections(added_labels=labels)
                reindex(image)
        transaction.commit()
        self.owner = session(self, self.portal)
        self.anonymous = session(self, self.portal, None)

    # -- labels of private items -------------------------------------------------

    def vocabulary_tokens(self, client) -> set[str]:
        response = client.get(LABELS_VOCABULARY, params={"b_size": 1000})
        assert response.status_code == 200, response.text[:500]
        return {term["token"] for term in response.json()["items"]}

    def querystring_values(self, client) -> set[str]:
        response = client.get("@querystring")
        assert response.status_code == 200, response.text[:500]
        return set(response.json()["indexes"]["detected_objects"]["values"])

    def test_anonymous_sees_only_labels_of_content_it_can_view(self):
        for what in (self.vocabulary_tokens, self.querystring_values):
            anonymous, owner = what(self.anonymous), what(self.owner)
            assert "cat" in anonymous, what.__name__
            assert "secret-plan" not in anonymous and "dog" not in anonymous
            assert {"cat", "dog", "secret-plan"} <= owner, what.__name__

    def test_a_member_sees_the_labels_of_items_shared_with_it(self):
        member = session(self, self.portal, "member")
        assert "secret-plan" not in self.vocabulary_tokens(member)
        with api.env.adopt_roles(["Manager"]):
            api.user.grant_roles(
                username="member", obj=self.portal["private"], roles=["Reader"]
            )
            self.portal["private"].reindexObjectSecurity()
        transaction.commit()
        assert "secret-plan" in self.vocabulary_tokens(member)

    # -- limits on labels ----------------------------------------------------------

    def patch_labels(self, **body):
        return self.owner.patch("private/photo/@detections", json=body)

    def test_a_one_megabyte_label_is_refused(self):
        response = self.patch_labels(added_labels=["x" * 1_000_000])
        assert response.status_code == 400, response.text[:500]
        assert "at most 100 characters" in response.json()["message"]

    def test_a_hundred_thousand_labels_are_refused(self):
        labels = [f"label-{i}" for i in range(100_000)]
        for key in ("added_labels", "hidden_labels"):
            response = self.patch_labels(**{key: labels})
            assert response.status_code == 400, response.text[:500]
            assert "at most 100 labels" in response.json()["message"]
        body = self.owner.get("private/photo/@detections").json()
        assert body["added_labels"] == ["dog", "secret-plan"]

    def test_the_limits_are_settings(self):
        configure_site(self.portal, max_labels_per_item=2, max_label_length=5)
        assert self.patch_labels(added_labels=["a", "b", "c"]).status_code == 400
        assert self.patch_labels(added_labels=["abcdef"]).status_code == 400
        response = self.patch_labels(added_labels=["a", "b"])
        assert response.status_code == 200, response.text[:500]
        assert response.json()["added_labels"] == ["a", "b"]

    # -- malformed bodies ----------------------------------------------------------

    def assert_bad_request(self, response, *words: str) -> None:
        assert response.status_code == 400, (response.status_code, response.text[:500])
        message = response.json()["message"]
        for word in words:
            assert word in message, message

    def test_deeply_nested_json_is_a_bad_request_everywhere(self):
        nested = "[" * 100_000 + "]" * 100_000
        headers = {"Content-Type": "application/json"}
        for method, path in (
            ("PATCH", "private/photo/@detections"),
            ("POST", "@detection-backfill"),
            ("POST", "@detect"),
        ):
            response = self.owner.request(method, path, data=nested, headers=headers)
            assert response.status_code == 400, (method, path, response.text[:300])
            self.assert_bad_request(response, "JSON")

    def test_bodies_that_are_not_objects_are_bad_requests(self):
        for method, path in (
            ("PATCH", "private/photo/@detections"),
            ("POST", "@detection-backfill"),
            ("POST", "@detect"),
        ):
            response = self.owner.request(method, path, json=["a", "list"])
            self.assert_bad_request(response, "JSON object")

    def test_backfill_limit_must_be_a_non_negative_integer(self):
        headers = {"Content-Type": "application/json"}
        for body, word in (
            ('{"limit": Infinity}', "Infinity is not JSON"),
            ('{"limit": -Infinity}', "Infinity is not JSON"),
            ('{"limit": NaN}', "NaN is not JSON"),
            ('{"limit": -1}', "limit"),
            ('{"limit": 2.5}', "limit"),
            ('{"limit": "ten"}', "limit"),
            ('{"limit": true}', "limit"),
        ):
            response = self.owner.post(
                "@detection-backfill", data=body, headers=headers
            )
            self.assert_bad_request(response, word)
        ok = self.owner.post("@detection-backfill", json={"limit": 1})
        assert ok.status_code == 202, ok.text
        assert ok.json()["queued"] == 1

    def test_other_backfill_fields_are_checked(self):
        for body, word in (
            ({"mode": "everything"}, "mode"),
            ({"mode": ["missing"]}, "mode"),
            ({"path": 5}, "path"),
            ({"uids": "abc"}, "uids"),
            ({"uids": [1, 2]}, "uids"),
            ({"limmit": 5}, "limmit"),
        ):
            response = self.owner.post("@detection-backfill", json=body)
            self.assert_bad_request(response, word)

    def test_other_patch_fields_are_checked(self):
        for body, word in (
            ({"added_labels": "dog"}, "added_labels"),
            ({"hidden_labels": [["dog"]]}, "hidden_labels"),
            ({"added_labels": [None]}, "added_labels"),
            ({"labels": ["dog"]}, "labels"),
        ):
            self.assert_bad_request(self.patch_labels(**body), word)

    def test_detect_checks_its_body(self):
        for body, word in (
            ({"image": "abc"}, "image"),
            ({"image": {"data": 5}}, "image"),
            ({"image": {"data": "!!", "encoding": "base64"}}, "base64"),
            ({"image": {"data": "AAAA", "encoding": "hex"}}, "base64"),
        ):
            self.assert_bad_request(self.owner.post("@detect", json=body), word)

    # -- CSRF ----------------------------------------------------------------------

    def test_detect_refuses_a_cookie_session_without_the_token(self):
        browser = login_with_cookie(self.portal_url(), "editor", PASSWORD)
        files = {"image": ("photo.jpg", tiny_jpeg(), "image/jpeg")}
        headers = {"Accept": "application/json"}
        refused = browser.post(
            f"{self.portal_url()}/@detect", files=files, headers=headers
        )
        assert refused.status_code == 403, refused.text
        page = browser.get(f"{self.portal_url()}/public/photo/view").text
        token = figure_attribute(page, "data-od-token")
        allowed = browser.post(
            f"{self.portal_url()}/@detect",
            files=files,
            headers={**headers, "X-CSRF-TOKEN": token},
        )
        # Past the CSRF check; no detector listens here.
        assert allowed.status_code == 503, allowed.text

    def portal_url(self) -> str:
        return self.portal.absolute_url()
