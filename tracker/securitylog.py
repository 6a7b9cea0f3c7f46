"""安全日志: who logged in (or failed to, or was throttled), logged out or timed out; password changes and
resets; accounts activated or deactivated; memberships granted and ended and roles changed; API tokens
made and revoked; exports, downloads and backups — kept at least six months and shown to admins.

Not business history (that is ``Event``, written by ``audit.record_event``): a row here says whose account
it concerns, through which membership and from which address, including things that change no data (a
login, a download). ``user``/``username`` is the account the entry is about (the one logging in, the one
whose password was reset, the one downloading); ``membership`` is the membership the action was taken
through (an admin's for an admin's change; none at login or at the command line); ``detail["by"]`` names
the actor when it is someone else. ``record`` only adds the row: the caller commits it with its change.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from tracker.audit import jsonable
from tracker.i18n import N_
from tracker.models import Membership, Region, Role, SecurityLog, Unit, User
from tracker.timeutil import SHANGHAI

# kind -> label (the filter's choices and the page's column); a kind not listed here is refused.
KINDS: dict[str, str] = {
    "login_ok": N_("登录成功"),
    "login_failed": N_("登录失败"),
    "login_throttled": N_("登录被限制（失败次数过多）"),
    "logout": N_("退出登录"),
    "session_timeout": N_("长时间未操作，自动退出"),
    "password_changed": N_("修改密码"),
    "password_reset": N_("重置密码"),
    "user_created": N_("创建用户"),
    "user_activated": N_("启用账号"),
    "user_deactivated": N_("停用账号"),
    "membership_added": N_("授予身份"),
    "membership_ended": N_("停用身份"),
    "role_changed": N_("变更角色"),
    "token_created": N_("创建API令牌"),
    "token_revoked": N_("撤销API令牌"),
    "export": N_("导出"),
    "download": N_("下载"),
    "backup": N_("备份"),
}

# What the page calls the keys of ``detail``, and the reasons it records.
DETAIL_LABELS: dict[str, str] = {
    "by": N_("操作人"), "reason": N_("原因"), "unit": N_("单位"), "role": N_("角色"), "old_role": N_("原角色"),
    "what": N_("内容"), "region": N_("地区"), "month": N_("月份"), "format": N_("格式"), "rows": N_("行数"),
    "file": N_("文件"), "task": N_("任务"), "name": N_("名称"), "prefix": N_("前缀"), "temporary": N_("临时密码"),
    "after_reset": N_("重置后修改"), "idle_minutes": N_("空闲分钟数"), "query": N_("筛选条件"), "via": N_("途径"),
    "token_membership": N_("令牌身份"),
}
# detail["what"] of exports and downloads; detail["by"] at the command line.
WHAT_TASK_LIST, WHAT_LEDGER, WHAT_ARCHIVE = N_("任务列表（CSV）"), N_("月度整改销号台账"), N_("归档台账")
WHAT_EVIDENCE, WHAT_JOB_FILE, WHAT_BACKUP = N_("佐证材料"), N_("后台任务文件"), N_("数据库与文件备份")
BY_COMMAND_LINE = N_("（命令行）")
REASONS: dict[str, str] = {
    "no_such_user": N_("用户不存在"), "inactive": N_("账号已停用"), "wrong_password": N_("密码错误"),
    "by_user": N_("用户自行撤销"),
}

# DESIGN §9: kept at least six months. SECURITY_LOG_KEEP_DAYS below this is refused, by the config and here.
MIN_KEEP_DAYS = 183
DEFAULT_KEEP_DAYS = 400


def record(s: Session, kind: str, *, now: dt.datetime, user: User | None = None,
           membership: Membership | None = None, username: str = "", remote_addr: str = "",
           detail: dict[str, Any] | None = None) -> SecurityLog:
    """Add one entry (not flushed, not committed). ``username`` defaults to the user's."""
    if kind not in KINDS:
        raise ValueError(f"unknown security log kind {kind!r}")
    entry = SecurityLog(
        at=now, kind=kind, user_id=user.id if user is not None else None,
        username=(username or (user.username if user is not None else ""))[:80],
        membership_id=membership.id if membership is not None else None,
        remote_addr=(remote_addr or "")[:64], detail=jsonable(detail or {}),
    )
    s.add(entry)
    return entry


