"""序时进度 as pure rules (DESIGN §3 "as of a date D", §5): replaying hand-built histories, the one bucket
of every counted task, reporting periods and the next day a bucket can change — no database."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.progress import (
    DEFAULT_TOLERANCE,
    Bucket,
    HistoryEvent,
    MilestoneFact,
    ReportingRule,
    classify,
    is_overdue,
    is_unreported,
    last_due_period,
    next_change,
    planned_percent_at,
    replay,
    reporting_period,
)

D = dt.date
ONE_DAY = dt.timedelta(days=1)
MONTHLY = ReportingRule("month", 25)
QUARTERLY = ReportingRule("quarter", 25)


def ev(action: str, on: dt.date, to_state: str | None = None, **data) -> HistoryEvent:
    return HistoryEvent(action, on, to_state, {k: v.isoformat() if isinstance(v, dt.date) else v
                                                for k, v in data.items()})


def register(on=D(2020, 1, 5)):
    return ev("register", on, "pending")


def assign(on=D(2020, 1, 10), deadline=D(2020, 6, 30), kind="date"):
    return ev("assign", on, "assigned", deadline=deadline, deadline_kind=kind, assigned_on=on)


def under_way(deadline=D(2020, 6, 30), assigned_on=D(2020, 1, 10), kind="date"):
    """登记 → 交办 → 签收 → 方案通过: 整改中 from 1 February 2020."""
    return [register(), assign(assigned_on, deadline, kind), ev("sign", D(2020, 1, 12), "signed"),
            ev("submit_plan", D(2020, 1, 20), "signed"), ev("approve_plan", D(2020, 2, 1), "rectifying")]


def report(on, percent=None):
    return ev("report", on, "rectifying", text="进展", percent=percent)


def bucket_at(events, day, milestones=(), rule=MONTHLY, tolerance=DEFAULT_TOLERANCE):
    snap = replay(events, day, milestones)
    assert snap.counted
    return classify(snap, reporting_period(rule, day)[0], tolerance)


# --- completed, overdue, waiting for 验收 ----------------------------------------------------------------


def test_closed_is_completed_from_the_closing_day_on():
    events = [*under_way(), ev("submit", D(2020, 6, 1), "verifying"), ev("close", D(2020, 6, 10), "closed")]
    assert bucket_at(events, D(2020, 6, 9)).bucket == Bucket.on_schedule
    closed = bucket_at(events, D(2020, 6, 10))
    assert closed.bucket == Bucket.completed and not closed.overdue and closed.reasons == ()
    assert bucket_at(events, D(2023, 1, 1)).bucket == Bucket.completed


def test_past_the_deadline_is_behind_and_overdue():
    events = under_way(deadline=D(2020, 6, 30))
    on_the_day = bucket_at(events, D(2020, 6, 30))
    assert on_the_day.bucket == Bucket.on_schedule and not on_the_day.overdue
    late = bucket_at(events, D(2020, 7, 1))
    assert late.bucket == Bucket.behind and late.overdue and "逾期" in late.reasons


def test_overdue_before_the_work_starts_too():
    """A task never signed for is as late as one under way."""
    events = [register(), assign(deadline=D(2020, 3, 31))]
    late = bucket_at(events, D(2020, 4, 1))
    assert late.bucket == Bucket.behind and late.overdue


@pytest.mark.parametrize("applied", [D(2020, 6, 20), D(2020, 6, 30)])
def test_applied_for_closure_by_the_deadline_is_not_overdue_while_waiting(applied):
    events = [*under_way(deadline=D(2020, 6, 30)), ev("submit", applied, "verifying")]
    waiting = bucket_at(events, D(2020, 9, 1))
    assert waiting.bucket == Bucket.on_schedule and not waiting.overdue
    # Returned after the deadline: the application no longer holds, the task is overdue again.
    returned = [*events, ev("return", D(2020, 7, 10), "rectifying", reason="材料不全")]
    assert bucket_at(returned, D(2020, 7, 9)).bucket == Bucket.on_schedule
    again = bucket_at(returned, D(2020, 7, 10))
    assert again.bucket == Bucket.behind and again.overdue


def test_applied_for_closure_after_the_deadline_is_overdue():
    events = [*under_way(deadline=D(2020, 6, 30)), ev("submit", D(2020, 7, 1), "verifying")]
    late = bucket_at(events, D(2020, 7, 5))
    assert late.bucket == Bucket.behind and late.overdue


def test_closed_after_the_deadline_is_completed_not_overdue():
    events = [*under_way(deadline=D(2020, 6, 30)), ev("submit", D(2020, 7, 1), "verifying"),
              ev("close", D(2020, 7, 20), "closed")]
    assert bucket_at(events, D(2020, 7, 19)).overdue
    done = bucket_at(events, D(2020, 7, 20))
    assert done.bucket == Bucket.completed and not done.overdue


# --- milestones and percent --------------------------------------------------------------------------


def test_milestone_before_d_not_met_is_behind():
    events = under_way(deadline=D(2020, 12, 31))
    missed = [MilestoneFact(D(2020, 4, 30), None, None)]
    assert bucket_at(events, D(2020, 4, 30), missed).bucket == Bucket.on_schedule  # due today: not yet late
    behind = bucket_at(events, D(2020, 5, 1), missed)
    assert behind.bucket == Bucket.behind and not behind.overdue
    assert behind.reasons == ("阶段目标未按期完成",)
    met_late = [MilestoneFact(D(2020, 4, 30), None, D(2020, 5, 10))]
    assert bucket_at(events, D(2020, 5, 9), met_late).bucket == Bucket.behind  # not yet met at D
    assert bucket_at(events, D(2020, 5, 10), met_late).bucket == Bucket.on_schedule
    met_in_time = [MilestoneFact(D(2020, 4, 30), None, D(2020, 4, 28))]
    assert bucket_at(events, D(2020, 5, 1), met_in_time).bucket == Bucket.on_schedule


PLAN = [MilestoneFact(D(2020, 3, 31), 30, D(2020, 3, 30)), MilestoneFact(D(2020, 5, 31), 60, D(2020, 5, 30))]


@pytest.mark.parametrize(("percent", "bucket"), [
    (49, Bucket.behind), (50, Bucket.on_schedule), (60, Bucket.on_schedule), (100, Bucket.on_schedule),
])
def test_percent_below_the_plan_by_more_than_the_tolerance_is_behind(percent, bucket):
    events = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 6, 1), percent)]
    result = bucket_at(events, D(2020, 6, 5), PLAN)
    assert result.bucket == bucket and not result.overdue
    if bucket == Bucket.behind:
        assert result.reasons == ("进度低于计划",)


def test_tolerance_is_a_setting():
    events = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 6, 1), 54)]
    assert bucket_at(events, D(2020, 6, 5), PLAN, tolerance=5).bucket == Bucket.behind
    assert bucket_at(events, D(2020, 6, 5), PLAN, tolerance=6).bucket == Bucket.on_schedule


def test_planned_percent_is_that_of_the_latest_milestone_due():
    assert planned_percent_at(PLAN, D(2020, 3, 30)) is None
    assert planned_percent_at(PLAN, D(2020, 3, 31)) == 30
    assert planned_percent_at(PLAN, D(2020, 5, 30)) == 30
    assert planned_percent_at(PLAN, D(2020, 5, 31)) == 60
    # Before the 60% milestone falls due, 25% against a planned 30% is within tolerance.
    events = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 4, 10), 25)]
    assert bucket_at(events, D(2020, 5, 30), PLAN).bucket == Bucket.on_schedule
    assert bucket_at(events, D(2020, 5, 31), PLAN).bucket == Bucket.behind


def test_no_percent_is_never_behind_for_percent():
    no_percent = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 6, 1))]
    assert bucket_at(no_percent, D(2020, 6, 5), PLAN).bucket == Bucket.on_schedule
    # A percent, but milestones without planned percents: nothing to compare with.
    plain = [MilestoneFact(D(2020, 5, 31), None, D(2020, 5, 30))]
    low = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 6, 1), 0)]
    assert bucket_at(low, D(2020, 6, 5), plain).bucket == Bucket.on_schedule


def test_the_latest_percent_counts_and_reopening_forgets_it():
    events = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 6, 1), 20), report(D(2020, 6, 3), 55)]
    assert bucket_at(events, D(2020, 6, 2), PLAN).bucket == Bucket.behind
    assert bucket_at(events, D(2020, 6, 3), PLAN).bucket == Bucket.on_schedule
    snap = replay(events, D(2020, 6, 4), PLAN)
    assert snap.latest_percent == 55


def test_applying_for_closure_reports_100_percent():
    """申请销号 files a closure report at 100% (operations._h_submit): the replay must agree with the
    task's own columns, or a task waiting for 验收 would count as 滞后 in a report as of today."""
    events = [*under_way(deadline=D(2020, 12, 31)), report(D(2020, 4, 1), 10), ev("submit", D(2020, 6, 1), "verifying")]
    snap = replay(events, D(2020, 6, 5), PLAN)
    assert snap.latest_percent == 100
    assert bucket_at(events, D(2020, 6, 5), PLAN).bucket == Bucket.on_schedule


