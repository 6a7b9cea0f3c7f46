"""Who is logged in, and through which membership they act.

Flask-Login keeps the user id and a session generation; bumping ``User.session_generation``
(deactivation, password or role change) ends every existing session.
"""

from __future__ import annotations

from flask import Flask, abort, session
from flask_babel import gettext
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select

from tracker import db
from tracker.models import Membership, User

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


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
