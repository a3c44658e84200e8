"""Plone's CSRF protection for the add-on's writing endpoints."""

from plone.protect.authenticator import check
from plone.protect.interfaces import IDisableCSRFProtection
from zope.interface import alsoProvides


def protect_write(request) -> None:
    """Refuse a browser session's write that lacks plone.protect's token.

    A request with an Authorization header (basic, bearer, JWT) carries its own
    credentials and cannot be forged cross-site; a cookie session can, so it must
    send the token (``X-CSRF-TOKEN`` header or ``_authenticator``). Once checked, the
    automatic protection is switched off: it would refuse a JSON write anyway.
    """
    # Zope moves the Authorization header out of the environment into ``_auth``.
    if not getattr(request, "_auth", None):
        check(request)
    alsoProvides(request, IDisableCSRFProtection)
