"""Who is logged in, and through which membership they act.

Flask-Login keeps the user id and a session generation; bumping ``User.session_generation``
(deactivation, password or role change) ends every existing session.

Two checks run before every page: the idle timeout (the session's last request is kept in it, and a
session idle longer than PERMANENT_SESSION_LIFETIME is ended and security-logged, on top of the cookie's
own signed expiry), and a forced password change (an admin's reset with a temporary password sends the
user to 修改密码 from every page until a new one is set). The API reads no session and has neither.
"""

from __future__ import annotations

from flask import Flask, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext
from flask_login import LoginManager, UserMixin, current_user, logout_user
from sqlalchemy import select

from tracker import db, securitylog
from tracker.models import Membership, User
from tracker.timeutil import utcnow

LAST_SEEN = "_seen"  # session key: when the session's last request came, in seconds since the epoch
# What a user whose password an admin reset may still open: the change page, logging out, the language.
OPEN_DURING_PASSWORD_CHANGE = frozenset({"profile.change_password", "auth.logout", "locale.switch", "static",
                                         "health.healthz"})

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "请先登录"
login_manager.localize_callback = gettext  # the message in the user's language
login_manager.session_protection = "strong"


class SessionUser(UserMixin):
    """The logged-in user as Flask-Login sees it; ``id`` carries the session generation."""

    def __init__(self, user: User):
        self.user = user
        self.id = f"{user.id}:{user.session_generation}"

    @property
    def memberships(self) -> list[Membership]:
        return [m for m in self.user.memberships if m.active]


@login_manager.user_loader
def _load_user(token: str) -> SessionUser | None:
    try:
        user_id, generation = (int(part) for part in token.split(":"))
    except ValueError:
        return None
    user = db.session().get(User, user_id)
    if user is None or not user.active or user.session_generation != generation:
        return None
    return SessionUser(user)


def current_membership() -> Membership:
    """The membership the user acts through now (the first active one unless switched)."""
    if not current_user.is_authenticated:
        abort(401)
    memberships = current_user.memberships
    if not memberships:
        abort(403)
    chosen = session.get("membership_id")
    for membership in memberships:
        if membership.id == chosen:
            return membership
    return memberships[0]


def membership_by_id(membership_id: int) -> Membership | None:
    return db.session().scalar(
        select(Membership).where(Membership.id == membership_id, Membership.user_id == current_user.user.id,
                                 Membership.active.is_(True))
    )


def mark_seen() -> None:
    session[LAST_SEEN] = int(utcnow().timestamp())


def clear_session() -> None:
    """Empty the session (a new one after login or logout: no session fixation), keeping only the language."""
    chosen_locale = session.get("locale")
    session.clear()
    session.permanent = True  # a flag kept in the session itself: clear() dropped it (see security.py)
    if chosen_locale:
        session["locale"] = chosen_locale


def _end_idle_session():
    if request.blueprint == "api" or request.endpoint == "static" or "_user_id" not in session:
        return None
    now = utcnow()
    seen = session.get(LAST_SEEN)
    idle = current_app.permanent_session_lifetime.total_seconds()
    if isinstance(seen, int | float) and now.timestamp() - seen > idle:
        s = db.session()
        user = _load_user(str(session.get("_user_id", "")))
        if user is not None:
            securitylog.record(s, "session_timeout", now=now, user=user.user, remote_addr=request.remote_addr or "",
                               detail={"idle_minutes": int((now.timestamp() - seen) // 60)})
            s.commit()
        logout_user()
        clear_session()
        flash(gettext("长时间未操作，已自动退出，请重新登录"), "info")
        return None  # login_required sends the request to the login page
    mark_seen()
    return None


def _require_password_change():
    if request.blueprint == "api" or request.endpoint in OPEN_DURING_PASSWORD_CHANGE:
        return None
    if current_user.is_authenticated and current_user.user.must_change_password:
        return redirect(url_for("profile.change_password"), 303)
    return None


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(_end_idle_session)
    app.before_request(_require_password_change)
