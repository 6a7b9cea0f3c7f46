"""Deadlines in force through the workflow (DESIGN §4, §5): 申请延期 and 审批延期, 调整时限, deadline text read
at 交办, and today's 序时进度 values kept on the task after every action — through ``operations.perform``."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import NOW, fake_file
from tests.snapshot import refused_and_unchanged
from tracker import schedule, settings
from tracker.models import Event, ExtensionRequest, Task
from tracker.operations import ActionError, perform
from tracker.progress import Bucket
from tracker.timeutil import SHANGHAI
from tracker.workflow import State

D = dt.date
TODAY = D(2026, 3, 2)
DEADLINE = D(2026, 12, 31)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    """An instant on a Shanghai business day."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(dt.UTC)


def last_event(s, task: Task, action: str) -> Event:
    return s.scalar(select(Event).where(Event.task_id == task.id, Event.action == action)
                    .order_by(Event.id.desc()).limit(1))


def rectifying(world, deadline=DEADLINE, now=NOW) -> Task:
    return world.advance(world.assigned(deadline=deadline, now=now), "rectifying", now=now)


def request(s, world, task, new_deadline=D(2027, 3, 31), now=NOW, reason="汛期无法施工"):
    return perform(s, task, "request_extension", world.m["unit_yh"], now, reason=reason, new_deadline=new_deadline)


# --- 申请延期 -------------------------------------------------------------------------------------------


def test_request_before_the_deadline_creates_a_pending_request(s, world, now):
    task = rectifying(world)
    request(s, world, task)
    (pending,) = task.extension_requests
    assert pending.status == "pending" and task.pending_extension is pending
    assert (pending.old_deadline, pending.new_deadline, pending.reason) == (DEADLINE, D(2027, 3, 31), "汛期无法施工")
    assert pending.requested_on == TODAY and pending.membership_id == world.m["unit_yh"].id
    # The request alone changes no deadline.
    assert task.deadline == DEADLINE and task.extension_count == 0 and task.state == State.rectifying
    event = last_event(s, task, "request_extension")
    assert event.data["old_deadline"] == "2026-12-31" and event.data["new_deadline"] == "2027-03-31"


def test_second_request_is_refused_while_one_is_pending(s, world, now):
    task = rectifying(world)
    request(s, world, task)
    refused_and_unchanged(s, task, "已有延期申请正在审批", request, s, world, task, D(2027, 6, 30))


def test_request_on_the_deadline_day_is_allowed_and_after_it_refused(s, world):
    task = rectifying(world, deadline=D(2026, 3, 10))
    refused_and_unchanged(s, task, "已超过整改时限", request, s, world, task, D(2026, 4, 30), at(D(2026, 3, 11)))
    request(s, world, task, D(2026, 4, 30), at(D(2026, 3, 10), hour=23))
    assert task.pending_extension.requested_on == D(2026, 3, 10)


@pytest.mark.parametrize("new_deadline", [DEADLINE, D(2026, 6, 30)])
def test_new_date_must_be_later_than_the_deadline(s, world, new_deadline):
    task = rectifying(world)
    refused_and_unchanged(s, task, "延期后的时限须晚于现行时限", request, s, world, task, new_deadline)


def test_request_needs_a_reason_and_a_date(s, world, now):
    task = rectifying(world)
    refused_and_unchanged(s, task, "请填写延期理由", request, s, world, task, D(2027, 3, 31), now, "  ")
    refused_and_unchanged(s, task, "请填写申请延期至的日期", perform, s, task, "request_extension",
                          world.m["unit_yh"], now, reason="汛期", new_deadline="2027-03-31")


def test_only_the_lead_unit_requests_and_only_while_rectifying(s, world, now):
    task = world.assigned(participants=["湘潭市生态环境局"])
    refused_and_unchanged(s, task, "不能申请延期", request, s, world, task)
    world.advance(task, "rectifying")
    refused_and_unchanged(s, task, "您的身份不能申请延期", perform, s, task, "request_extension",
                          world.m["unit_sthj"], now, reason="配合单位", new_deadline=D(2027, 3, 31))


def test_long_term_task_has_nothing_to_extend(s, world, now):
    task = world.register()
    perform(s, task, "assign", world.m["sup_xt"], now, leads=[world.units["雨湖区人民政府"].id],
            deadline_kind="long_term")
    world.advance(task, "rectifying")
    refused_and_unchanged(s, task, "长期坚持", request, s, world, task)


# --- 审批延期 ------------------------------------------------------------------------------------------


