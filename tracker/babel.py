"""Flask-Babel: Chinese first, English second (docs/I18N.md).

The language is the one chosen in this browser session (the switch in the top bar, which also works
on the login page), else the logged-in user's stored choice (``User.locale``), else Chinese. This
module is the web boundary of ``tracker.i18n``: it translates ``Msg`` texts and refused actions, and
formats dates and numbers the way the chosen language writes them.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import flask_babel
from babel import dates, numbers
from flask import Flask, has_request_context, session
from flask.globals import _cv_app
from flask_babel import Babel, get_locale
from flask_login import current_user
from jinja2 import pass_eval_context
from markupsafe import Markup

from tracker.i18n import LOCALES, Msg
from tracker.paths import TRANSLATIONS_DIR
from tracker.timeutil import local_datetime

__all__ = ["LOCALES", "current_locale", "current_translations", "gettext", "select_locale", "translate"]


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


# --- the language in force, found once per request ---------------------------------------------------------


def _babel_state() -> tuple[dict | None, Any]:
    """The app context's ``g`` (as a dict) and the locale object Flask-Babel keeps in it (None before the
    first lookup, or after ``flask_babel.refresh``)."""
    ctx = _cv_app.get(None)
    if ctx is None:
        return None, None
    kept = vars(ctx.g)
    return kept, getattr(kept.get("_flask_babel"), "babel_locale", None)


def current_locale():
    """``flask_babel.get_locale()`` without its walk through the context proxies once it is known."""
    _kept, locale = _babel_state()
    return locale if locale is not None else get_locale()


def current_translations():
    """``flask_babel.get_translations()``, kept on the app context for the locale in force.

    Flask-Babel finds them through several context proxies on every call (tens of µs here), and a list
    page translates hundreds of labels. They are kept beside the very locale object Flask-Babel holds,
    so ``force_locale`` and ``refresh`` (which replace or drop it) are honoured."""
    kept, locale = _babel_state()
    if kept is None:
        return flask_babel.get_translations()
    cached = kept.get("_tracker_translations")
    if cached is not None and locale is not None and cached[0] is locale:
        return cached[1]
    translations = flask_babel.get_translations()
    kept["_tracker_translations"] = (_babel_state()[1], translations)
    return translations


def gettext(string: str, **variables: Any) -> str:
    """``flask_babel.gettext`` through ``current_translations``."""
    text = current_translations().ugettext(string)
    return text % variables if variables else text


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
    return current_locale() or LOCALES[0]


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
    if value is None:
        return ""
    if isinstance(value, int):  # counts: a report prints thousands of them, mostly the same few
        return _format_count(value, str(_locale()))
    return numbers.format_decimal(value, locale=_locale())


@functools.lru_cache(maxsize=4096)
def _format_count(value: int, locale: str) -> str:
    return numbers.format_decimal(value, locale=locale)


def format_percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals: 0.973 → 97.3%."""
    if fraction is None:
        return ""
    return _format_fraction(fraction, digits, str(_locale()))


@functools.lru_cache(maxsize=4096)
def _format_fraction(fraction: float, digits: int, locale: str) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return numbers.format_percent(fraction, pattern, locale=locale)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LOCALES[0])
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    Babel(app, locale_selector=select_locale)
    # Templates translate through current_translations: the same texts, without Flask-Babel's lookup of
    # the context on every one of the hundreds of labels of a list page.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: current_translations().ugettext(s),
        ngettext=lambda s, p, n: current_translations().ungettext(s, p, n),
        pgettext=lambda c, s: current_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: current_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext)


@pass_eval_context
def _template_gettext(eval_ctx, string: str, **variables: Any) -> str:
    """``_()`` in templates: Jinja's "newstyle" gettext (escaped, always %-formatted) in one call instead
    of three (the ``_`` alias, the context's call and the wrapped function)."""
    text = current_translations().ugettext(string)
    if eval_ctx.autoescape:
        text = Markup(text)
    return text % variables
