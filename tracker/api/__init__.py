"""The JSON API at ``/api/v1`` (DESIGN: 统一督办、统一调度与办结反馈, 000 L908).

Personal Bearer tokens only — session cookies are never read here, so the blueprint needs no CSRF
token. Every endpoint is declared once in ``registry`` (by ``tasks``, ``reference`` and ``ledgers``);
routes, request validation and ``/api/v1/openapi.json`` all come from that one list.
"""

from __future__ import annotations

import functools
import json

from flask import Blueprint, Flask, Response, current_app

from tracker.api import ledgers, openapi, reference, registry, tasks  # noqa: F401  (they declare the endpoints)
from tracker.security import csrf


@functools.lru_cache(maxsize=1)
def _document_text() -> str:
    return json.dumps(openapi.document(), ensure_ascii=False, sort_keys=False)


def openapi_json() -> Response:
    """The document is public: it holds no data, and clients read it before they have a token."""
    return current_app.response_class(_document_text(), mimetype="application/json")


def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def make_blueprint() -> Blueprint:
    bp = Blueprint("api", __name__, url_prefix=registry.PREFIX)
    bp.add_url_rule("/openapi.json", endpoint="openapi", view_func=openapi_json, methods=["GET"])
    registry.register(bp)
    bp.after_request(_no_store)
    return bp


def init_app(app: Flask) -> None:
    bp = make_blueprint()
    csrf.exempt(bp)
    app.register_blueprint(bp)
