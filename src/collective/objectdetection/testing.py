"""Test layers, defined once: the add-on installed in a Plone site.

``FUNCTIONAL_TESTING`` serves the site over a real WSGI server (plone.testing's
``WSGI_SERVER_FIXTURE``) so tests can talk to it with ``requests``; the worker thread
runs in the same process as the server.
"""

from plone.app.contenttypes.testing import PLONE_APP_CONTENTTYPES_FIXTURE
from plone.app.testing import applyProfile
from plone.app.testing import FunctionalTesting
from plone.app.testing import IntegrationTesting
from plone.app.testing import PloneSandboxLayer
from plone.testing.zope import WSGI_SERVER_FIXTURE


class ObjectDetectionLayer(PloneSandboxLayer):
    defaultBases = (PLONE_APP_CONTENTTYPES_FIXTURE,)

    def setUpZope(self, app, configurationContext):
        import collective.objectdetection
        import plone.restapi

        self.loadZCML(package=plone.restapi)
        self.loadZCML(package=collective.objectdetection)

    def setUpPloneSite(self, portal):
        applyProfile(portal, "collective.objectdetection:default")


FIXTURE = ObjectDetectionLayer()

INTEGRATION_TESTING = IntegrationTesting(
    bases=(FIXTURE,), name="collective.objectdetection:Integration"
)
FUNCTIONAL_TESTING = FunctionalTesting(
    bases=(FIXTURE, WSGI_SERVER_FIXTURE), name="collective.objectdetection:Functional"
)
