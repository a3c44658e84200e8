"""Install-time helpers."""

from plone.base.interfaces import INonInstallable
from zope.interface import implementer


@implementer(INonInstallable)
class HiddenProfiles:
    """Keep the uninstall profile out of the add-ons control panel."""

    def getNonInstallableProfiles(self) -> list[str]:
        return ["collective.objectdetection:uninstall"]

    def getNonInstallableProducts(self) -> list[str]:
        return []