def test_approval_moves_the_deadline_and_keeps_the_original(s, world):
    task = rectifying(world)
    request(s, world, task)
    decided = at(D(2026, 3, 5))
    perform(s, task, "decide_extension", world.m["sup_xt"], decided, decision="approve")
    assert task.deadline == D(2027, 3, 31)
    assert task.original_deadline == DEADLINE
    assert task.extension_count == 1
    assert task.cycle_started_on == D(2026, 3, 5)
    (decided_request,) = task.extension_requests
    assert decided_request.status == "approved" and decided_request.decided_on == D(2026, 3, 5)
    assert decided_request.decided_by_id == world.m["sup_xt"].id and task.pending_extension is None
    event = last_event(s, task, "decide_extension")
    assert event.data["approved"] is True
    assert (event.data["old_deadline"], event.data["new_deadline"]) == ("2026-12-31", "2027-03-31")
    assert event.effective_on == D(2026, 3, 5)
    # A second extension: the original deadline is still the one of 交办.
    request(s, world, task, D(2027, 6, 30), at(D(2026, 3, 6)))
    perform(s, task, "decide_extension", world.m["sup_xt"], at(D(2026, 3, 7)), decision="approve", note="同意")
    assert (task.deadline, task.original_deadline, task.extension_count) == (D(2027, 6, 30), DEADLINE, 2)


def test_denial_needs_a_note_and_leaves_the_deadline(s, world):
    task = rectifying(world)
    request(s, world, task)
    refused_and_unchanged(s, task, "不同意延期须说明理由", perform, s, task, "decide_extension", world.m["sup_xt"],
                          NOW, decision="deny", note="  ")
    perform(s, task, "decide_extension", world.m["sup_xt"], at(D(2026, 3, 5)), decision="deny", note="理由不充分")
    (denied,) = task.extension_requests
    assert denied.status == "denied" and denied.decision_note == "理由不充分"
    assert (task.deadline, task.extension_count, task.cycle_started_on) == (DEADLINE, 0, TODAY)
    event = last_event(s, task, "decide_extension")
    assert event.data["approved"] is False and event.data["note"] == "理由不充分"
    # Once denied, the unit may ask again.
    request(s, world, task, D(2027, 1, 31), at(D(2026, 3, 6)))
    assert task.pending_extension.new_deadline == D(2027, 1, 31)


def test_decision_needs_a_pending_request_a_supervisor_and_a_choice(s, world, now):
    task = rectifying(world)
    refused_and_unchanged(s, task, "没有待审批的延期申请", perform, s, task, "decide_extension", world.m["sup_xt"],
                          now, decision="approve")
    request(s, world, task)
    refused_and_unchanged(s, task, "请选择同意或不同意延期", perform, s, task, "decide_extension",
                          world.m["sup_xt"], now, decision="maybe")
    refused_and_unchanged(s, task, "您的身份不能审批延期", perform, s, task, "decide_extension",
                          world.m["unit_yh"], now, decision="approve")
    refused_and_unchanged(s, task, "不在您的管辖范围内", perform, s, task, "decide_extension",
                          world.m["sup_zz"], now, decision="approve")


# --- 调整时限 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["assigned", "signed", "rectifying", "verifying"])
def test_supervisor_changes_the_deadline_in_any_open_state(s, world, state):
    task = world.assigned()
    if state != "assigned":
        world.advance(task, state)
    changed = at(D(2026, 3, 9))
    perform(s, task, "change_deadline", world.m["sup_xt"], changed, reason="省里统一调整时限", deadline=D(2026, 9, 30))
    assert task.state == state
    assert (task.deadline, task.original_deadline) == (D(2026, 9, 30), DEADLINE)
    assert task.cycle_started_on == D(2026, 3, 9)
    assert task.deadline_text == "2026年9月30日前" and task.deadline_kind == "date"
    assert task.extension_count == 0  # a change is not an approved extension
    event = last_event(s, task, "change_deadline")
    assert event.data["old"]["deadline"] == "2026-12-31" and event.data["deadline"] == "2026-09-30"
    assert event.data["reason"] == "省里统一调整时限"


def test_change_deadline_by_text_and_to_long_term(s, world):
    task = rectifying(world)
    perform(s, task, "change_deadline", world.m["sup_xt"], NOW, reason="按方案调整", deadline_text="2027年上半年")
    assert (task.deadline, task.deadline_kind, task.deadline_text) == (D(2027, 6, 30), "date", "2027年上半年")
    perform(s, task, "change_deadline", world.m["sup_xt"], NOW, reason="转为长效", deadline_kind="long_term")
    assert (task.deadline, task.deadline_kind) == (None, "long_term")
    assert task.original_deadline == DEADLINE


