"""Personal API tokens (个人API令牌): created and revoked by their user, bound to one membership.

A token is shown once, when it is made; only its SHA-256 is stored, with a short prefix so the user can
tell tokens apart. ``authenticate`` turns a presented token into the membership it acts as, exactly as
that membership acts on the web: a revoked token, a deactivated user or an ended membership fails.
Failed checks are written to ``login_attempt`` (under a username of their own) and throttled per
address, so guessing tokens from one address soon answers "too many requests".

Whatever ends a user's web sessions revokes their tokens too (``revoke_all``, called by ``accounts``), and
while an admin's forced reset waits for the user's new password every token of theirs is refused.

Like ``operations``: actor and now come in, every change writes an ``Event`` and a security-log entry,
nothing commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker import securitylog
from tracker.audit import ActionError, record_event
from tracker.models import ApiToken, LoginAttempt, Membership, User

TOKEN_PREFIX = "zg_"  # every token starts so, which makes a leaked one easy to recognise (secret scanners)
PREFIX_LENGTH = 11  # TOKEN_PREFIX and the first 8 random characters: shown in lists, never enough to guess
# The username under which failed token checks are kept in ``login_attempt`` (no real username has spaces).
FAILED_TOKEN_USERNAME = "(api token)"
# Writing ``last_used_at`` on every call would turn each read into a write; once a minute is exact enough.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
MAX_NAME_LENGTH = 100
UNAUTHORIZED_MESSAGE = "API令牌无效、已撤销或已停用"
THROTTLED_MESSAGE = "API令牌校验失败次数过多，请{minutes}分钟后再试"
PASSWORD_CHANGE_MESSAGE = "管理员已重置该用户的密码：请先登录网页设置新密码，在此之前API令牌不可用"


class TokenThrottled(ActionError):
    """Too many failed token checks from one address within the window."""


class TokenInvalid(ActionError):
    """The presented token is unknown, revoked, or its user or membership is no longer active."""


class PasswordChangeRequired(TokenInvalid):
    """The token is sound, but its user must first set a new password on the web (an admin's forced reset)."""


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``secret`` is the only time the whole token exists outside its hash."""

    token: ApiToken
    secret: str


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(s: Session, actor: Membership, now: dt.datetime, user: User, membership: Membership,
                 name: str, *, remote_addr: str = "") -> NewToken:
    """Make a token for ``user`` acting as ``membership`` (one of the user's own active memberships)."""
    name = (name or "").strip()
    if not name:
        raise ActionError("请填写令牌名称（如：省级平台对接）")
    if len(name) > MAX_NAME_LENGTH:
        raise ActionError("令牌名称不能超过{n}个字符", n=MAX_NAME_LENGTH)
    if actor.user_id != user.id:
        raise ActionError("只能为自己创建API令牌")
    if membership.user_id != user.id or not membership.active or not user.active:
        raise ActionError("所选身份不存在或已停用")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, membership_id=membership.id, name=name, prefix=secret[:PREFIX_LENGTH],
                     token_hash=hash_token(secret), created_at=now)
    s.add(token)
    s.flush()
    record_event(s, actor, now, "create_token", entity="api_token", entity_id=token.id,
                 data={"name": name, "prefix": token.prefix, "membership": membership.label})
    securitylog.record(s, "token_created", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail={"name": name, "prefix": token.prefix, "token_membership": membership.label})
    return NewToken(token, secret)


def revoke_token(s: Session, actor: Membership, now: dt.datetime, token: ApiToken, *, remote_addr: str = "") -> None:
    """撤销: the token fails from now on; the row stays for the record."""
    if token.user_id != actor.user_id:
        raise ActionError("只能撤销自己的API令牌")
    if token.revoked_at is not None:
        raise ActionError("该令牌已撤销")
    _revoke(s, actor, now, token, reason="by_user", remote_addr=remote_addr)
    s.flush()


def revoke_all(s: Session, actor: Membership | None, now: dt.datetime, user: User, *, reason: str,
               remote_addr: str = "") -> int:
    """Revoke every token of ``user`` not yet revoked (their sessions were ended: ``reason`` says why)."""
    live = list(s.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))))
    for token in live:
        _revoke(s, actor, now, token, reason=reason, remote_addr=remote_addr)
    s.flush()
    return len(live)


def _revoke(s: Session, actor: Membership | None, now: dt.datetime, token: ApiToken, *, reason: str,
            remote_addr: str) -> None:
    token.revoked_at = now
    record_event(s, actor, now, "revoke_token", entity="api_token", entity_id=token.id,
                 data={"name": token.name, "prefix": token.prefix, "reason": reason})
    securitylog.record(s, "token_revoked", now=now, user=token.user, membership=actor, remote_addr=remote_addr,
                       detail=securitylog.actor_detail(actor, token.user, name=token.name, prefix=token.prefix,
                                                       reason=reason))


def tokens_of(s: Session, user: User) -> list[ApiToken]:
    """A user's tokens, newest first, revoked ones included (they show as such)."""
    return list(s.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                          .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def token_of(s: Session, user: User, token_id: int) -> ApiToken | None:
    """One of the user's own tokens (None for anyone else's: it answers as not found)."""
    return s.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))


def authenticate(s: Session, secret: str, remote_addr: str, now: dt.datetime, *, max_failures: int,
                 window_minutes: int) -> ApiToken:
    """The active token behind ``secret``, its ``last_used_at`` kept; refuses while the address is throttled.

    The throttle is checked before the token, so a throttled address learns nothing about any token.
    """
    since = now - dt.timedelta(minutes=window_minutes)
    if recent_failures(s, remote_addr, since) >= max_failures:
        raise TokenThrottled(THROTTLED_MESSAGE.format(minutes=window_minutes))
    token = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret or "")))
    if token is None or not is_usable(token):
        s.add(LoginAttempt(username=FAILED_TOKEN_USERNAME, remote_addr=remote_addr[:64], success=False, at=now))
        s.flush()
        raise TokenInvalid(UNAUTHORIZED_MESSAGE)
    if token.user.must_change_password:  # not a failed check: the token is sound, its user must act first
        raise PasswordChangeRequired(PASSWORD_CHANGE_MESSAGE)
    last = token.last_used_at
    if last is None or _aware(last) <= now - LAST_USED_RESOLUTION:
        token.last_used_at = now
        s.flush()
    return token


def is_usable(token: ApiToken) -> bool:
    """Not revoked, and its user and membership (the same user's) still active."""
    membership = token.membership
    return (token.revoked_at is None and token.user.active and membership.active
            and membership.user_id == token.user_id)


def recent_failures(s: Session, remote_addr: str, since: dt.datetime) -> int:
    return s.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == FAILED_TOKEN_USERNAME, LoginAttempt.remote_addr == remote_addr[:64],
        LoginAttempt.success.is_(False), LoginAttempt.at >= since)) or 0


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
