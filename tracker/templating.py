"""Jinja filters and globals: labels in the user's language, dates and numbers as that language
writes them (Asia/Shanghai), the acting membership."""

from __future__ import annotations

from flask import Flask
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import func, select

from tracker import babel, calendars, db
from tracker.auth import current_membership
from tracker.babel import gettext
from tracker.i18n import LOCALE_NAMES, LOCALE_TAGS, LOCALES, N_
from tracker.models import (
    DEADLINE_KINDS,
    EVIDENCE_KINDS,
    REGION_LEVEL_LABELS,
    ROLE_LABELS,
    UNIT_KIND_LABELS,
    Membership,
    Notification,
)
from tracker.timeutil import utcnow
from tracker.workflow import STATE_LABELS, TRANSITIONS, State


def state_label(value: str) -> str:
    return gettext(STATE_LABELS[State(value)])


def action_label(value: str) -> str:
    """The Chinese name of an event's action (the API's label; pages show it translated)."""
    row = TRANSITIONS.get(value)
    return row.label if row else EXTRA_ACTION_LABELS.get(value, value)


def label_of(labels: dict):
    """A filter that shows a key's label from ``labels`` in the user's language (unknown keys as they are)."""
    return lambda key: babel.translate(labels.get(key, key))


def membership_label(membership: Membership) -> str:
    """单位 · 角色, the role in the user's language (the unit's name is data)."""
    return f"{membership.unit.name} · {gettext(ROLE_LABELS.get(membership.role, membership.role))}"


def locale_code() -> str:
    """The page's language as ``LOCALES`` names it: zh_Hans_CN or en."""
    return str(get_locale() or LOCALES[0])


def html_lang() -> str:
    """The page's ``lang`` attribute: zh-CN or en."""
    return LOCALE_TAGS.get(locale_code(), "zh-CN")


EXTRA_ACTION_LABELS = {
    "set_locale": N_("切换语言"),
    "edit": N_("修改台账"),
    "link": N_("关联任务（举一反三）"),
    "create": N_("创建"),
    "grant": N_("授予身份"),
    "revoke": N_("停用身份"),
    "activate": N_("启用账号"),
    "deactivate": N_("停用账号"),
    "set_password": N_("设置密码"),
    "not_reported": N_("本期未报送"),
    "setting": N_("修改设置"),
    "calendar_import": N_("导入工作日历"),
    "calendar_day": N_("修改工作日历"),
    "calendar_confirm": N_("确认工作日历"),
    "import": N_("导入历史"),
    "escalate": N_("督办升级"),
    "remind": N_("提醒"),
    "mail_retry": N_("重发邮件"),
    "recheck": N_("回头看复查"),
    "recheck_draw": N_("抽取回头看样本"),
    "similar": N_("举一反三派生"),
    "reorder": N_("调整顺序"),
}


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        date=babel.format_day,  # for reading; ``isodate`` for form fields and query strings
        isodate=babel.iso_day,
        datetime=babel.format_moment,
        month=babel.format_month,
        weekday=babel.format_weekday,
        number=babel.format_number,
        percent=babel.format_percent,
        t=babel.translate,  # a label, Msg or refused action's message in the user's language
        state_label=state_label,
        action_label=lambda value: gettext(action_label(value)),
        membership_label=membership_label,
        role_label=label_of(ROLE_LABELS),
        unit_kind_label=label_of(UNIT_KIND_LABELS),
        evidence_kind_label=label_of(EVIDENCE_KINDS),
        deadline_kind_label=label_of(DEADLINE_KINDS),
        level_label=label_of(REGION_LEVEL_LABELS),
    )
    app.jinja_env.globals.update(html_lang=html_lang, locale_code=locale_code, locales=LOCALES,
                                 locale_names=LOCALE_NAMES, locale_tags=LOCALE_TAGS)

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