# --- 长期坚持 ------------------------------------------------------------------------------------------


def test_long_term_task_without_a_report_this_period_is_behind():
    events = under_way(deadline=None, kind="long_term")  # plan approved 2020-02-01
    # 2020-03-10 lies in the period 26 February – 25 March.
    behind = bucket_at(events, D(2020, 3, 10))
    assert behind.bucket == Bucket.behind and not behind.overdue and behind.reasons == ("本期未报送",)
    reported = [*events, report(D(2020, 2, 26))]
    assert bucket_at(reported, D(2020, 3, 10)).bucket == Bucket.on_schedule
    # The next period (26 March – 25 April) wants a report of its own.
    assert bucket_at(reported, D(2020, 3, 26)).bucket == Bucket.behind
    # The plan approval opens the first period.
    assert bucket_at(events, D(2020, 2, 20)).bucket == Bucket.on_schedule


def test_long_term_with_quarterly_reporting():
    events = [*under_way(deadline=None, kind="long_term"), report(D(2020, 4, 1))]
    # Quarter 26 March – 25 June: the report of 1 April covers it.
    assert bucket_at(events, D(2020, 6, 25), rule=QUARTERLY).bucket == Bucket.on_schedule
    assert bucket_at(events, D(2020, 6, 26), rule=QUARTERLY).bucket == Bucket.behind


