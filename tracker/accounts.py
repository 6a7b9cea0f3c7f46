"""Operations on users, memberships, units and regions, passwords, and login checks with throttling.

Like ``operations``: actor and now come in, every change writes an ``Event``, nothing commits. Changes to
accounts also write the security log (``securitylog``), with the request's address when a view passes it.

One rule ends access: whatever ends a user's web sessions (``User.session_generation`` bumped: deactivation,
a password set or changed, a membership granted, ended or its role changed) also revokes that user's API
tokens (``_end_access``), so a token never outlives the session rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from tracker import securitylog, tokens
from tracker.audit import ActionError, record_event
from tracker.i18n import LOCALES, N_
from tracker.models import (
    LoginAttempt,
    Membership,
    Region,
    Role,
    Unit,
    UnitAlias,
    UnitKind,
    User,
)
from tracker.permissions import in_subtree

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200  # the forms' limit too; a longer one only costs hashing time


def check_password_policy(password: str, *, username: str = "") -> None:
    """Every path that sets a password runs this: admin create and reset, the user's own change, the CLI."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ActionError("密码至少需要{n}个字符", n=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ActionError("密码不能超过{n}个字符", n=MAX_PASSWORD_LENGTH)
    classes = sum(any(pred(ch) for ch in password) for pred in (str.isdigit, str.isalpha))
    if classes < 2 and not any(not ch.isalnum() for ch in password):
        raise ActionError("密码须同时包含字母和数字")
    if len(username) >= 3 and username.lower() in password.lower():
        raise ActionError("密码不能包含用户名")


def _require_admin(actor: Membership | None, region: Region) -> None:
    """Admins act within their subtree; ``None`` is the operator at the command line."""
    if actor is None:
        return
    if actor.role != Role.admin.value or not in_subtree(actor, region):
        raise ActionError("您无权管理该地区的数据")


def create_region(s: Session, actor: Membership | None, now: dt.datetime, name: str, parent: Region,
                  *, is_zone: bool = False) -> Region:
    name = name.strip()
    if not name:
        raise ActionError("请填写地区名称")
    _require_admin(actor, parent)
    if parent.level >= 3:
        raise ActionError("乡镇之下不能再设地区")
    if s.scalar(select(Region.id).where(Region.parent_id == parent.id, Region.name == name)):
        raise ActionError("{parent}下已有“{name}”", parent=parent.name, name=name)
    region = Region(name=name, level=parent.level + 1, parent_id=parent.id, is_zone=is_zone)
    s.add(region)
    s.flush()
    region.path = f"{parent.path}{region.id}/"
    record_event(s, actor, now, "create", entity="region", entity_id=region.id,
                 data={"name": name, "parent": parent.name})
    s.flush()
    return region


def create_unit(s: Session, actor: Membership | None, now: dt.datetime, name: str, region: Region, kind: str,
                aliases: list[str] | tuple[str, ...] = ()) -> Unit:
    name = name.strip()
    if not name:
        raise ActionError("请填写单位名称")
    if kind not in {k.value for k in UnitKind}:
        raise ActionError("单位类型无效")
    _require_admin(actor, region)
    if s.scalar(select(Unit.id).where(Unit.name == name, Unit.region_id == region.id)):
        raise ActionError("{region}已有单位“{name}”", region=region.name, name=name)
    unit = Unit(name=name, region_id=region.id, kind=kind, active=True)
    for alias in dict.fromkeys(a.strip() for a in aliases if a.strip() and a.strip() != name):
        unit.aliases.append(UnitAlias(alias=alias))
    s.add(unit)
    s.flush()
    record_event(s, actor, now, "create", entity="unit", entity_id=unit.id,
                 data={"name": name, "region": region.name, "kind": kind, "aliases": [a.alias for a in unit.aliases]})
    return unit


@dataclass
class NewUser:
    username: str
    display_name: str
    password: str
    email: str = ""
    phone: str = ""


def create_user(s: Session, actor: Membership | None, now: dt.datetime, new: NewUser, unit: Unit, role: str,
                *, hash_method: str = "scrypt", remote_addr: str = "") -> User:
    username = new.username.strip()
    if not username or len(username) > 80 or any(ch.isspace() for ch in username):
        raise ActionError("用户名不能为空，也不能含空格")
    if s.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise ActionError("用户名“{username}”已被使用", username=username)
    check_password_policy(new.password, username=username)
    _check_role(role)
    _require_admin(actor, unit.region)
    user = User(username=username, display_name=new.display_name.strip() or username,
                email=new.email.strip() or None, phone=new.phone.strip() or None,
                password_hash=generate_password_hash(new.password, method=hash_method), active=True,
                created_at=now, password_changed_at=now)
    s.add(user)
    s.flush()
    record_event(s, actor, now, "create", entity="user", entity_id=user.id,
                 data={"username": username, "email": user.email})
    securitylog.record(s, "user_created", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail=securitylog.actor_detail(actor, user))
    add_membership(s, actor, now, user, unit, role, remote_addr=remote_addr)
    return user


