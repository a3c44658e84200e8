"""The settings control panel: a classic registry form and its @controlpanels twin."""

from collective.objectdetection import _
from collective.objectdetection.interfaces import IDetectionSettings
from collective.objectdetection.interfaces import IObjectDetectionLayer
from collective.objectdetection.settings import REGISTRY_PREFIX
from plone.app.registry.browser.controlpanel import ControlPanelFormWrapper
from plone.app.registry.browser.controlpanel import RegistryEditForm
from plone.restapi.controlpanels import RegistryConfigletPanel
from plone.z3cform import layout
from zope.component import adapter
from zope.interface import Interface


class DetectionSettingsForm(RegistryEditForm):
    schema = IDetectionSettings
    schema_prefix = REGISTRY_PREFIX
    label = _("Object detection")
    description = _("How images are sent to the detector service and indexed.")


DetectionSettingsView = layout.wrap_form(DetectionSettingsForm, ControlPanelFormWrapper)


@adapter(Interface, IObjectDetectionLayer)
class DetectionSettingsControlpanel(RegistryConfigletPanel):
    schema = IDetectionSettings
    schema_prefix = REGISTRY_PREFIX
    configlet_id = "objectdetection"
    configlet_category_id = "plone-general"