def test_dated_task_without_a_report_is_unreported_but_not_behind():
    """本期未报送 marks any task under way; only a 长期坚持 task is 滞后 for it."""
    events = under_way(deadline=D(2020, 12, 31))
    snap = replay(events, D(2020, 3, 10))
    assert is_unreported(snap, reporting_period(MONTHLY, D(2020, 3, 10))[0])
    assert bucket_at(events, D(2020, 3, 10)).bucket == Bucket.on_schedule


def test_deadline_kind_follows_the_deadline_events():
    events = [*under_way(deadline=None, kind="long_term"),
              ev("change_deadline", D(2020, 3, 1), "rectifying", deadline=D(2020, 4, 30), deadline_kind="date")]
    snap = replay(events, D(2020, 3, 10))
    assert snap.deadline == D(2020, 4, 30) and not snap.long_term
    assert bucket_at(events, D(2020, 3, 10)).bucket == Bucket.on_schedule  # no longer 长期坚持
    assert bucket_at(events, D(2020, 5, 1)).overdue


# --- counted or not ------------------------------------------------------------------------------------


def test_not_counted_before_assignment_or_when_cancelled():
    assert not replay([register()], D(2020, 6, 1)).counted
    events = [register(), assign(on=D(2020, 3, 1))]
    assert not replay(events, D(2020, 2, 29)).counted
    assert replay(events, D(2020, 3, 1)).counted
    cancelled = [*under_way(), ev("cancel", D(2020, 4, 1), "cancelled", reason="重复")]
    assert replay(cancelled, D(2020, 3, 31)).counted
    assert not replay(cancelled, D(2020, 4, 1)).counted
    merged = [*under_way(), ev("merge", D(2020, 4, 1), "cancelled", merge_into="A-1")]
    assert not replay(merged, D(2020, 5, 1)).counted


