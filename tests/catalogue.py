"""The English catalogue for tests: compiled from the .po in git, as `make` does, when the .mo is missing or
older (the .mo is generated, not kept in git), and the strings the code marks for translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tracker.paths import PACKAGE_DIR, TRANSLATIONS_DIR

ROOT = PACKAGE_DIR.parent
PO = TRANSLATIONS_DIR / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
# pybabel's default marks (_, gettext, N_ …) plus ours; the Makefile's `make translations` passes the same.
KEYWORDS = ("_l", "lazy_gettext", "Msg", "ActionError", "_deny")


def read_catalogue():
    with PO.open("rb") as handle:
        return read_po(handle, locale="en")


def compile_catalogue() -> Path:
    """Compile messages.po to messages.mo unless the .mo is already newer."""
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        catalogue = read_catalogue()
        with MO.open("wb") as handle:
            write_mo(handle, catalogue)
    return MO


def extracted() -> dict[str, list[str]]:
    """Every msgid the templates and the package mark, with where it comes from (as babel.cfg maps them)."""
    found: dict[str, list[str]] = {}
    sources = ((ROOT / "tracker", [("**.py", "python")]), (ROOT / "templates", [("**.html", "jinja2")]))
    keywords = {**DEFAULT_KEYWORDS, **dict.fromkeys(KEYWORDS)}
    for folder, method_map in sources:
        for filename, lineno, message, *_ in extract_from_dir(str(folder), method_map, keywords=keywords):
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                found.setdefault(msgid, []).append(f"{folder.name}/{filename}:{lineno}")
    return found
