"""Who may call which endpoint: anonymous, member, contributor, editor, site
administrator."""

from collective.objectdetection.testing import FUNCTIONAL_TESTING
from plone import api
from plone.namedfile.file import NamedBlobImage
from plone_rest import add_users
from plone_rest import configure_site
from plone_rest import free_port
from plone_rest import session
from plone_rest import tiny_jpeg
from zope.component.hooks import setSite

import transaction
import unittest


DENIED = (401, 403)
# Anonymous is asked to log in; a logged-in user lacking the permission is refused.
DENIED_ANONYMOUS = 401
DENIED_LOGGED_IN = 403


class PermissionMatrixTests(unittest.TestCase):
    layer = FUNCTIONAL_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        # No detector listens here: detection calls answer 503 or stay pending,
        # which is enough to tell "allowed" from "denied".
        configure_site(self.portal, detector_addresses=[f"127.0.0.1:{free_port()}"])
        add_users(self.portal)
        setSite(self.portal)
        with api.env.adopt_roles(["Manager"]):
            api.content.create(
                container=self.portal,
                type="Image",
                id="photo",
                title="Photo",
                image=NamedBlobImage(data=tiny_jpeg(), filename="photo.jpg"),
            )
        transaction.commit()

    def call(self, user, method, path, **kwargs) -> int:
        return (
            session(self, self.portal, user).request(method, path, **kwargs).status_code
        )

    def test_matrix(self):
        image = tiny_jpeg()
        endpoints = {
            "GET @detections": ("GET", "photo/@detections", {}),
            "POST @detections": ("POST", "photo/@detections", {}),
            "PATCH @detections": (
                "PATCH",
                "photo/@detections",
                {"json": {"added_labels": ["cat"]}},
            ),
            "DELETE @detections": ("DELETE", "photo/@detections", {}),
            "POST @detect": ("POST", "@detect", {"files": {"image": ("a.jpg", image)}}),
            "GET @detection-status": ("GET", "@detection-status", {}),
            "POST @detection-backfill": (
                "POST",
                "@detection-backfill",
                {"json": {"mode": "missing"}},
            ),
        }
        allowed = {
            None: {"GET @detections"},
            "member": {"GET @detections"},
            # "photo" is not theirs: Run detection alone does not let them change
            # its detections.
            "contributor": {"GET @detections", "POST @detect"},
            "editor": {
                "GET @detections",
                "POST @detections",
                "PATCH @detections",
                "DELETE @detections",
                "POST @detect",
            },
            "siteadmin": set(endpoints),
        }
        problems = []
        for user, permitted in allowed.items():
            for name, (method, path, kwargs) in endpoints.items():
                status = self.call(user, method, path, **kwargs)
                # The detector is down on purpose: 503 means "allowed, then tried".
                denied = DENIED_ANONYMOUS if user is None else DENIED_LOGGED_IN
                ok = (
                    status < 400 or status == 503
                    if name in permitted
                    else status == denied
                )
                if not ok:
                    problems.append(f"{user or 'anonymous'} {name}: {status}")
        assert not problems, "\n".join(problems)

    def test_can_edit_flag(self):
        anonymous = session(self, self.portal, None).get("photo/@detections").json()
        editor = session(self, self.portal, "editor").get("photo/@detections").json()
        contributor = (
            session(self, self.portal, "contributor").get("photo/@detections").json()
        )
        assert anonymous["can_edit"] is False
        assert contributor["can_edit"] is False
        assert editor["can_edit"] is True

    def test_controlpanel_over_rest(self):
        admin = session(self, self.portal, "siteadmin")
        panel = admin.get("@controlpanels/objectdetection")
        assert panel.status_code == 200, panel.text
        assert panel.json()["data"]["processing_mode"]["token"] == "async"
        changed = admin.patch("@controlpanels/objectdetection", json={"min_score": 0.5})
        assert changed.status_code == 204, changed.text
        assert (
            admin.get("@controlpanels/objectdetection").json()["data"]["min_score"]
            == 0.5
        )
        assert self.call("editor", "GET", "@controlpanels/objectdetection") in DENIED
