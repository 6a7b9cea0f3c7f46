"""``/healthz`` for load balancers and monitoring: the app answers, and its database does and is migrated."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    try:
        with current_app.extensions["tracker.engine"].connect() as conn:
            conn.execute(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError:
        current_app.logger.exception("health check: database unreachable or not migrated")
        return {"status": "database unreachable or not migrated"}, 503
    return {"status": "ok"}