def test_change_deadline_refusals(s, world, now):
    task = world.assigned()
    refused_and_unchanged(s, task, "请填写调整理由", perform, s, task, "change_deadline", world.m["sup_xt"], now,
                          reason="", deadline=D(2026, 9, 30))
    refused_and_unchanged(s, task, "新的时限与现行时限相同", perform, s, task, "change_deadline",
                          world.m["sup_xt"], now, reason="调整", deadline=DEADLINE)
    refused_and_unchanged(s, task, "整改时限不能早于今天", perform, s, task, "change_deadline",
                          world.m["sup_xt"], now, reason="调整", deadline=D(2026, 3, 1))
    refused_and_unchanged(s, task, "您的身份不能调整时限", perform, s, task, "change_deadline",
                          world.m["unit_yh"], now, reason="我们想改", deadline=D(2027, 9, 30))
    world.advance(task, "closed")
    refused_and_unchanged(s, task, "不能调整时限", perform, s, task, "change_deadline", world.m["sup_xt"], now,
                          reason="调整", deadline=D(2027, 9, 30))


def test_original_deadline_is_the_one_of_assignment_even_after_a_change_before_it(s, world, now):
    task = world.register()
    perform(s, task, "change_deadline", world.m["sup_xt"], now, reason="预设时限", deadline=D(2026, 6, 30))
    perform(s, task, "assign", world.m["sup_xt"], now, leads=[world.units["雨湖区人民政府"].id], deadline=DEADLINE)
    assert task.original_deadline == DEADLINE


# --- deadline text at 交办 --------------------------------------------------------------------------------


def assign_text(s, world, text, now=NOW, **params):
    task = world.register(now=now)
    perform(s, task, "assign", world.m["sup_xt"], now, leads=[world.units["雨湖区人民政府"].id],
            deadline_text=text, **params)
    return task


@pytest.mark.parametrize(("text", "deadline", "kind"), [
    ("2026年6月底前", D(2026, 6, 30), "date"),
    ("6月底前", D(2026, 6, 30), "date"),  # no year: the 交办 year
    ("2026年第三季度", D(2026, 9, 30), "date"),
    ("15个工作日内", D(2026, 3, 23), "date"),
    ("立行立改", D(2026, 3, 9), "date"),  # 5 working days by default
    ("长期坚持", None, "long_term"),
    ("2026年底前完成并长期坚持", D(2026, 12, 31), "date_and_long_term"),
])
def test_deadline_text_alone_is_read_at_assignment(s, world, text, deadline, kind):
    task = assign_text(s, world, text)
    assert (task.deadline, task.deadline_kind, task.deadline_text) == (deadline, kind, text)
    assert task.original_deadline == deadline
    event = last_event(s, task, "assign")
    assert event.data["deadline"] == (deadline.isoformat() if deadline else None)
    assert event.data["deadline_kind"] == kind and event.data["deadline_text"] == text


def test_working_days_count_from_the_assignment_date_across_the_spring_festival(s, world):
    # 交办 on 10 February 2026: 11, 12, 13, Saturday 14 (调休), then 15–23 off, 24, 25, 26, 27,
    # Saturday 28 (调休), 2 March … the 15th working day is Monday 9 March.
    task = assign_text(s, world, "15个工作日内", now=at(D(2026, 2, 10)))
    assert task.assigned_on == D(2026, 2, 10) and task.deadline == D(2026, 3, 9)
    # 交办日期 entered as an earlier day counts from that day, not from today.
    back = assign_text(s, world, "5个工作日内", assigned_on=D(2026, 2, 27))
    assert back.deadline == D(2026, 3, 5)  # 28 Feb (Sat, 调休), 2, 3, 4, 5 March


def test_immediate_workdays_setting_is_used(s, world):
    settings.set_number(s, None, NOW, "immediate_workdays", "days", 3, 1, 30, "立行立改工作日数")
    assert assign_text(s, world, "立行立改").deadline == D(2026, 3, 5)


@pytest.mark.parametrize(("text", "message"), [
    ("尽快", "无法识别的时限要求：“尽快”"),
    ("2026年2月30日", "不存在"),
    ("2025年底前", "整改时限不能早于今天"),
])
def test_unreadable_deadline_text_is_refused(s, world, text, message):
    task = world.register()
    error = refused_and_unchanged(s, task, message, perform, s, task, "assign", world.m["sup_xt"], NOW,
                                  leads=[world.units["雨湖区人民政府"].id], deadline_text=text)
    assert isinstance(error, ActionError)
    assert task.state == State.pending and task.deadline is None


