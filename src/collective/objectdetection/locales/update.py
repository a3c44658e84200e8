"""Rebuild the catalogs: ``python -m collective.objectdetection.locales.update``.

Extracts the add-on's messages (``_("...")`` in Python, ``i18n:translate`` and
``i18n:attributes`` in templates and GenericSetup XML of the
``collective.objectdetection`` domain, and the detector's COCO label names) into
``collective.objectdetection.pot``, merges it into each language's ``.po`` (keeping
the translations) and compiles the ``.mo`` files Zope reads. The ``.mo`` files are
committed, so translations work without ``zope_i18n_compile_mo_files`` (tests,
production). ``--check`` changes nothing and exits 1 when a file is out of date.
"""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.messages.pofile import write_po
from datetime import datetime
from datetime import UTC
from detector_service.labels import COCO_LABELS
from html.parser import HTMLParser
from pathlib import Path

import gettext
import io
import re
import sys


DOMAIN = "collective.objectdetection"
LANGUAGES = ("de", "en", "ja")
LOCALES = Path(__file__).resolve().parent
PACKAGE = LOCALES.parent
TEMPLATE_SUFFIXES = (".pt", ".xml")
# Fixed, so that the files change only when the messages do.
CREATION_DATE = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = (
    "# Translations of collective.objectdetection.\n"
    "# This file is distributed under the same license as collective.objectdetection."
)


class _TemplateMessages(HTMLParser):
    """Messages of one domain in a page template or GenericSetup XML file."""

    def __init__(self, domain: str) -> None:
        super().__init__(convert_charrefs=True)
        self.domain = domain
        self.messages: list[tuple[str, int]] = []
        # per open element: its domain, the msgid parts it collects (None: it is
        # no i18n:translate element) and whether it is an i18n:name placeholder
        self.stack: list[tuple[str | None, list[str] | None, bool]] = []

    def current_domain(self) -> str | None:
        return self.stack[-1][0] if self.stack else None

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        domain = attributes.get("i18n:domain", self.current_domain())
        line = self.getpos()[0]
        if domain == self.domain:
            for name in (attributes.get("i18n:attributes") or "").split(";"):
                name = name.strip().split(" ")[0]
                if name and attributes.get(name):
                    self.messages.append((attributes[name], line))
        name = attributes.get("i18n:name")
        parts = self.collecting_parts()
        if name and parts is not None:
            parts.append(f"${{{name}}}")
        collects = None
        if "i18n:translate" in attributes and domain == self.domain:
            explicit = attributes["i18n:translate"]
            if explicit:
                self.messages.append((explicit, line))
            else:
                collects = []
        self.stack.append((domain, collects, bool(name)))

    def collecting_parts(self) -> list[str] | None:
        """The msgid being collected, unless inside an i18n:name placeholder."""
        for _domain, parts, named in reversed(self.stack):
            if named:
                return None
            if parts is not None:
                return parts
        return None

    def handle_startendtag(self, tag, attrs) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data) -> None:
        parts = self.collecting_parts()
        if parts is not None:
            parts.append(data)

    def handle_endtag(self, tag) -> None:
        if not self.stack:
            return
        _domain, parts, _named = self.stack.pop()
        if parts is not None:
            msgid = re.sub(r"\s+", " ", "".join(parts)).strip()
            if msgid:
                self.messages.append((msgid, self.getpos()[0]))


def template_messages(path: Path) -> list[tuple[str, int]]:
    parser = _TemplateMessages(DOMAIN)
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.messages


def python_messages(path: Path) -> list[tuple[str, int]]:
    return [
        (message, line)
        for line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords={"_": None}
        )
        if isinstance(message, str)
    ]


def build_template() -> Catalog:
    """The .pot: every message of the package, then the label names."""
    catalog = Catalog(
        domain=DOMAIN,
        project=DOMAIN,
        charset="utf-8",
        fuzzy=False,
        header_comment=HEADER,
        creation_date=CREATION_DATE,
    )
    for path in sorted(PACKAGE.rglob("*")):
        relative = str(path.relative_to(PACKAGE.parent.parent))
        if path.suffix == ".py" and "locales" not in path.parts:
            found = python_messages(path)
        elif path.suffix in TEMPLATE_SUFFIXES:
            found = template_messages(path)
        else:
            continue
        for msgid, line in found:
            catalog.add(msgid, locations=[(relative, line)])
    for label in COCO_LABELS:
        catalog.add(label, locations=[("detector_service/labels.py", 0)])
    return catalog


def render_po(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    # File names without line numbers: moving code must not make the catalogs stale.
    write_po(buffer, catalog, ignore_obsolete=True, width=88, include_lineno=False)
    return buffer.getvalue()


def render_mo(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def language_catalog(language: str, template: Catalog) -> Catalog:
    po_path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if po_path.exists():
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=language, domain=DOMAIN)
    else:
        catalog = Catalog(locale=language, domain=DOMAIN, charset="utf-8")
    catalog.update(template, no_fuzzy_matching=True)
    catalog.header_comment = HEADER
    catalog.fuzzy = False
    return catalog


def planned_files() -> dict[Path, bytes]:
    """Every catalog file with the content it should have."""
    template = build_template()
    files = {LOCALES / f"{DOMAIN}.pot": render_po(template)}
    for language in LANGUAGES:
        catalog = language_catalog(language, template)
        folder = LOCALES / language / "LC_MESSAGES"
        files[folder / f"{DOMAIN}.po"] = render_po(catalog)
        files[folder / f"{DOMAIN}.mo"] = render_mo(catalog)
    return files


def _messages(mo: bytes) -> dict:
    return gettext.GNUTranslations(io.BytesIO(mo))._catalog


def is_current(path: Path, content: bytes) -> bool:
    """Whether ``path`` holds ``content``; for ``.mo`` files, the same messages.

    A Zope started with ``zope_i18n_compile_mo_files`` (a deployment's choice)
    recompiles a ``.mo`` older than its ``.po`` with another compiler: other
    bytes, the same messages.
    """
    if not path.exists():
        return False
    if path.suffix == ".mo":
        return _messages(path.read_bytes()) == _messages(content)
    return path.read_bytes() == content


def stale_files() -> dict[Path, bytes]:
    """The catalog files that differ from what the code asks for."""
    return {
        path: content
        for path, content in planned_files().items()
        if not is_current(path, content)
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = stale_files()
    for path, content in stale.items():
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        print(f"{'out of date' if check else 'updated'}: {path.relative_to(LOCALES)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
