"""Login, logout, and switching the membership one acts through."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from tracker import db
from tracker.accounts import authenticate
from tracker.auth import SessionUser, membership_by_id
from tracker.babel import translate
from tracker.forms import CsrfOnlyForm, LoginForm, SwitchMembershipForm, options
from tracker.operations import ActionError
from tracker.timeutil import utcnow
from tracker.views.dashboard import landing_url

bp = Blueprint("auth", __name__)


def safe_next(target: str | None, default: str | None = None) -> str:
    """Only a local path: ``?next=`` never leads off-site (``default``, else 待办, instead)."""
    if not target:
        return default or url_for("tasks.todo")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default or url_for("tasks.todo")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        s = db.session()
        try:
            user = authenticate(
                s, form.username.data, form.password.data, request.remote_addr or "", utcnow(),
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                window_minutes=current_app.config["LOGIN_WINDOW_MINUTES"],
            )
        except ActionError as exc:
            s.commit()  # the failed attempt is kept: it is what throttling counts
            flash(translate(exc), "error")
            return render_template("login.html", form=form), 401
        s.commit()
        # Viewers (领导/查阅) start on 总览, everyone else on 待办.
        first = next((m for m in user.memberships if m.active), None)
        next_url = safe_next(request.args.get("next"), landing_url(first))
        chosen_locale = session.get("locale")  # a language picked on the login page stays
        session.clear()  # no session fixation: a fresh session for the logged-in user
        if chosen_locale:
            session["locale"] = chosen_locale
        login_user(SessionUser(user))
        return redirect(next_url)
    return render_template("login.html", form=form)


@bp.post("/logout")
def logout():
    if CsrfOnlyForm().validate_on_submit():
        chosen_locale = session.get("locale")
        logout_user()
        session.clear()
        if chosen_locale:
            session["locale"] = chosen_locale
    return redirect(url_for("auth.login"))


@bp.post("/membership")
@login_required
def switch_membership():
    form = SwitchMembershipForm()
    form.membership_id.choices = options([(m.id, m.label) for m in current_user.memberships])
    if form.validate_on_submit() and membership_by_id(form.membership_id.data):
        session["membership_id"] = form.membership_id.data
        flash(_("已切换身份"), "info")
    return redirect(url_for("tasks.index"))
