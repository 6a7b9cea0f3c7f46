"""The escalation ladder (预警 … 约谈 … 问责, DESIGN §6): which levels a task has reached on a day.

Pure ("decide, then act"): ``assess`` looks at one task's facts on a day and says which levels and
reminders are due and why; ``next_check`` says the first later day that answer can change, so the
scan only visits tasks that may change. Recording, notifying and mailing are ``escalation``'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tracker.workdays import WorkCalendar
from tracker.workflow import State

ONE_DAY = dt.timedelta(days=1)

WARNING = 1  # 预警
REMIND_VERIFY = 0  # 验收提醒: 验收 pending too long (to supervisors, never against the unit)
REMIND_REPORT = -1  # 催报: no report in the current period (to the lead units)
REMINDER_NAMES = {REMIND_VERIFY: "验收提醒", REMIND_REPORT: "催报"}


@dataclass(frozen=True)
class Rule:
    level: int
    name: str
    threshold: int | None  # working days overdue (level 1: deadline within N working days)
    mode: str  # scan / proposed / auto / manual
    decided_above: bool = False
    province_only: bool = False
    against_region: bool = False


@dataclass(frozen=True)
class Thresholds:
    """预警 triggers besides the deadline, and the 验收 wait, in working days."""

    unsigned: int = 3  # not signed N working days after 交办
    no_plan: int = 20  # no plan N working days after 交办
    verify_wait: int = 10  # 验收 pending more than N working days


@dataclass(frozen=True)
class Facts:
    """What the ladder needs of a task (today's values)."""

    state: str
    assigned_on: dt.date | None
    deadline: dt.date | None
    plan_submitted_on: dt.date | None
    plan_approved_on: dt.date | None
    closure_applied_on: dt.date | None
    behind: bool  # 滞后 today (序时进度)
    not_reported: bool  # 本期未报送


@dataclass(frozen=True)
class Due:
    """A level or reminder due today, with its reason in Chinese."""

    level: int
    reason: str
    overdue_workdays: int | None = None


def overdue_workdays(calendar: WorkCalendar, facts: Facts, today: dt.date) -> int:
    if facts.deadline is None or today <= facts.deadline:
        return 0
    return calendar.workdays_between(facts.deadline, today)


def _warning_reasons(calendar: WorkCalendar, facts: Facts, today: dt.date, rules: dict[int, Rule],
                     th: Thresholds) -> list[str]:
    reasons = []
    if facts.state == State.assigned.value and facts.assigned_on and \
            calendar.workdays_between(facts.assigned_on, today) >= th.unsigned:
        reasons.append(f"交办后{th.unsigned}个工作日未签收")
    if facts.state in (State.assigned.value, State.signed.value) and facts.assigned_on and \
            facts.plan_submitted_on is None and facts.plan_approved_on is None and \
            calendar.workdays_between(facts.assigned_on, today) >= th.no_plan:
        reasons.append(f"交办后{th.no_plan}个工作日未报整改方案")
    within = rules[WARNING].threshold
    if facts.deadline is not None and within is not None and today <= facts.deadline and \
            calendar.workdays_between(today, facts.deadline) <= within:
        reasons.append(f"距整改时限不超过{within}个工作日")
    if facts.behind:
        reasons.append("滞后于序时进度")
    return reasons


def assess(calendar: WorkCalendar, facts: Facts, today: dt.date, rules: dict[int, Rule],
           th: Thresholds) -> list[Due]:
    """Every level and reminder due today, lowest first (the scan keeps those not yet recorded)."""
    if facts.state == State.verifying.value:
        return _verify_reminder(calendar, facts, today, th)
    if facts.state not in (State.assigned.value, State.signed.value, State.rectifying.value):
        return []
    due: list[Due] = []
    days = overdue_workdays(calendar, facts, today)
    reasons = _warning_reasons(calendar, facts, today, rules, th)
    if days > 0:
        reasons.insert(0, f"逾期{days}个工作日")
    if reasons and rules[WARNING].mode != "manual":
        due.append(Due(WARNING, "；".join(reasons), days or None))
    for rule in sorted(rules.values(), key=lambda r: r.level):
        if rule.level > WARNING and rule.threshold is not None and rule.mode != "manual" and days >= rule.threshold:
            due.append(Due(rule.level, f"逾期{days}个工作日", days))
    if facts.not_reported:
        due.append(Due(REMIND_REPORT, "本期未报送整改进展"))
    return due


def _verify_reminder(calendar: WorkCalendar, facts: Facts, today: dt.date, th: Thresholds) -> list[Due]:
    if facts.closure_applied_on is None:
        return []
    waited = calendar.workdays_between(facts.closure_applied_on, today)
    if waited > th.verify_wait:
        return [Due(REMIND_VERIFY, f"申请销号已{waited}个工作日未验收")]
    return []


def _first_day_with(calendar: WorkCalendar, start: dt.date, n: int) -> dt.date:
    """The first day d with workdays_between(start, d) >= n (n ≥ 1)."""
    return calendar.add_workdays(start, n)


def next_check(calendar: WorkCalendar, facts: Facts, today: dt.date, rules: dict[int, Rule],
               th: Thresholds) -> dt.date | None:
    """The first day after ``today`` on which ``assess`` can give a new level (None: never)."""
    candidates: list[dt.date] = []
    if facts.state == State.verifying.value and facts.closure_applied_on:
        candidates.append(_first_day_with(calendar, facts.closure_applied_on, th.verify_wait + 1))
    elif facts.state in (State.assigned.value, State.signed.value, State.rectifying.value):
        candidates += _open_task_dates(calendar, facts, rules, th)
    later = [d for d in candidates if d > today]
    return min(later) if later else None


def _open_task_dates(calendar: WorkCalendar, facts: Facts, rules: dict[int, Rule], th: Thresholds) -> list[dt.date]:
    dates = []
    if facts.assigned_on and facts.state == State.assigned.value:
        dates.append(_first_day_with(calendar, facts.assigned_on, th.unsigned))
    if facts.assigned_on and facts.state != State.rectifying.value and facts.plan_submitted_on is None and \
            facts.plan_approved_on is None:
        dates.append(_first_day_with(calendar, facts.assigned_on, th.no_plan))
    if facts.deadline is not None:
        within = rules[WARNING].threshold or 0
        dates.append(_days_before(calendar, facts.deadline, within))
        for rule in rules.values():
            if rule.level > WARNING and rule.threshold:
                dates.append(_first_day_with(calendar, facts.deadline, rule.threshold))
    return dates


def _days_before(calendar: WorkCalendar, deadline: dt.date, n: int) -> dt.date:
    """The first day from which at most n working days remain until the deadline."""
    day = deadline
    for _ in range(7 * n + 60):  # bounded: holidays never last that long
        if calendar.workdays_between(day - ONE_DAY, deadline) > n:
            break
        day -= ONE_DAY
    return day


def highest_first(due: list[Due], recorded: set[int]) -> tuple[Due | None, list[Due]]:
    """Of the levels due and not yet recorded this cycle: the highest (to propose and mail) and the
    lower ones (recorded as implied). Nothing is proposed below a level already recorded this cycle (a
    measure taken by hand): those are implied too. Reminders (levels ≤ 0) are handled one by one."""
    new = [d for d in due if d.level >= WARNING and d.level not in recorded]
    if not new:
        return None, []
    top = max(new, key=lambda d: d.level)
    if top.level < max((level for level in recorded if level >= WARNING), default=0):
        return None, new
    return top, [d for d in new if d is not top]
