"""The message catalogs: up to date with the code, complete in German and Japanese,
compiled, and used by Zope for the labels and the UI."""

from collective.objectdetection.locales import update
from detector_service.labels import COCO_LABELS
from zope.i18n.gettextmessagecatalog import GettextMessageCatalog

import gettext
import pytest


LANGUAGES = ("de", "ja")


def read_mo(language: str) -> dict[str, str]:
    path = update.LOCALES / language / "LC_MESSAGES" / f"{update.DOMAIN}.mo"
    with path.open("rb") as source:
        return gettext.GNUTranslations(source)._catalog


def test_catalogs_are_up_to_date_with_the_code():
    stale = [str(path.relative_to(update.LOCALES)) for path in update.stale_files()]
    assert stale == [], (
        "run `.venv/bin/python -m collective.objectdetection.locales.update`"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(language):
    template = update.build_template()
    catalog = read_mo(language)
    untranslated = [m.id for m in template if m.id and not catalog.get(m.id)]
    assert untranslated == []


@pytest.mark.parametrize(
    ("language", "label", "title"),
    [
        ("de", "dog", "Hund"),
        ("ja", "dog", "犬"),
        ("de", "couch", "Sofa"),
        ("ja", "traffic light", "信号機"),
        ("en", "dog", "dog"),
    ],
)
def test_labels_translate_through_zopes_catalog(language, label, title):
    """Read with the class Zope reads ``locales/*/LC_MESSAGES/*.mo`` with."""
    path = update.LOCALES / language / "LC_MESSAGES" / f"{update.DOMAIN}.mo"
    catalog = GettextMessageCatalog(language, update.DOMAIN, str(path))
    assert catalog.queryMessage(label, label) == title


def test_all_coco_labels_are_msgids():
    template = update.build_template()
    assert all(template.get(label) is not None for label in COCO_LABELS)
