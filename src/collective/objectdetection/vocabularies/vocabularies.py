"""Vocabularies: content types that have an image, labels known to the site."""

from collective.objectdetection.images import type_has_image_field
from collective.objectdetection.labels import label_title
from collective.objectdetection.settings import get_settings
from plone import api
from zope.globalrequest import getRequest
from zope.interface import provider
from zope.schema.interfaces import IVocabularyFactory
from zope.schema.vocabulary import SimpleTerm
from zope.schema.vocabulary import SimpleVocabulary


@provider(IVocabularyFactory)
def image_types(context):
    """Content types with an image field (in their schema or a behavior)."""
    types_tool = api.portal.get_tool("portal_types")
    terms = [
        SimpleTerm(fti.getId(), fti.getId(), fti.Title())
        for fti in types_tool.listTypeInfo()
        if getattr(fti, "behaviors", None) is not None
        and type_has_image_field(fti.getId())
    ]
    return SimpleVocabulary(sorted(terms, key=lambda t: t.title.lower()))


def viewable_labels() -> set[str]:
    """The indexed labels of content the current user may view.

    The index knows every item's labels, private ones included (editors add their
    own); a label is listed only if one of the items the user can find carries it,
    so private labels never reach anonymous users through the vocabulary or
    ``@querystring``. One security-filtered query per distinct label.
    """
    catalog = api.portal.get_tool("portal_catalog")
    return {
        label
        for label in catalog.uniqueValuesFor("detected_objects")
        if catalog.searchResults(detected_objects=label, sort_limit=1)
    }


@provider(IVocabularyFactory)
def known_labels(context):
    """Labels of the content the user may view, plus those in the allow-list;
    titles in the request's language."""
    labels = viewable_labels()
    labels.update(get_settings().label_allow_list)
    request = getRequest()
    terms = [
        SimpleTerm(label, label, label_title(label, context=request))
        for label in labels
    ]
    return SimpleVocabulary(sorted(terms, key=lambda t: t.title.lower()))