def _check_role(role: str) -> None:
    if role not in {r.value for r in Role}:
        raise ActionError("角色无效")


def add_membership(s: Session, actor: Membership | None, now: dt.datetime, user: User, unit: Unit,
                   role: str, *, remote_addr: str = "") -> Membership:
    _check_role(role)
    _require_admin(actor, unit.region)
    existing = s.scalar(select(Membership).where(
        Membership.user_id == user.id, Membership.unit_id == unit.id, Membership.role == role))
    if existing is not None and existing.active:
        raise ActionError("该用户已有此身份")
    if existing is not None:
        existing.active = True
        membership = existing
    else:
        membership = Membership(user=user, unit_id=unit.id, role=role, active=True)
        s.add(membership)
    s.flush()
    record_event(s, actor, now, "grant", entity="membership", entity_id=membership.id,
                 data={"user": user.username, "unit": unit.name, "role": role})
    securitylog.record(s, "membership_added", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail=securitylog.actor_detail(actor, user, unit=unit.name, role=role))
    _end_access(s, actor, now, user, "membership_added", remote_addr)
    return membership


def end_membership(s: Session, actor: Membership | None, now: dt.datetime, membership: Membership, *,
                   remote_addr: str = "") -> None:
    _require_admin(actor, membership.unit.region)
    if not membership.active:
        raise ActionError("该身份已停用")
    membership.active = False
    user = membership.user
    record_event(s, actor, now, "revoke", entity="membership", entity_id=membership.id,
                 data={"user": user.username, "unit": membership.unit.name, "role": membership.role})
    securitylog.record(s, "membership_ended", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail=securitylog.actor_detail(actor, user, unit=membership.unit.name, role=membership.role))
    _end_access(s, actor, now, user, "membership_ended", remote_addr)
    s.flush()


def change_role(s: Session, actor: Membership | None, now: dt.datetime, membership: Membership, role: str, *,
                remote_addr: str = "") -> Membership:
    """变更角色: the same user at the same unit in another role — the old membership ends, the new one (or
    the earlier one of that role, made active again) takes its place; tokens bound to the old one end too."""
    _check_role(role)
    _require_admin(actor, membership.unit.region)
    if not membership.active:
        raise ActionError("该身份已停用")
    if membership.role == role:
        raise ActionError("角色未改变")
    user, unit = membership.user, membership.unit
    target = s.scalar(select(Membership).where(
        Membership.user_id == user.id, Membership.unit_id == unit.id, Membership.role == role))
    if target is not None and target.active:
        raise ActionError("该用户已有此身份")
    membership.active = False
    if target is None:
        target = Membership(user=user, unit_id=unit.id, role=role, active=True)
        s.add(target)
    target.active = True
    s.flush()
    record_event(s, actor, now, "change_role", entity="membership", entity_id=target.id,
                 data={"user": user.username, "unit": unit.name, "from": membership.role, "role": role,
                       "ended_membership": membership.id})
    securitylog.record(s, "role_changed", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail=securitylog.actor_detail(actor, user, unit=unit.name, old_role=membership.role,
                                                       role=role))
    _end_access(s, actor, now, user, "role_changed", remote_addr)
    s.flush()
    return target


def _end_access(s: Session, actor: Membership | None, now: dt.datetime, user: User, reason: str,
                remote_addr: str) -> None:
    """End every web session of ``user`` and revoke the user's API tokens (the module's one rule)."""
    user.session_generation += 1
    tokens.revoke_all(s, actor, now, user, reason=reason, remote_addr=remote_addr)


def _admin_covers_user(actor: Membership | None, user: User) -> None:
    if actor is None:
        return
    if not user.memberships or not all(in_subtree(actor, m.unit.region) for m in user.memberships):
        if actor.role != Role.admin.value or not any(in_subtree(actor, m.unit.region) for m in user.memberships):
            raise ActionError("您无权管理该用户")


def set_user_active(s: Session, actor: Membership | None, now: dt.datetime, user: User, active: bool, *,
                    remote_addr: str = "") -> None:
    _admin_covers_user(actor, user)
    if actor is not None and actor.user_id == user.id and not active:
        raise ActionError("不能停用自己的账号")
    if user.active == active:
        return
    user.active = active
    record_event(s, actor, now, "activate" if active else "deactivate", entity="user", entity_id=user.id,
                 data={"username": user.username})
    securitylog.record(s, "user_activated" if active else "user_deactivated", now=now, user=user, membership=actor,
                       remote_addr=remote_addr, detail=securitylog.actor_detail(actor, user))
    _end_access(s, actor, now, user, "user_activated" if active else "user_deactivated", remote_addr)
    s.flush()


