"""Login, logout, and switching the membership one acts through."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from tracker import db, securitylog
from tracker.accounts import authenticate
from tracker.auth import SessionUser, clear_session, mark_seen, membership_by_id
from tracker.babel import translate
from tracker.forms import CsrfOnlyForm, LoginForm, SwitchMembershipForm, options
from tracker.operations import ActionError
from tracker.timeutil import utcnow
from tracker.views.dashboard import landing_url

bp = Blueprint("auth", __name__)


def safe_next(target: str | None, default: str | None = None) -> str:
    """Only a local path: ``?next=`` never leads off-site (``default``, else 待办, instead)."""
    if not target or not is_local_path(target):
        return default or url_for("tasks.todo")
    return target


def is_local_path(target: str) -> bool:
    """A path on this site. Browsers drop tabs and newlines and read ``\\`` as ``/`` before the query, so
    ``/\\evil.com`` and ``/<tab>/evil.com`` lead off-site as ``//evil.com`` does; encoded forms are checked
    decoded as well."""
    if any(ch.isspace() or not ch.isprintable() for ch in target):
        return False
    for candidate in (target, unquote(target)):
        path = candidate.split("?", 1)[0].split("#", 1)[0]
        if any(ch.isspace() or not ch.isprintable() for ch in path):
            return False
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//") or "\\" in path:
            return False
    return True


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
        # No session fixation: nothing of the session from before the login survives (a language picked on
        # the login page stays); the cookie Flask signs anew holds only what the logged-in session sets.
        clear_session()
        login_user(SessionUser(user))
        mark_seen()
        return redirect(next_url)
    return render_template("login.html", form=form)


@bp.post("/logout")
def logout():
    if CsrfOnlyForm().validate_on_submit():
        if current_user.is_authenticated:
            s = db.session()
            securitylog.record(s, "logout", now=utcnow(), user=current_user.user, remote_addr=request.remote_addr or "")
            s.commit()
        logout_user()
        clear_session()
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
