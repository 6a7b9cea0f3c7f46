"""Where the templates, static files and migrations are: beside the package in a built wheel,
at the top of the checkout in development (the product card's layout)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


TEMPLATE_DIR = _find("templates")
STATIC_DIR = _find("static")
MIGRATIONS_DIR = _find("migrations")
TRANSLATIONS_DIR = _find("translations")
