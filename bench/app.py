"""The app as the benchmarks serve it: the real ``create_app`` plus one bare route, the floor every page
is measured against (the same request, session and login handling, no page work).

    gunicorn --workers 4 'bench.app:create_app()'
"""

from __future__ import annotations

from flask import Flask
from flask_login import login_required

from tracker import create_app as create_tracker_app
from tracker.auth import current_membership

BARE_PATH = "/_bench/bare"


def add_bare_route(app: Flask) -> Flask:
    """``/_bench/bare``: logged in, the acting membership loaded, a few bytes of text — nothing else."""

    @login_required
    def bare():
        return f"ok {current_membership().id}"

    if "bench_bare" not in app.view_functions:
        app.add_url_rule(BARE_PATH, "bench_bare", bare)
    return app


def create_app(config: object | None = None) -> Flask:
    return add_bare_route(create_tracker_app(config))
