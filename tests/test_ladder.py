"""The escalation ladder, pure (DESIGN §6), on the real calendar of the migrated database: 2026's
国庆节 (1–7 October off, Saturday 10 October a 调休 working day) decides how many working days a task
due on 30 September is overdue."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tracker import calendars, schedule
from tracker.ladder import (
    REMIND_REPORT,
    REMIND_VERIFY,
    WARNING,
    Due,
    Facts,
    Rule,
    Thresholds,
    assess,
    highest_first,
    next_check,
    overdue_workdays,
)

D = dt.date
DEADLINE = D(2026, 9, 30)  # a Wednesday; 1–7 October is the 国庆节 holiday
TH = Thresholds()


@pytest.fixture(scope="module")
def ctx(database_url):
    """The calendar and the default ladder as the migrations made them."""
    engine = create_engine(database_url)
    with Session(engine) as s:
        loaded = calendars.load(s), schedule.load_rules(s)
    engine.dispose()
    return loaded


@pytest.fixture(scope="module")
def cal(ctx):
    return ctx[0]


@pytest.fixture(scope="module")
def rules(ctx):
    return ctx[1]


def facts(state="rectifying", assigned_on=D(2026, 3, 2), deadline=DEADLINE, plan_submitted_on=D(2026, 3, 10),
          plan_approved_on=D(2026, 3, 12), closure_applied_on=None, behind=False, not_reported=False) -> Facts:
    return Facts(state, assigned_on, deadline, plan_submitted_on, plan_approved_on, closure_applied_on, behind,
                 not_reported)


def levels(cal, rules, f: Facts, day: dt.date) -> list[int]:
    return [d.level for d in assess(cal, f, day, rules, TH)]


def by_level(due: list[Due]) -> dict[int, Due]:
    return {d.level: d for d in due}


def test_the_default_ladder_is_the_designs(rules):
    assert {r.level: (r.name, r.threshold, r.mode, r.decided_above) for r in rules.values()} == {
        1: ("预警", 5, "scan", False), 2: ("函告", 1, "proposed", False), 3: ("通报", 10, "proposed", False),
        4: ("督办", 20, "proposed", False), 5: ("挂牌督办", 40, "proposed", True), 6: ("约谈", 60, "proposed", True),
        7: ("曝光", None, "manual", False), 8: ("区域限批", None, "manual", False),
        9: ("调查问责", None, "manual", False),
    }
    assert rules[8].province_only and rules[8].against_region


@pytest.mark.parametrize(("day", "expected"), [
    (D(2026, 9, 30), 0), (D(2026, 10, 1), 0), (D(2026, 10, 7), 0),  # the holiday does not count
    (D(2026, 10, 8), 1), (D(2026, 10, 9), 2), (D(2026, 10, 10), 3),  # Saturday 10-10 is a 调休 working day
    (D(2026, 10, 11), 3), (D(2026, 10, 12), 4), (D(2026, 10, 19), 9), (D(2026, 10, 20), 10),
])
def test_working_days_overdue_across_the_national_day_holiday(cal, day, expected):
    assert overdue_workdays(cal, facts(), day) == expected


def test_hangao_from_the_first_working_day_after_the_deadline_and_tongbao_first_on_20_october(cal, rules):
    f = facts()
    assert levels(cal, rules, f, D(2026, 10, 8)) == [WARNING, 2]
    on_19 = assess(cal, f, D(2026, 10, 19), rules, TH)
    assert [d.level for d in on_19] == [WARNING, 2]
    assert highest_first(on_19, set())[0].level == 2  # 函告
    on_20 = by_level(assess(cal, f, D(2026, 10, 20), rules, TH))
    assert sorted(on_20) == [WARNING, 2, 3]
    assert highest_first(list(on_20.values()), set())[0].level == 3  # 通报
    assert (on_20[3].reason, on_20[3].overdue_workdays) == ("逾期10个工作日", 10)
    assert on_20[WARNING].reason.startswith("逾期10个工作日")


def test_every_level_up_to_yuetan_by_its_threshold_and_never_the_manual_ones(cal, rules):
    f = facts()
    seen = {}
    day = DEADLINE
    while day < D(2027, 3, 1):
        day += dt.timedelta(days=1)
        for level in levels(cal, rules, f, day):
            seen.setdefault(level, day)
    for level in (2, 3, 4, 5, 6):
        first = seen[level]
        assert overdue_workdays(cal, f, first) == rules[level].threshold
        assert overdue_workdays(cal, f, first - dt.timedelta(days=1)) < rules[level].threshold
    assert not {7, 8, 9} & set(seen)


def test_warning_when_the_deadline_is_within_5_working_days(cal, rules):
    f = facts()
    # 22 Sep – 30 Sep holds 5 working days (中秋 25 Sep off); from 21 Sep there are 6.
    assert levels(cal, rules, f, D(2026, 9, 21)) == []
    [warning] = assess(cal, f, D(2026, 9, 22), rules, TH)
    assert (warning.level, warning.reason, warning.overdue_workdays) == (WARNING, "距整改时限不超过5个工作日", None)
    assert levels(cal, rules, f, DEADLINE) == [WARNING]


def test_warning_when_not_signed_3_working_days_after_assignment(cal, rules):
    f = facts(state="assigned", plan_submitted_on=None, plan_approved_on=None)
    assert levels(cal, rules, f, D(2026, 3, 4)) == []
    [warning] = assess(cal, f, D(2026, 3, 5), rules, TH)  # 3, 4, 5 March
    assert warning.level == WARNING and warning.reason == "交办后3个工作日未签收"
    signed = facts(state="signed", plan_submitted_on=None, plan_approved_on=None)
    assert levels(cal, rules, signed, D(2026, 3, 5)) == []  # signed in time: no such 预警


def test_warning_when_there_is_no_plan_20_working_days_after_assignment(cal, rules):
    f = facts(state="signed", plan_submitted_on=None, plan_approved_on=None)
    assert levels(cal, rules, f, D(2026, 3, 27)) == []
    [warning] = assess(cal, f, D(2026, 3, 30), rules, TH)  # the 20th working day after 2 March
    assert warning.reason == "交办后20个工作日未报整改方案"
    unsigned = assess(cal, facts(state="assigned", plan_submitted_on=None, plan_approved_on=None), D(2026, 3, 30),
                      rules, TH)
    assert unsigned[0].reason == "交办后3个工作日未签收；交办后20个工作日未报整改方案"
    # A plan handed in and waiting for the supervisors' review is not "no plan".
    waiting = facts(state="signed", plan_submitted_on=D(2026, 3, 20), plan_approved_on=None)
    assert levels(cal, rules, waiting, D(2026, 3, 30)) == []


def test_warning_when_behind_schedule(cal, rules):
    [warning] = assess(cal, facts(behind=True), D(2026, 6, 1), rules, TH)
    assert (warning.level, warning.reason) == (WARNING, "滞后于序时进度")
    assert levels(cal, rules, facts(), D(2026, 6, 1)) == []


def test_a_verifying_task_is_never_escalated_only_the_supervisors_reminded_after_10_working_days(cal, rules):
    f = facts(state="verifying", deadline=D(2026, 3, 31), closure_applied_on=D(2026, 3, 2), behind=True,
              not_reported=True)
    assert levels(cal, rules, f, D(2026, 3, 16)) == []  # 10 working days: not more than 10 yet
    [reminder] = assess(cal, f, D(2026, 3, 17), rules, TH)
    assert (reminder.level, reminder.reason) == (REMIND_VERIFY, "申请销号已11个工作日未验收")
    for day in (D(2026, 4, 15), D(2026, 7, 1)):  # far past the deadline: still the reminder alone
        assert levels(cal, rules, f, day) == [REMIND_VERIFY]
    assert highest_first(assess(cal, f, D(2026, 7, 1), rules, TH), set()) == (None, [])


def test_cuibao_when_nothing_was_reported_this_period(cal, rules):
    due = assess(cal, facts(not_reported=True), D(2026, 6, 1), rules, TH)
    assert [(d.level, d.reason) for d in due] == [(REMIND_REPORT, "本期未报送整改进展")]
    overdue = assess(cal, facts(not_reported=True), D(2026, 10, 8), rules, TH)
    assert [d.level for d in overdue] == [WARNING, 2, REMIND_REPORT]


@pytest.mark.parametrize("state", ["pending", "closed", "cancelled"])
def test_tasks_not_under_way_get_nothing(cal, rules, state):
    assert assess(cal, facts(state=state, behind=True, not_reported=True), D(2026, 12, 1), rules, TH) == []
    assert next_check(cal, facts(state=state), D(2026, 3, 2), rules, TH) is None


def test_a_manual_rule_is_not_reached_by_the_scan(cal, rules):
    manual = {**rules, 3: Rule(3, "通报", 10, "manual")}
    assert levels(cal, manual, facts(), D(2026, 10, 20)) == [WARNING, 2]
    no_warning = {**rules, 1: Rule(1, "预警", 5, "manual")}
    assert levels(cal, no_warning, facts(), D(2026, 10, 20)) == [2, 3]


def test_highest_first_proposes_the_top_and_implies_the_lower_ones_not_yet_recorded():
    due = [Due(1, "逾期20个工作日"), Due(2, "逾期20个工作日", 20), Due(3, "逾期20个工作日", 20),
           Due(4, "逾期20个工作日", 20), Due(REMIND_REPORT, "本期未报送整改进展")]
    top, implied = highest_first(due, set())
    assert top.level == 4 and [d.level for d in implied] == [1, 2, 3]  # reminders are not part of the ladder
    top, implied = highest_first(due, {1, 2})
    assert top.level == 4 and [d.level for d in implied] == [3]
    top, implied = highest_first(due, {1, 2, 3})
    assert top.level == 4 and implied == []
    assert highest_first(due, {1, 2, 3, 4}) == (None, [])
    assert highest_first([Due(REMIND_REPORT, "x"), Due(REMIND_VERIFY, "y")], set()) == (None, [])


def test_a_measure_taken_by_hand_above_the_due_levels_is_not_followed_by_a_lower_proposal():
    """督办 confirmed by hand this cycle: reaching the 函告 threshold later proposes nothing lower."""
    due = [Due(1, "逾期1个工作日", 1), Due(2, "逾期1个工作日", 1)]
    top, implied = highest_first(due, {4})
    assert top is None and [d.level for d in implied] == [1, 2]
    top, implied = highest_first(due + [Due(5, "逾期40个工作日", 40)], {4})
    assert top.level == 5 and [d.level for d in implied] == [1, 2]


def test_next_check_is_the_next_threshold_date(cal, rules):
    f = facts()
    assert next_check(cal, f, D(2026, 9, 18), rules, TH) == D(2026, 9, 22)  # the 预警 window opens
    assert next_check(cal, f, D(2026, 9, 22), rules, TH) == D(2026, 10, 8)  # 函告
    assert next_check(cal, f, D(2026, 10, 8), rules, TH) == D(2026, 10, 20)  # 函告 due today: next 通报
    assert next_check(cal, f, D(2026, 10, 20), rules, TH) == D(2026, 11, 3)  # 督办
    assigned = facts(state="assigned", plan_submitted_on=None, plan_approved_on=None)
    assert next_check(cal, assigned, D(2026, 3, 2), rules, TH) == D(2026, 3, 5)  # 未签收
    assert next_check(cal, assigned, D(2026, 3, 5), rules, TH) == D(2026, 3, 30)  # 未报方案
    verifying = facts(state="verifying", closure_applied_on=D(2026, 3, 2))
    assert next_check(cal, verifying, D(2026, 3, 2), rules, TH) == D(2026, 3, 17)
    assert next_check(cal, verifying, D(2026, 3, 17), rules, TH) is None


def test_next_check_never_skips_a_day_a_new_level_becomes_due(cal, rules):
    """Walking day by day: each day a level is first due is the day ``next_check`` named the day before."""
    f = facts(deadline=D(2026, 8, 31))
    day, seen, checks = D(2026, 7, 1), set(), []
    while day < D(2027, 2, 1):
        now_due = set(levels(cal, rules, f, day))
        if now_due - seen:
            checks.append(day)
        seen |= now_due
        day += dt.timedelta(days=1)
    predicted, day = [], D(2026, 7, 1)
    while (day := next_check(cal, f, day, rules, TH)) is not None:
        predicted.append(day)
    assert predicted == checks and len(checks) == 6  # 预警, 函告, 通报, 督办, 挂牌督办, 约谈
