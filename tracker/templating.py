"""Jinja filters and globals: Chinese labels, Asia/Shanghai dates, the acting membership."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from flask_login import current_user
from sqlalchemy import func, select

from tracker import calendars, db
from tracker.auth import current_membership
from tracker.models import (
    DEADLINE_KINDS,
    EVIDENCE_KINDS,
    REGION_LEVEL_LABELS,
    ROLE_LABELS,
    UNIT_KIND_LABELS,
    Notification,
)
from tracker.timeutil import local_datetime, utcnow
from tracker.workflow import STATE_LABELS, TRANSITIONS, State


def format_date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def format_datetime(value: dt.datetime | None) -> str:
    return local_datetime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def state_label(value: str) -> str:
    return STATE_LABELS[State(value)]


def action_label(value: str) -> str:
    row = TRANSITIONS.get(value)
    return row.label if row else EXTRA_ACTION_LABELS.get(value, value)


EXTRA_ACTION_LABELS = {
    "edit": "修改台账",
    "link": "关联任务（举一反三）",
    "create": "创建",
    "grant": "授予身份",
    "revoke": "停用身份",
    "activate": "启用账号",
    "deactivate": "停用账号",
    "set_password": "设置密码",
    "not_reported": "本期未报送",
    "setting": "修改设置",
    "calendar_import": "导入工作日历",
    "calendar_day": "修改工作日历",
    "calendar_confirm": "确认工作日历",
    "import": "导入历史",
    "escalate": "督办升级",
    "remind": "提醒",
    "mail_retry": "重发邮件",
}


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        date=format_date,
        datetime=format_datetime,
        state_label=state_label,
        action_label=action_label,
        role_label=lambda r: ROLE_LABELS.get(r, r),
        unit_kind_label=lambda k: UNIT_KIND_LABELS.get(k, k),
        evidence_kind_label=lambda k: EVIDENCE_KINDS.get(k, k),
        deadline_kind_label=lambda k: DEADLINE_KINDS.get(k, k),
        level_label=lambda lv: REGION_LEVEL_LABELS.get(lv, str(lv)),
    )

    app.jinja_env.filters["weekday"] = lambda d: "一二三四五六日"[d.weekday()]

    @app.context_processor
    def _acting():
        if current_user.is_authenticated and current_user.memberships:
            membership = current_membership()
            warning = (calendars.next_year_unconfirmed_warning(db.session(), utcnow())
                       if membership.role == "admin" else None)
            unread = db.session().scalar(select(func.count()).select_from(Notification).where(
                Notification.user_id == current_user.user.id, Notification.read_at.is_(None)))
            return {"membership": membership, "memberships": current_user.memberships,
                    "calendar_warning": warning, "unread": unread}
        return {"membership": None, "memberships": [], "calendar_warning": None, "unread": 0}
