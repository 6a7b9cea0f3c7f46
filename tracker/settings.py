"""Admin-kept settings with their defaults: the reporting period, the 序时进度 tolerance and the
working days granted by 立行立改. Stored as JSON rows; every change writes an event."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tracker import periods
from tracker.audit import ActionError, record_event
from tracker.i18n import Msg
from tracker.models import Membership, Setting
from tracker.progress import DEFAULT_TOLERANCE, ReportingRule

DEFAULTS: dict[str, dict[str, Any]] = {
    "reporting_period": {"every": "month", "due_day": 25},
    "schedule_tolerance": {"points": DEFAULT_TOLERANCE},
    "immediate_workdays": {"days": 5},
    # 预警 besides the deadline: not signed / no plan N working days after 交办; 验收 waiting too long.
    "escalation_warning": {"unsigned": 3, "no_plan": 20, "verify_wait": 10},
}
# The settings a task's spans of 序时进度 over time are computed with (``tracker.periods``).
SPAN_SETTINGS = frozenset({"reporting_period", "schedule_tolerance"})


@dataclass(frozen=True)
class TimeSettings:
    """What the time rules need, read once per operation or report."""

    reporting: ReportingRule
    tolerance: int
    immediate_workdays: int


def get(s: Session, key: str) -> dict[str, Any]:
    row = s.get(Setting, key)
    return {**DEFAULTS[key], **(row.value if row else {})}


def time_settings(s: Session) -> TimeSettings:
    period = get(s, "reporting_period")
    return TimeSettings(
        reporting=ReportingRule(every=period["every"], due_day=int(period["due_day"])),
        tolerance=int(get(s, "schedule_tolerance")["points"]),
        immediate_workdays=int(get(s, "immediate_workdays")["days"]),
    )


def set_reporting_period(s: Session, actor: Membership | None, now: dt.datetime, every: str, due_day: int) -> None:
    """报送周期: monthly or quarterly, due on a day of the month (1–31; a short month uses its last day)."""
    if every not in ("month", "quarter"):
        raise ActionError("报送周期只能是每月或每季度")
    if not 1 <= int(due_day) <= 31:
        raise ActionError("报送截止日须在1到31之间")
    _put(s, actor, now, "reporting_period", {"every": every, "due_day": int(due_day)})


def set_number(s: Session, actor: Membership | None, now: dt.datetime, key: str, field: str, value: int,
               low: int, high: int, label: str) -> None:
    if not low <= int(value) <= high:
        raise ActionError("{label}须在{low}到{high}之间", label=Msg(label), low=low, high=high)
    _put(s, actor, now, key, {field: int(value)})


def _put(s: Session, actor: Membership | None, now: dt.datetime, key: str, value: dict[str, Any]) -> None:
    if actor is not None and (actor.role != "admin" or actor.unit.region.level != 0):
        raise ActionError("只有省级管理员可以修改全省设置")
    before = get(s, key)
    row = s.get(Setting, key) or Setting(key=key, value={})
    row.value = value
    s.add(row)
    record_event(s, actor, now, "setting", entity="setting", data={"key": key, "before": before, "after": value})
    if key in SPAN_SETTINGS and before != value:
        periods.mark_all(s)  # every task's spans of 序时进度 depend on these
    s.flush()