def set_password(s: Session, actor: Membership | None, now: dt.datetime, user: User, password: str,
                 *, temporary: bool = False, hash_method: str = "scrypt", remote_addr: str = "") -> None:
    """重置密码 by an admin (or the operator at the command line). ``temporary``: a password the admin hands
    over — the user must choose their own after logging in (``must_change_password``), before anything else."""
    if actor is not None and actor.user_id != user.id:
        _admin_covers_user(actor, user)
    check_password_policy(password, username=user.username)
    _store_password(user, password, now, hash_method)
    user.must_change_password = temporary
    record_event(s, actor, now, "set_password", entity="user", entity_id=user.id,
                 data={"username": user.username, "temporary": temporary})
    securitylog.record(s, "password_reset", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail=securitylog.actor_detail(actor, user, temporary=temporary))
    _end_access(s, actor, now, user, "password_reset", remote_addr)
    s.flush()


def change_own_password(s: Session, actor: Membership | None, now: dt.datetime, user: User, current: str,
                        new: str, *, hash_method: str = "scrypt", remote_addr: str = "") -> None:
    """修改密码 by the user: the current password first; clears a forced reset. Every other session of the
    user ends (the view logs the current one in again) and the user's API tokens are revoked."""
    if actor is not None and actor.user_id != user.id:
        raise ActionError("只能修改自己的密码")
    if not check_password_hash(user.password_hash, current or ""):
        raise ActionError("当前密码不正确")
    if new == current:
        raise ActionError("新密码不能与当前密码相同")
    check_password_policy(new, username=user.username)
    _store_password(user, new, now, hash_method)
    was_forced, user.must_change_password = user.must_change_password, False
    record_event(s, actor, now, "change_password", entity="user", entity_id=user.id,
                 data={"username": user.username, "after_reset": was_forced})
    securitylog.record(s, "password_changed", now=now, user=user, membership=actor, remote_addr=remote_addr,
                       detail={"after_reset": was_forced})
    _end_access(s, actor, now, user, "password_changed", remote_addr)
    s.flush()


def _store_password(user: User, password: str, now: dt.datetime, hash_method: str) -> None:
    user.password_hash = generate_password_hash(password, method=hash_method)
    user.password_changed_at = now


def set_locale(s: Session, actor: Membership, now: dt.datetime, user: User, locale: str) -> None:
    """The language a user reads the pages in (zh_Hans_CN or en); users choose their own."""
    if locale not in LOCALES:
        raise ActionError("不支持该语言")
    if actor.user_id != user.id:
        _admin_covers_user(actor, user)
    if user.locale == locale:
        return
    record_event(s, actor, now, "set_locale", entity="user", entity_id=user.id,
                 data={"username": user.username, "old_locale": user.locale, "locale": locale})
    user.locale = locale
    s.flush()


# --- login --------------------------------------------------------------------------------------

LOCKED_MESSAGE = N_("登录失败次数过多，请{minutes}分钟后再试")
FAILED_MESSAGE = N_("用户名或密码错误")


def authenticate(s: Session, username: str, password: str, remote_addr: str, now: dt.datetime, *,
                 max_failures: int, window_minutes: int) -> User:
    """Check a login, recording the attempt; refuses while the account or address is throttled.

    Attempts live in the database, so the limit holds across worker processes and hosts.
    """
    username = (username or "").strip()[:80]
    since = now - dt.timedelta(minutes=window_minutes)
    user = s.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if _recent_failures(s, since, username=username) >= max_failures or _recent_failures(
        s, since, remote_addr=remote_addr) >= max_failures * 4:
        _log_attempt(s, username, remote_addr, now, success=False)
        securitylog.record(s, "login_throttled", now=now, user=user, username=username, remote_addr=remote_addr)
        raise ActionError(LOCKED_MESSAGE, minutes=window_minutes)
    ok = user is not None and user.active and check_password_hash(user.password_hash, password or "")
    _log_attempt(s, username, remote_addr, now, success=ok)
    if not ok:
        reason = "no_such_user" if user is None else "inactive" if not user.active else "wrong_password"
        securitylog.record(s, "login_failed", now=now, user=user, username=username, remote_addr=remote_addr,
                           detail={"reason": reason})
        raise ActionError(FAILED_MESSAGE)
    securitylog.record(s, "login_ok", now=now, user=user, remote_addr=remote_addr)
    return user


def _recent_failures(s: Session, since: dt.datetime, *, username: str | None = None,
                     remote_addr: str | None = None) -> int:
    """Failures since the later of ``since`` and the last success (of that account or address)."""
    key = LoginAttempt.username == username if username is not None else LoginAttempt.remote_addr == remote_addr
    last_success = s.scalar(select(func.max(LoginAttempt.at)).where(key, LoginAttempt.success.is_(True),
                                                                     LoginAttempt.at >= since))
    start = max(since, _aware(last_success)) if last_success else since
    return s.scalar(select(func.count()).select_from(LoginAttempt).where(
        key, LoginAttempt.success.is_(False), LoginAttempt.at > start if last_success else LoginAttempt.at >= start
    )) or 0


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _log_attempt(s: Session, username: str, remote_addr: str, now: dt.datetime, *, success: bool) -> None:
    s.add(LoginAttempt(username=username, remote_addr=remote_addr[:64], success=success, at=now))
    s.flush()