def test_no_deadline_at_all_is_refused(s, world):
    task = world.register()
    refused_and_unchanged(s, task, "请填写整改时限", perform, s, task, "assign", world.m["sup_xt"], NOW,
                          leads=[world.units["雨湖区人民政府"].id])


# --- today's values on the task -------------------------------------------------------------------------


def assert_next_check(task: Task, today: dt.date, schedule_change: dt.date) -> None:
    """``next_check_on`` is the first day 序时进度 can change; the escalation scan keeps its own day
    (``escalation_check_on``), which an action sets to today so the next scan looks again."""
    assert task.next_check_on == schedule_change, task.next_check_on
    assert task.escalation_check_on == today


def test_todays_values_after_assignment(s, world):
    task = world.assigned()
    assert (task.schedule, task.overdue, task.not_reported) == (Bucket.on_schedule, False, False)
    assert task.schedule_as_of == TODAY
    # 2 March lies in the period 26 February – 25 March; the bucket can change with the next period.
    assert_next_check(task, TODAY, D(2026, 3, 26))
    soon = world.assigned(deadline=D(2026, 3, 10))
    assert_next_check(soon, TODAY, D(2026, 3, 11))
    long_term = assign_text(s, world, "长期坚持")
    assert long_term.schedule == Bucket.on_schedule
    assert_next_check(long_term, TODAY, D(2026, 3, 26))
    pending = world.register()
    assert pending.schedule is None and pending.next_check_on is None


def test_todays_values_follow_deadline_actions(s, world):
    task = rectifying(world, deadline=D(2026, 3, 10))
    late = at(D(2026, 3, 11))
    perform(s, task, "report", world.m["unit_yh"], late, text="管网施工中")
    assert (task.schedule, task.overdue) == (Bucket.behind, True)
    assert task.schedule_as_of == D(2026, 3, 11)
    assert_next_check(task, D(2026, 3, 11), D(2026, 3, 26))
    perform(s, task, "change_deadline", world.m["sup_xt"], late, reason="汛期顺延", deadline=D(2026, 4, 30))
    assert (task.schedule, task.overdue) == (Bucket.on_schedule, False)
    assert_next_check(task, D(2026, 3, 11), D(2026, 3, 26))
    request(s, world, task, D(2026, 5, 31), at(D(2026, 3, 12)))
    assert (task.schedule, task.overdue, task.deadline) == (Bucket.on_schedule, False, D(2026, 4, 30))


def test_todays_values_after_an_extension_and_closure(s, world):
    time = settings.time_settings(s)
    task = rectifying(world, deadline=D(2026, 3, 20))
    assert_next_check(task, TODAY, D(2026, 3, 21))
    request(s, world, task, D(2026, 5, 31), at(D(2026, 3, 16)))
    perform(s, task, "decide_extension", world.m["sup_xt"], at(D(2026, 3, 18)), decision="approve")
    assert (task.schedule, task.overdue) == (Bucket.on_schedule, False)
    assert_next_check(task, D(2026, 3, 18), D(2026, 3, 26))
    perform(s, task, "submit", world.m["unit_yh"], at(D(2026, 5, 30)), text="已完成", files=[fake_file()])
    assert_next_check(task, D(2026, 5, 30), D(2026, 6, 1))
    # The daily refresh the day after the deadline: applied in time, so not overdue while 验收 waits.
    assert schedule.refresh_due(s, D(2026, 6, 1), time) == 1
    s.refresh(task)
    assert (task.schedule, task.overdue, task.schedule_as_of) == (Bucket.on_schedule, False, D(2026, 6, 1))
    perform(s, task, "change_deadline", world.m["sup_xt"], at(D(2026, 6, 2)), reason="复核", deadline=D(2026, 6, 5))
    perform(s, task, "return", world.m["sup_xt"], at(D(2026, 6, 8)), reason="佐证不足")
    assert (task.schedule, task.overdue) == (Bucket.behind, True)  # returned after the deadline
    perform(s, task, "submit", world.m["unit_yh"], at(D(2026, 6, 9)), text="已补充", files=[fake_file()])
    assert (task.schedule, task.overdue) == (Bucket.behind, True)  # applied after the deadline
    perform(s, task, "close", world.m["sup_hn"], at(D(2026, 6, 9)), opinion="验收合格")
    assert (task.schedule, task.overdue, task.next_check_on) == (Bucket.completed, False, None)


