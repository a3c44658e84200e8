"""The lead image viewlet, with the detected boxes when the type is enabled."""

from collective.objectdetection.browser.figure import DetectionsFigure
from collective.objectdetection.processing import is_enabled_type
from collective.objectdetection.settings import get_settings
from plone.app.contenttypes.behaviors import viewlets
from plone.app.contenttypes.behaviors.viewlets import LeadImageViewlet
from Products.Five.browser.pagetemplatefile import ViewPageTemplateFile

import os


class DetectionsLeadImageViewlet(LeadImageViewlet):
    """Plone's lead image viewlet; draws the detections on enabled types."""

    detections_template = ViewPageTemplateFile("templates/leadimage.pt")
    # Types without detection keep Plone's own rendering.
    plain_template = ViewPageTemplateFile(
        os.path.join(os.path.dirname(viewlets.__file__), "leadimage.pt")
    )

    def update(self) -> None:
        super().update()
        self.detections_enabled = self.available and is_enabled_type(
            self.context, get_settings()
        )

    def figure(self) -> DetectionsFigure:
        return DetectionsFigure(self.context, self.request)

    def render(self) -> str:
        if self.detections_enabled:
            return self.detections_template()
        return self.plain_template()