def test_declined_task_is_not_counted_until_assigned_again():
    events = [register(), assign(on=D(2020, 1, 10)), ev("decline", D(2020, 1, 11), "pending", reason="不属本单位"),
              assign(on=D(2020, 2, 1), deadline=D(2020, 9, 30))]
    assert replay(events, D(2020, 1, 10)).counted
    assert not replay(events, D(2020, 1, 20)).counted
    snap = replay(events, D(2020, 2, 1))
    assert snap.counted and snap.assigned_on == D(2020, 2, 1) and snap.deadline == D(2020, 9, 30)


def test_closed_then_reopened_is_completed_as_of_before_the_reopen():
    events = [*under_way(deadline=D(2020, 6, 30)), ev("submit", D(2020, 6, 1), "verifying"),
              ev("close", D(2020, 6, 10), "closed"),
              ev("reopen", D(2021, 3, 1), "rectifying", reason="反弹", deadline=D(2021, 5, 31), deadline_kind="date")]
    assert bucket_at(events, D(2020, 12, 31)).bucket == Bucket.completed
    assert bucket_at(events, D(2021, 2, 28)).bucket == Bucket.completed
    reopened = replay(events, D(2021, 3, 1))
    assert reopened.state == "rectifying" and reopened.deadline == D(2021, 5, 31)
    assert reopened.closure_applied_on is None
    assert bucket_at(events, D(2021, 3, 1)).bucket == Bucket.on_schedule
    late = bucket_at(events, D(2021, 6, 1))
    assert late.bucket == Bucket.behind and late.overdue


def test_events_after_d_are_ignored_whatever_their_order():
    events = [*under_way(deadline=D(2020, 6, 30)), ev("close", D(2020, 6, 10), "closed")]
    snap = replay(reversed(events[-1:]), D(2020, 6, 9))
    assert snap.state is None and not snap.counted


# --- deadline in force: extensions and changes ------------------------------------------------------------


def test_approved_extension_moves_the_deadline_and_marks_extended():
    events = [*under_way(deadline=D(2020, 6, 30)),
              ev("request_extension", D(2020, 6, 1), "rectifying", old_deadline=D(2020, 6, 30),
                 new_deadline=D(2020, 9, 30)),
              ev("decide_extension", D(2020, 6, 5), "rectifying", approved=True, old_deadline=D(2020, 6, 30),
                 new_deadline=D(2020, 9, 30))]
    before = replay(events, D(2020, 6, 4))
    assert before.deadline == D(2020, 6, 30) and not before.extended
    after = replay(events, D(2020, 7, 15))
    assert after.deadline == D(2020, 9, 30) and after.extended
    assert bucket_at(events, D(2020, 7, 15)).bucket == Bucket.on_schedule


def test_denied_extension_changes_nothing():
    events = [*under_way(deadline=D(2020, 6, 30)),
              ev("decide_extension", D(2020, 6, 5), "rectifying", approved=False, old_deadline=D(2020, 6, 30),
                 new_deadline=D(2020, 9, 30), note="理由不充分")]
    snap = replay(events, D(2020, 7, 1))
    assert snap.deadline == D(2020, 6, 30) and not snap.extended
    assert bucket_at(events, D(2020, 7, 1)).overdue


def test_changed_deadline_is_in_force_but_not_an_extension():
    events = [*under_way(deadline=D(2020, 6, 30)),
              ev("change_deadline", D(2020, 6, 20), "rectifying", deadline=D(2020, 12, 31), deadline_kind="date")]
    snap = replay(events, D(2020, 7, 1))
    assert snap.deadline == D(2020, 12, 31) and not snap.extended
    assert not is_overdue(snap)