def actor_detail(actor: Membership | None, user: User, **extra: Any) -> dict[str, Any]:
    """``detail`` for a change made to ``user``: names the actor when it is someone else (or the CLI)."""
    if actor is None:
        return {"by": BY_COMMAND_LINE, **extra}
    if actor.user_id != user.id:
        return {"by": actor.user.username, **extra}
    return dict(extra)


# --- keeping -------------------------------------------------------------------------------------------


def check_keep_days(days: int) -> int:
    if days < MIN_KEEP_DAYS:
        raise ValueError(f"SECURITY_LOG_KEEP_DAYS须不少于{MIN_KEEP_DAYS}天（安全日志至少保留六个月），当前为{days}")
    return days


def cleanup(s: Session, now: dt.datetime, keep_days: int) -> int:
    """Delete the entries older than ``keep_days`` (never fewer than six months); the number deleted."""
    cutoff = now - dt.timedelta(days=check_keep_days(keep_days))
    result = s.execute(delete(SecurityLog).where(SecurityLog.at < cutoff))
    return result.rowcount or 0


# --- reading (the admin page) ----------------------------------------------------------------------------


@dataclass
class LogFilter:
    """The admin page's filters; malformed values are dropped rather than failing the page."""

    kind: str = ""
    username: str = ""
    date_from: dt.date | None = None  # Beijing dates, inclusive
    date_to: dt.date | None = None

    @classmethod
    def from_args(cls, args) -> LogFilter:
        kind = args.get("kind") or ""
        return cls(kind=kind if kind in KINDS else "", username=(args.get("username") or "").strip()[:80],
                   date_from=_date(args.get("from")), date_to=_date(args.get("to")))


@dataclass
class LogPage:
    entries: list[SecurityLog]
    next_cursor: str | None


def _date(value: str | None) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(value or "")
    except ValueError:
        return None
    return day if 2000 <= day.year <= 2099 else None


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)


def is_province_admin(membership: Membership) -> bool:
    return membership.role == Role.admin.value and membership.unit.region.level == 0


def visible_entries(membership: Membership):
    """The entries an admin may read: a province admin all of them; another admin those about users with a
    membership (active or ended) in a unit of the admin's region subtree."""
    query = select(SecurityLog)
    if membership.role != Role.admin.value:
        return query.where(False)
    if is_province_admin(membership):
        return query
    users = (select(Membership.user_id).join(Unit, Membership.unit_id == Unit.id)
             .join(Region, Unit.region_id == Region.id)
             .where(Region.path.startswith(membership.unit.region.path, autoescape=True)))
    return query.where(SecurityLog.user_id.in_(users))


def log_page(s: Session, membership: Membership, f: LogFilter, cursor: str | None, size: int) -> LogPage:
    """Newest first, by keyset on (at, id): a deep page costs what the first does."""
    query = visible_entries(membership)
    if f.kind:
        query = query.where(SecurityLog.kind == f.kind)
    if f.username:
        user_id = s.scalar(select(User.id).where(func.lower(User.username) == f.username.lower()))
        query = query.where(SecurityLog.user_id == user_id if user_id is not None
                            else SecurityLog.username == f.username)
    if f.date_from:
        query = query.where(SecurityLog.at >= _day_start(f.date_from))
    if f.date_to:
        query = query.where(SecurityLog.at < _day_start(f.date_to + dt.timedelta(days=1)))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(SecurityLog.at <= after[0],  # the bound alone lets the index on ``at`` serve
                            tuple_(SecurityLog.at, SecurityLog.id) < tuple_(after[0], after[1]))
    rows = list(s.scalars(query.order_by(SecurityLog.at.desc(), SecurityLog.id.desc()).limit(size + 1)
                          .options(selectinload(SecurityLog.membership).selectinload(Membership.unit))))
    next_cursor = encode_cursor(rows[size - 1]) if len(rows) > size else None
    return LogPage(rows[:size], next_cursor)


def encode_cursor(entry: SecurityLog) -> str:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
    raw = json.dumps([at.isoformat(), entry.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, int] | None:
    if not cursor:
        return None
    try:
        at, entry_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = dt.datetime.fromisoformat(at)
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC), int(entry_id)
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError, OverflowError):
        return None
