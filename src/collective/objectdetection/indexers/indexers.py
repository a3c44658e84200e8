"""Catalog indexers: detected labels, detection status, and labels in SearchableText."""

from collective.objectdetection import storage
from collective.objectdetection.labels import label_translations
from collective.objectdetection.settings import get_settings
from plone.base.interfaces import IPloneCatalogTool
from plone.indexer import indexer
from plone.indexer.interfaces import IIndexer
from zope.component import adapter
from zope.component import getSiteManager
from zope.interface import implementer
from zope.interface import Interface
from zope.interface import providedBy


def effective_labels(obj) -> tuple[str, ...]:
    """The labels indexed for ``obj``: the one place the minimum scores apply."""
    record = storage.get_record(obj)
    if record is None:
        return ()
    settings = get_settings()
    return record.effective_labels(settings.min_score, settings.label_min_scores)


@indexer(Interface)
def detected_objects(obj):
    return list(effective_labels(obj))


@indexer(Interface)
def detection_status(obj):
    """Items never recorded are left out of the index (most content has no image)."""
    record = storage.get_record(obj)
    if record is None:
        raise AttributeError("detection_status")
    return record.status


@implementer(IIndexer)
@adapter(Interface, IPloneCatalogTool)
class SearchableTextWithLabels:
    """The item's usual SearchableText, followed by its labels in every language.

    Registered for (content, Plone's catalog): one step more specific than the
    SearchableText indexers of plone.app.contenttypes, which are registered for
    (content, any catalog). It delegates to whatever would index the item without
    this add-on, so it wraps rather than replaces them.
    """

    def __init__(self, context, catalog):
        self.context = context
        self.catalog = catalog

    def original(self) -> str:
        factory = getSiteManager().adapters.lookup(
            (providedBy(self.context), Interface), IIndexer, name="SearchableText"
        )
        if factory is not None:
            return factory(self.context, self.catalog)() or ""
        fallback = getattr(self.context, "SearchableText", None)
        return (fallback() if callable(fallback) else fallback) or ""

    def __call__(self) -> str:
        text = self.original()
        words = []
        for label in effective_labels(self.context):
            words.extend(label_translations(label))
        if not words:
            return text
        return " ".join((text, *dict.fromkeys(words)))