def test_imported_history():
    events = [ev("import", D(2019, 5, 1), "verifying", deadline=D(2019, 12, 31), deadline_kind="date",
                 assigned_on=D(2019, 3, 1), percent=90, closure_applied_on=D(2019, 4, 20), extended=True)]
    snap = replay(events, D(2020, 2, 1))
    assert snap.counted and snap.assigned_on == D(2019, 3, 1) and snap.latest_percent == 90
    assert snap.extended and not is_overdue(snap)


# --- reporting periods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "day", "period"), [
    (MONTHLY, D(2026, 11, 22), (D(2026, 10, 26), D(2026, 11, 25))),
    (MONTHLY, D(2026, 11, 25), (D(2026, 10, 26), D(2026, 11, 25))),
    (MONTHLY, D(2026, 11, 26), (D(2026, 11, 26), D(2026, 12, 25))),
    (MONTHLY, D(2026, 12, 26), (D(2026, 12, 26), D(2027, 1, 25))),
    (MONTHLY, D(2026, 1, 10), (D(2025, 12, 26), D(2026, 1, 25))),
    # Due on the 31st (or 30th): a short month uses its last day.
    (ReportingRule("month", 31), D(2026, 2, 15), (D(2026, 2, 1), D(2026, 2, 28))),
    (ReportingRule("month", 31), D(2026, 3, 1), (D(2026, 3, 1), D(2026, 3, 31))),
    (ReportingRule("month", 30), D(2026, 3, 1), (D(2026, 3, 1), D(2026, 3, 30))),
    (ReportingRule("month", 30), D(2026, 3, 31), (D(2026, 3, 31), D(2026, 4, 30))),
    (ReportingRule("month", 30), D(2028, 2, 29), (D(2028, 1, 31), D(2028, 2, 29))),
    (ReportingRule("month", 29), D(2027, 3, 1), (D(2027, 3, 1), D(2027, 3, 29))),
    (ReportingRule("month", 1), D(2026, 1, 1), (D(2025, 12, 2), D(2026, 1, 1))),
    (ReportingRule("month", 1), D(2026, 1, 2), (D(2026, 1, 2), D(2026, 2, 1))),
    # Quarterly, due on the 25th of March, June, September and December.
    (QUARTERLY, D(2026, 11, 22), (D(2026, 9, 26), D(2026, 12, 25))),
    (QUARTERLY, D(2026, 9, 25), (D(2026, 6, 26), D(2026, 9, 25))),
    (QUARTERLY, D(2026, 9, 26), (D(2026, 9, 26), D(2026, 12, 25))),
    (QUARTERLY, D(2026, 12, 26), (D(2026, 12, 26), D(2027, 3, 25))),
    (QUARTERLY, D(2027, 1, 5), (D(2026, 12, 26), D(2027, 3, 25))),
    (ReportingRule("quarter", 31), D(2026, 7, 1), (D(2026, 7, 1), D(2026, 9, 30))),
], ids=str)
def test_reporting_period(rule, day, period):
    assert reporting_period(rule, day) == period


@given(day=st.dates(D(2000, 1, 1), D(2099, 12, 31)), every=st.sampled_from(["month", "quarter"]),
       due_day=st.integers(1, 31))
def test_reporting_periods_tile_the_calendar(day, every, due_day):
    rule = ReportingRule(every, due_day)
    start, due = reporting_period(rule, day)
    assert start <= day <= due
    assert reporting_period(rule, start) == (start, due) == reporting_period(rule, due)
    assert reporting_period(rule, due + ONE_DAY)[0] == due + ONE_DAY
    assert reporting_period(rule, start - ONE_DAY)[1] == start - ONE_DAY
    months = (due.year - start.year) * 12 + due.month - start.month
    assert months in ((0, 1) if every == "month" else (2, 3))


# --- next_change ---------------------------------------------------------------------------------------


