"""Create (or update) the demo Plone site; `zconsole run` runs it for start.py.

Reads PLONE_SITE_ID, ADMIN_USER, ADMIN_PASSWORD, DETECTOR_ADDRESS and DETECTOR_TOKEN
from the environment. Idempotent: an existing site is kept, only the admin's password
and the detector's address and token are brought up to date.
"""

from AccessControl.SecurityManagement import newSecurityManager
from Products.CMFPlone.factory import addPloneSite
from Testing.makerequest import makerequest
from zope.component.hooks import setSite

import os
import transaction


SITE_ID = os.environ.get("PLONE_SITE_ID", "Plone")
ADMIN_USER = os.environ.get("ADMIN_USER", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "admin")
DETECTOR_ADDRESS = os.environ.get("DETECTOR_ADDRESS", "127.0.0.1:50051")
DETECTOR_TOKEN = os.environ.get("DETECTOR_TOKEN", "")
EXTENSIONS = (
    "plonetheme.barceloneta:default",
    "plone.app.contenttypes:default",
    "plone.restapi:default",
    "collective.objectdetection:default",
)


def ensure_admin(app) -> None:
    """The root user folder is a PAS here (plone.restapi adds JWT to it)."""
    users = app.acl_users
    if users.getUserById(ADMIN_USER) is None:
        users._doAddUser(ADMIN_USER, ADMIN_PASSWORD, ["Manager"], [])
    elif users.authenticate(ADMIN_USER, ADMIN_PASSWORD, None) is None:
        users.users.updateUserPassword(ADMIN_USER, ADMIN_PASSWORD)


def ensure_site(app):
    if SITE_ID in app.objectIds():
        return app[SITE_ID], False
    site = addPloneSite(
        app,
        SITE_ID,
        title="Object detection demo",
        extension_ids=EXTENSIONS,
        setup_content=False,
        default_language="en",
    )
    return site, True


def configure(site) -> None:
    from plone import api

    setSite(site)
    api.portal.set_registry_record(
        "collective.objectdetection.detector_addresses", [DETECTOR_ADDRESS]
    )
    api.portal.set_registry_record("collective.objectdetection.token", DETECTOR_TOKEN)
    # The demo is served at 127.0.0.1, which Plone leaves unthemed by default.
    api.portal.set_registry_record(
        "plone.app.theming.interfaces.IThemeSettings.hostnameBlacklist", []
    )


app = makerequest(app)  # noqa: F821 - zconsole run provides `app`
ensure_admin(app)
newSecurityManager(None, app.acl_users.getUserById(ADMIN_USER).__of__(app.acl_users))
site, created = ensure_site(app)
configure(site)
transaction.commit()
print(f"create_site: site {SITE_ID!r} {'created' if created else 'kept'}")
