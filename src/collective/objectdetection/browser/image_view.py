"""The view of an Image: its figure with the detected boxes."""

from collective.objectdetection.browser.figure import DetectionsFigure
from Products.Five import BrowserView


class ImageView(BrowserView):
    """``image_view`` for sites with the add-on: the image with its detections."""

    def figure(self) -> DetectionsFigure:
        return DetectionsFigure(self.context, self.request)
