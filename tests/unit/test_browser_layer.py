"""Our views for the add-on's layer win over plone.app.contenttypes' own.

A site marks each request with its browser layers in the order the site registered
them, which may put plone.app.contenttypes' layer first. plone.app.testing stacks a
component registry per layer, which hides that order, so this is checked on a plain
adapter registry holding both registrations.
"""

from collective.objectdetection.interfaces import IObjectDetectionLayer
from plone.app.contenttypes.interfaces import IImage
from plone.app.contenttypes.interfaces import IPloneAppContenttypesLayer
from zope.interface import directlyProvides
from zope.interface import implementer
from zope.interface import Interface
from zope.interface import providedBy
from zope.interface.adapter import AdapterRegistry
from zope.publisher.browser import TestRequest


@implementer(IImage)
class Image:
    pass


def test_image_view_for_our_layer_wins_whatever_the_layer_order():
    registry = AdapterRegistry()
    registry.register(
        [IImage, IPloneAppContenttypesLayer], Interface, "image_view", "theirs"
    )
    registry.register([IImage, IObjectDetectionLayer], Interface, "image_view", "ours")
    request = TestRequest()
    directlyProvides(request, IPloneAppContenttypesLayer, IObjectDetectionLayer)
    found = registry.lookup(
        [providedBy(Image()), providedBy(request)], Interface, "image_view"
    )
    assert found == "ours"
