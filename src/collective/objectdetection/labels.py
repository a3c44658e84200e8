"""Detected labels as words people search for: their translations."""

from __future__ import annotations

from collective.objectdetection import PACKAGE_NAME
from zope.i18n import translate


# The languages whose words for a label are added to SearchableText, so that
# "dog", "Hund" and "犬" all find a photo of a dog whatever the site language.
SEARCH_LANGUAGES = ("en", "de", "ja")


def label_title(label: str, language: str | None = None, context=None) -> str:
    """The label in ``language`` (or the request's language), or the label itself."""
    return translate(
        label,
        domain=PACKAGE_NAME,
        target_language=language,
        context=context,
        default=label,
    )


def label_translations(label: str) -> list[str]:
    """The label followed by its distinct translations in SEARCH_LANGUAGES."""
    words = [label]
    for language in SEARCH_LANGUAGES:
        title = label_title(label, language)
        if title not in words:
            words.append(title)
    return words