def test_not_reported_this_period_after_an_action(s, world):
    task = rectifying(world)  # plan approved 2 March, in the period 26 February – 25 March
    assert task.not_reported is False
    # 27 March opens the period 26 March – 25 April: no report yet.
    perform(s, task, "change_deadline", world.m["sup_xt"], at(D(2026, 3, 27)), reason="调整", deadline=D(2026, 11, 30))
    assert task.not_reported is True and task.schedule == Bucket.on_schedule  # dated: unreported, not 滞后
    perform(s, task, "report", world.m["unit_yh"], at(D(2026, 3, 28)), text="本月进展")
    assert task.not_reported is False


def test_long_term_unreported_is_behind_today(s, world):
    task = assign_text(s, world, "长期坚持")
    world.advance(task, "rectifying")
    perform(s, task, "change_deadline", world.m["sup_xt"], at(D(2026, 3, 27)), reason="明确时限",
            deadline_text="2026年底前完成并长期坚持")
    assert task.schedule == Bucket.on_schedule  # a date in force: 本期未报送 alone is not 滞后
    perform(s, task, "change_deadline", world.m["sup_xt"], at(D(2026, 3, 27)), reason="长效", deadline_kind="long_term")
    assert (task.schedule, task.not_reported, task.overdue) == (Bucket.behind, True, False)
    perform(s, task, "report", world.m["unit_yh"], at(D(2026, 3, 28)), text="持续巡查")
    assert (task.schedule, task.not_reported) == (Bucket.on_schedule, False)


def test_todays_values_agree_with_the_replay_of_history(s, world):
    """The columns kept on the task and a replay of its events as of today give the same answer."""
    time = settings.time_settings(s)
    task = rectifying(world, deadline=D(2026, 3, 20))
    steps = [
        ("report", "unit_yh", D(2026, 3, 3), {"text": "进展", "percent": 10}),
        ("request_extension", "unit_yh", D(2026, 3, 16), {"reason": "汛期", "new_deadline": D(2026, 4, 30)}),
        ("decide_extension", "sup_xt", D(2026, 3, 18), {"decision": "approve"}),
        ("change_deadline", "sup_xt", D(2026, 3, 27), {"reason": "调整", "deadline": D(2026, 4, 10)}),
        ("submit", "unit_yh", D(2026, 4, 12), {"text": "完成", "files": None}),
        ("return", "sup_xt", D(2026, 4, 15), {"reason": "不合格"}),
    ]
    for action, who, day, params in steps:
        if params.get("files", 0) is None:
            params = {**params, "files": [fake_file()]}
        perform(s, task, action, world.m[who], at(day), **params)
        snaps = schedule.snapshots_as_of(s, [task], day)
        replayed = schedule.classify_as_of(snaps, day, time)[task.id]
        assert (task.schedule, task.overdue) == (replayed.bucket.value, replayed.overdue), action
        assert snaps[task.id].deadline == task.deadline and snaps[task.id].extended == (task.extension_count > 0)
    assert (task.schedule, task.overdue) == (Bucket.behind, True)


def test_cycle_restarts_and_extension_request_rows(s, world):
    task = rectifying(world)
    assert task.cycle_started_on == TODAY
    request(s, world, task, now=at(D(2026, 4, 1)))
    assert task.cycle_started_on == TODAY  # a request alone does not restart the cycle
    perform(s, task, "decide_extension", world.m["sup_xt"], at(D(2026, 4, 2)), decision="approve")
    assert task.cycle_started_on == D(2026, 4, 2)
    perform(s, task, "change_deadline", world.m["sup_xt"], at(D(2026, 4, 3)), reason="调整", deadline=D(2027, 9, 30))
    assert task.cycle_started_on == D(2026, 4, 3)
    s.commit()
    rows = s.scalars(select(ExtensionRequest).where(ExtensionRequest.task_id == task.id)).all()
    assert [(r.status, r.old_deadline, r.new_deadline) for r in rows] == [("approved", DEADLINE, D(2027, 3, 31))]


def test_approving_an_extension_that_no_longer_extends_is_refused(s, world, now):
    task = rectifying(world, deadline=D(2026, 6, 30))
    request(s, world, task, D(2026, 8, 31), now)
    perform(s, task, "change_deadline", world.m["sup_xt"], now, reason="统一调整", deadline=D(2026, 9, 30))
    refused_and_unchanged(s, task, "不晚于现行时限", perform, s, task, "decide_extension", world.m["sup_xt"], now,
                          decision="approve")
