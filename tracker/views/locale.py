"""The language switch in the top bar: Chinese or English, for this session and, when logged in, kept
on the user (``User.locale``) for the next login."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, session, url_for
from flask_login import current_user

from tracker import db
from tracker.accounts import set_locale
from tracker.auth import current_membership
from tracker.i18n import LOCALES
from tracker.timeutil import utcnow
from tracker.views.auth import safe_next

bp = Blueprint("locale", __name__)


@bp.post("/locale")
def switch():
    chosen = request.form.get("locale", "")  # CSRF is checked for every POST (security.py)
    if chosen not in LOCALES:
        abort(400)
    session["locale"] = chosen
    if current_user.is_authenticated and current_user.memberships:
        s = db.session()
        set_locale(s, current_membership(), utcnow(), current_user.user, chosen)
        s.commit()
    fallback = url_for("tasks.todo") if current_user.is_authenticated else url_for("auth.login")
    return redirect(safe_next(request.form.get("next"), fallback))