def test_next_change_is_the_day_after_the_deadline_when_that_comes_first():
    events = under_way(deadline=D(2020, 3, 10))
    snap = replay(events, D(2020, 3, 2))
    start, due = reporting_period(MONTHLY, D(2020, 3, 2))
    assert next_change(snap, start, due + ONE_DAY) == D(2020, 3, 11)
    # On the deadline itself, tomorrow is the change.
    snap = replay(events, D(2020, 3, 10))
    assert next_change(snap, start, due + ONE_DAY) == D(2020, 3, 11)


def test_next_change_falls_back_on_the_next_period():
    events = under_way(deadline=D(2020, 12, 31))
    snap = replay(events, D(2020, 3, 2))
    assert next_change(snap, D(2020, 2, 26), D(2020, 3, 26)) == D(2020, 3, 26)
    overdue = replay(under_way(deadline=D(2020, 2, 28)), D(2020, 3, 2))
    assert next_change(overdue, D(2020, 2, 26), D(2020, 3, 26)) == D(2020, 3, 26)


def test_next_change_for_milestones():
    events = under_way(deadline=D(2020, 12, 31))
    snap = replay(events, D(2020, 3, 2), [MilestoneFact(D(2020, 3, 5), None, None)])
    assert next_change(snap, D(2020, 2, 26), D(2020, 3, 26)) == D(2020, 3, 6)
    due_today = replay(events, D(2020, 3, 5), [MilestoneFact(D(2020, 3, 5), None, None)])
    assert next_change(due_today, D(2020, 2, 26), D(2020, 3, 26)) == D(2020, 3, 6)  # late from tomorrow
    snap = replay(events, D(2020, 3, 2), [MilestoneFact(D(2020, 3, 5), 40, D(2020, 3, 1))])
    assert next_change(snap, D(2020, 2, 26), D(2020, 3, 26)) == D(2020, 3, 5)  # the plan's percent steps up


@pytest.mark.parametrize("state_events", [
    [ev("submit", D(2020, 3, 1), "verifying"), ev("close", D(2020, 3, 2), "closed")],
    [ev("cancel", D(2020, 3, 2), "cancelled")],
])
def test_nothing_changes_for_a_closed_or_cancelled_task(state_events):
    snap = replay([*under_way(), *state_events], D(2020, 3, 2))
    assert next_change(snap, D(2020, 2, 26), D(2020, 3, 26)) is None


# --- properties over random histories ------------------------------------------------------------------


MOVES = {
    "pending": ["assign", "cancel"],
    "assigned": ["sign", "decline", "cancel", "change_deadline"],
    "signed": ["approve_plan", "cancel", "change_deadline"],
    "rectifying": ["report", "report", "submit", "extension", "change_deadline", "cancel"],
    "verifying": ["close", "return", "change_deadline"],
    "closed": ["reopen"],
    "cancelled": [],
}
TARGETS = {"assign": "assigned", "reopen": "rectifying", "sign": "signed", "decline": "pending",
           "cancel": "cancelled", "approve_plan": "rectifying", "submit": "verifying", "close": "closed",
           "return": "rectifying"}


def _random_event(draw, action: str, on: dt.date, state: str, deadline: dt.date | None):
    """One event of ``action`` from ``state``, and the deadline in force after it (None: skip the move)."""
    to = TARGETS.get(action, state)
    if action in ("assign", "change_deadline", "reopen"):
        long_term = draw(st.booleans()) and draw(st.booleans())
        new = None if long_term else on + dt.timedelta(days=draw(st.integers(0, 200)))
        data = {"deadline": new, "deadline_kind": "long_term" if long_term else "date"}
        if action == "assign":
            data["assigned_on"] = on
        return ev(action, on, to, **data), new
    if action == "extension":
        if deadline is None:
            return None, deadline
        approved = draw(st.booleans())
        extended = deadline + dt.timedelta(days=draw(st.integers(1, 120)))
        event = ev("decide_extension", on, state, approved=approved, old_deadline=deadline, new_deadline=extended)
        return event, extended if approved else deadline
    if action == "report":
        return ev("report", on, state, percent=draw(st.none() | st.integers(0, 100))), deadline
    return ev(action, on, to), deadline


