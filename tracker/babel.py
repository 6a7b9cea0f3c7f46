"""Flask-Babel: Chinese first, English second (docs/I18N.md).

The language is the one chosen in this browser session (the switch in the top bar, which also works
on the login page), else the logged-in user's stored choice (``User.locale``), else Chinese. This
module is the web boundary of ``tracker.i18n``: it translates ``Msg`` texts and refused actions, and
formats dates and numbers the way the chosen language writes them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from babel import dates, numbers
from flask import Flask, has_request_context, session
from flask_babel import Babel, get_locale, gettext
from flask_login import current_user

from tracker.i18n import LOCALES, Msg
from tracker.paths import TRANSLATIONS_DIR
from tracker.timeutil import local_datetime

__all__ = ["LOCALES", "select_locale", "translate"]


def select_locale() -> str:
    """This session's choice, else the user's stored one, else Chinese (the product's first language)."""
    if not has_request_context():
        return LOCALES[0]
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    if current_user.is_authenticated and current_user.user.locale in LOCALES:
        return current_user.user.locale
    return LOCALES[0]


def translate(text: Any) -> str:
    """A text in the user's language: a ``Msg`` (or a refused action's message) is looked up by its
    Chinese msgid and its parameters filled in afterwards; a plain string is looked up as it is (texts
    not in the catalogue — names, user input — come back unchanged)."""
    if isinstance(text, Exception):  # an ActionError (or a DeadlineError) carries its Msg
        found = [m for m in (getattr(text, "msg", None), *text.args[:1]) if isinstance(m, Msg)]
        text = found[0] if found else str(text)
    if isinstance(text, Msg):
        params = {k: translate(v) if isinstance(v, Msg) else v for k, v in text.params.items()}
        translated = gettext(text.msgid)
        return translated.format(**params) if params else translated
    if text is None or text == "":
        return ""
    return gettext(str(text))


# --- dates and numbers as the language writes them -----------------------------------------------


def _locale():
    return get_locale() or LOCALES[0]


def format_day(value: dt.date | None) -> str:
    """A date to read: 2026年3月2日 / Mar 2, 2026. Form fields and URLs keep ISO (``iso_day``)."""
    return dates.format_date(value, "medium", locale=_locale()) if value else ""


def iso_day(value: dt.date | None) -> str:
    """A date for an ``<input type=date>`` or a query string: 2026-03-02 in every language."""
    return value.isoformat() if value else ""


def format_moment(value: dt.datetime | None) -> str:
    """An instant in Beijing time: 2026年3月2日 09:00 / Mar 2, 2026 09:00."""
    if value is None:
        return ""
    local = local_datetime(value)
    return f"{format_day(local.date())} {local:%H:%M}"


def format_month(value: dt.date | None) -> str:
    """A month: 2026年3月 / Mar 2026."""
    return dates.format_skeleton("yMMM", value, locale=_locale()) if value else ""


def format_weekday(value: dt.date) -> str:
    """The short weekday: 周一 / Mon."""
    return dates.format_date(value, "EEE", locale=_locale())


def format_number(value: float | int | None) -> str:
    """A count or measure with the language's grouping: 12,345."""
    return "" if value is None else numbers.format_decimal(value, locale=_locale())


def format_percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals: 0.973 → 97.3%."""
    if fraction is None:
        return ""
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return numbers.format_percent(fraction, pattern, locale=_locale())


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LOCALES[0])
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    Babel(app, locale_selector=select_locale)
