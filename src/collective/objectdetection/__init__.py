"""collective.objectdetection: find Plone content by the objects in its images."""

from zope.i18nmessageid import MessageFactory

import logging


PACKAGE_NAME = "collective.objectdetection"

_ = MessageFactory(PACKAGE_NAME)

logger = logging.getLogger(PACKAGE_NAME)
