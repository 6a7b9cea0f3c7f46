"""Flask-Babel: Chinese first; an English catalogue can be added without touching templates."""

from __future__ import annotations

from flask import Flask, session
from flask_babel import Babel

from tracker.paths import TRANSLATIONS_DIR

LOCALES = ("zh_Hans_CN", "en")


def select_locale() -> str:
    """The user's chosen language, else Chinese (the product's first language)."""
    chosen = session.get("locale")
    return chosen if chosen in LOCALES else LOCALES[0]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale)
