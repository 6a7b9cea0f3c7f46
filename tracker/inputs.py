"""Hostile input at the web boundary: what no view should have to think about.

- ``<int:…>`` in a URL is a 32-bit id: a larger number names nothing (404) instead of overflowing the
  database driver (SQLite refuses integers above 2⁶³, PostgreSQL compares them as numeric).
- NUL characters in a query string or form are refused with a Chinese message (PostgreSQL text cannot
  hold them, and no one types them); the JSON API checks its own input (``api/schemas.py``).
- ``small_int`` reads an id-like query parameter, ``None`` when it is not a 32-bit integer.
"""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

MAX_INT = 2**31 - 1  # ids and counts are 32-bit in the database
API_PREFIX = "/api/"


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` within 0 … 2³¹−1 unless a route says otherwise."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_INT, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def small_int(value: str | None) -> int | None:
    """A query parameter as an integer within ±(2³¹−1); ``None`` when absent or anything else."""
    if value is None:
        return None
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        return None
    number = int(text)
    return number if -MAX_INT <= number <= MAX_INT else None


def has_nul(values) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values.getlist(key)) for key in values)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntConverter

    @app.before_request
    def _refuse_nul():
        if request.path.startswith(API_PREFIX):
            return None
        if has_nul(request.args) or (request.method != "GET" and has_nul(request.form)):
            return render_template("error.html", title=_("请求无效"),
                                   message=_("输入内容含有不允许的控制字符（NUL），请删除后重试")), 400
        return None