@st.composite
def histories(draw):
    """A legal history: registered, maybe assigned, then a random walk through the workflow."""
    day = D(2020, 1, 1) + dt.timedelta(days=draw(st.integers(0, 30)))
    events = [ev("register", day, "pending")]
    state, deadline = "pending", None
    for _ in range(draw(st.integers(0, 12))):
        if not MOVES[state]:
            break
        day += dt.timedelta(days=draw(st.integers(0, 40)))
        event, deadline = _random_event(draw, draw(st.sampled_from(MOVES[state])), day, state, deadline)
        if event is not None:
            events.append(event)
            state = event.to_state
    milestones = [MilestoneFact(due, draw(st.none() | st.integers(0, 100)), met)
                  for due, met in draw(st.lists(st.tuples(
                      st.dates(D(2020, 1, 1), D(2021, 6, 30)),
                      st.none() | st.dates(D(2020, 1, 1), D(2021, 6, 30))), max_size=3))]
    return events, milestones


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), offset=st.integers(0, 600), rule=st.sampled_from([MONTHLY, QUARTERLY]),
       tolerance=st.integers(0, 30))
def test_every_counted_task_is_in_exactly_one_bucket(history, offset, rule, tolerance):
    events, milestones = history
    day = D(2020, 1, 1) + dt.timedelta(days=offset)
    snap = replay(events, day, milestones)
    if not snap.counted:
        assert snap.state in (None, "pending", "cancelled")
        return
    result = classify(snap, reporting_period(rule, day)[0], tolerance)
    assert result.bucket in set(Bucket)
    assert (result.bucket == Bucket.completed) == (snap.state == "closed")
    assert (result.bucket == Bucket.behind) == bool(result.reasons)
    if result.overdue:
        assert result.bucket == Bucket.behind and "逾期" in result.reasons
        assert snap.deadline is not None and day > snap.deadline


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), offset=st.integers(0, 600), rule=st.sampled_from([MONTHLY, QUARTERLY]))
def test_nothing_changes_before_next_change(history, offset, rule):
    """Without a new event, bucket and flags hold from D up to the day before ``next_change``."""
    events, milestones = history
    day = D(2020, 1, 1) + dt.timedelta(days=offset)
    snap = replay(events, day, milestones)
    if not snap.counted:
        return
    start, due = reporting_period(rule, day)
    result = classify(snap, start, DEFAULT_TOLERANCE)
    change = next_change(snap, start, due + ONE_DAY)
    # Days on which something happens anyway: the next event, a milestone reported met.
    happenings = [e.effective_on for e in events if e.effective_on > day]
    happenings += [m.met_on for m in milestones if m.met_on is not None and m.met_on > day]
    horizon = min([d for d in (change, *happenings) if d is not None], default=day + dt.timedelta(days=400))
    probe = day + ONE_DAY
    while probe < horizon:
        later = replay(events, probe, milestones)
        got = classify(later, reporting_period(rule, probe)[0], DEFAULT_TOLERANCE)
        assert (got.bucket, got.overdue, got.reasons) == (result.bucket, result.overdue, result.reasons), probe
        assert is_unreported(later, reporting_period(rule, probe)[0]) == is_unreported(snap, start)
        probe += ONE_DAY


def test_the_period_a_month_end_ledger_asks_about_is_the_one_due_in_that_month():
    monthly = ReportingRule("month", 25)
    assert last_due_period(monthly, D(2026, 10, 31)) == (D(2026, 9, 26), D(2026, 10, 25))
    assert last_due_period(monthly, D(2026, 10, 25)) == (D(2026, 9, 26), D(2026, 10, 25))
    assert last_due_period(ReportingRule("quarter", 20), D(2026, 11, 30)) == (D(2026, 6, 21), D(2026, 9, 20))
