"""What the detections figure (image, boxes, labels, editor tools) needs to render.

The figure itself is drawn by ``static/detections.js`` from the REST endpoint
``@detections``; the server only hands over addresses, the CSRF token and the
translated texts.
"""

from collective.objectdetection.browser.messages import FIGURE_MESSAGES
from collective.objectdetection.browser.messages import messages_json
from plone import api
from zope.component import getMultiAdapter


class DetectionsFigure:
    """The figure of ``context``'s image field ``fieldname`` for ``request``."""

    scale = "large"

    def __init__(self, context, request, fieldname: str = "image") -> None:
        self.context = context
        self.request = request
        self.fieldname = fieldname

    @property
    def detections_url(self) -> str:
        return f"{self.context.absolute_url()}/@detections"

    @property
    def search_url(self) -> str:
        return f"{api.portal.get().absolute_url()}/@@search"

    @property
    def token(self) -> str:
        """plone.protect's token, sent as ``X-CSRF-TOKEN`` with every write."""
        authenticator = getMultiAdapter(
            (self.context, self.request), name="authenticator"
        )
        return authenticator.token()

    @property
    def messages(self) -> str:
        return messages_json(FIGURE_MESSAGES, self.request)

    def image_tag(self) -> str:
        images = getMultiAdapter((self.context, self.request), name="images")
        return images.tag(
            self.fieldname, scale=self.scale, css_class="od-image figure-img img-fluid"
        )
