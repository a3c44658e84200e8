"""The control panel's companion page: detector health, counts, backfill, failures."""

from collective.objectdetection.browser.messages import messages_json
from collective.objectdetection.browser.messages import STATUS_MESSAGES
from Products.Five import BrowserView
from zope.component import getMultiAdapter


class DetectionStatusView(BrowserView):
    """``@@objectdetection-status``: drawn by ``static/status.js`` from
    ``@detection-status``; its buttons post to ``@detection-backfill``."""

    def site_url(self) -> str:
        return self.context.absolute_url()

    def token(self) -> str:
        authenticator = getMultiAdapter(
            (self.context, self.request), name="authenticator"
        )
        return authenticator.token()

    def messages(self) -> str:
        return messages_json(STATUS_MESSAGES, self.request)
