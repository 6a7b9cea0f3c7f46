"""Operations beyond the table: conflicts, split, merge, decline/reassign/reopen/return, ledger edits,
links and registering (DESIGN §3, §4)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import NOW, fake_file
from tests.snapshot import refused_and_unchanged, snapshot
from tracker.audit import CONFLICT_MESSAGE
from tracker.models import Event, Task, TaskLink
from tracker.operations import (
    ActionError,
    ConflictError,
    TaskFields,
    edit_task,
    link_tasks,
    perform,
    register_task,
)
from tracker.permissions import can, visible_tasks
from tracker.workflow import State

DEADLINE = dt.date(2026, 12, 31)
TODAY = dt.date(2026, 3, 2)


def events(s, task: Task) -> list[Event]:
    return list(s.scalars(select(Event).where(Event.task_id == task.id).order_by(Event.id)))


# --- version conflicts (已被他人修改，请刷新后重试) -----------------------------------------------------


def test_stale_action_is_a_conflict_and_changes_nothing(s, world, now):
    task = world.assigned()
    error = refused_and_unchanged(s, task, CONFLICT_MESSAGE, perform, s, task, "sign", world.m["unit_yh"], now,
                                  expected_version=task.version - 1)
    assert isinstance(error, ConflictError)
    assert str(error) == "已被他人修改，请刷新后重试"
    perform(s, task, "sign", world.m["unit_yh"], now, expected_version=task.version)
    assert task.state == State.signed


def test_stale_edit_is_a_conflict_and_changes_nothing(s, world, now):
    task = world.assigned()
    opened = task.version
    edit_task(s, task, world.m["sup_xt"], now, opened, {"remarks": "第一次修改"})
    error = refused_and_unchanged(s, task, CONFLICT_MESSAGE, edit_task, s, task, world.m["sup_xt"], now, opened,
                                  {"remarks": "覆盖别人的修改"})
    assert isinstance(error, ConflictError)
    assert task.remarks == "第一次修改"


@pytest.mark.parametrize("first", ["reassign", "edit"])
def test_second_of_two_forms_from_the_same_version_conflicts(s, world, now, first):
    """Two supervisors open the same 已交办 task; whatever the first does, the second form is stale."""
    w = world
    task = w.assigned()
    s.commit()
    opened = task.version
    if first == "reassign":  # changes only the units, not a column of the task
        perform(s, task, "reassign", w.m["sup_xt"], now, expected_version=opened, leads=[w.units["湘乡市人民政府"].id])
    else:
        edit_task(s, task, w.m["sup_xt"], now, opened, {"responsible_leader": "区长"})
    s.commit()
    assert task.version > opened
    refused_and_unchanged(s, task, CONFLICT_MESSAGE, perform, s, task, "reassign", w.m["sup_yh"], now,
                          expected_version=opened, leads=[w.units["雨湖区人民政府"].id])


def test_every_report_bumps_the_version(s, world, now):
    task = world.advance(world.assigned(), "rectifying")
    perform(s, task, "report", world.m["unit_yh"], now, text="第一次进展")
    version = task.version
    perform(s, task, "report", world.m["unit_yh"], now, text="同一天第二次进展")
    s.flush()
    assert task.version == version + 1


# --- split (分解交办) ----------------------------------------------------------------------------------


@pytest.fixture
def split(world, s, now):
    """A pending 湘潭市 task split into 雨湖区 and 湘乡市 children."""
    w = world
    parent = w.register(title="长株潭绿心地区违规建设项目", region="湘潭市")
    perform(s, parent, "split", w.m["sup_xt"], now, children=[
        {"region_id": w.regions["雨湖区"].id, "leads": [w.units["雨湖区人民政府"].id], "deadline": DEADLINE},
        {"region_id": w.regions["湘乡市"].id, "leads": [w.units["湘乡市人民政府"].id],
         "participants": [w.units["湘潭市生态环境局"].id], "deadline": dt.date(2026, 10, 31),
         "title": "湘乡市绿心地区违规项目"},
    ])
    return parent


def test_split_assigns_children_and_leaves_the_parent_rectifying(s, world, split):
    parent = split
    assert parent.state == State.rectifying
    children = list(s.scalars(select(Task).where(Task.parent_id == parent.id).order_by(Task.id)))
    assert parent.children == children  # the parent in this session knows its children too
    assert [(c.code, c.region.name, c.state) for c in children] == [
        (f"{parent.code}-1", "雨湖区", "assigned"), (f"{parent.code}-2", "湘乡市", "assigned")]
    assert [u.name for u in children[0].lead_units] == ["雨湖区人民政府"]
    assert [u.name for u in children[1].participant_units] == ["湘潭市生态环境局"]
    assert [c.deadline for c in children] == [DEADLINE, dt.date(2026, 10, 31)]
    assert children[0].title == "长株潭绿心地区违规建设项目（雨湖区）"
    assert children[1].title == "湘乡市绿心地区违规项目"
    for child in children:
        assert [(e.action, e.from_state, e.to_state) for e in events(s, child)] == [
            ("register", None, "pending"), ("assign", "pending", "assigned")]
        assert child.assigned_by_unit.name == "湘潭市突出环境问题整改办公室"
    split_event = events(s, parent)[-1]
    assert (split_event.action, split_event.from_state, split_event.to_state) == ("split", "pending", "rectifying")
    assert len(split_event.data["children"]) == 2


@pytest.mark.parametrize("action", ["reassign", "merge", "report-by-child-lead"])
def test_split_parent_refuses_actions_of_its_children(s, world, now, split, action):
    w = world
    if action == "report-by-child-lead":  # the child's lead unit has no part in the parent
        decision = can(w.m["unit_yh"], "report", split)
        assert not decision
        refused_and_unchanged(s, split, "不在您的管辖范围内", perform, s, split, "report", w.m["unit_yh"], now,
                              text="进展")
        return
    params = {"leads": [w.units["雨湖区人民政府"].id]} if action == "reassign" else {
        "reason": "重复", "merge_into": w.register(title="另一个问题", region="湘潭市").id}
    assert "已分解交办" in can(w.m["sup_xt"], action, split).reason
    refused_and_unchanged(s, split, "该任务已分解交办，由各子任务办理", perform, s, split, action, w.m["sup_xt"], now,
                          **params)


def test_parent_with_open_children_cannot_be_cancelled(s, world, now, split):
    refused_and_unchanged(s, split, "子任务尚未全部办结，不能作废", perform, s, split, "cancel", world.m["sup_xt"], now,
                          reason="不再需要")


def test_parent_closes_with_its_last_child_and_reopens_with_any(s, world, now, split):
    w = world
    first, second = split.children
    w.advance(first, "closed")
    assert first.state == State.closed
    assert split.state == State.rectifying  # one child still open
    w.advance(second, "closed", lead_user="unit_xx")
    assert split.state == State.closed
    assert split.closed_on == TODAY
    auto = events(s, split)[-1]
    assert (auto.action, auto.from_state, auto.to_state) == ("close", "rectifying", "closed")
    assert auto.data["auto"] == "全部子任务已销号"
    assert auto.membership_id == w.m["sup_hn"].id

    perform(s, first, "reopen", w.m["sup_xt"], now, reason="问题反弹", deadline=dt.date(2026, 8, 31))
    assert first.state == State.rectifying
    assert split.state == State.rectifying
    assert split.closed_on is None
    assert (first.reopen_count, split.reopen_count) == (1, 0)
    reopened = events(s, split)[-1]
    assert (reopened.action, reopened.from_state, reopened.to_state) == ("reopen", "closed", "rectifying")
    assert first.code in reopened.data["auto"]


def test_parent_closes_when_the_other_children_were_cancelled(s, world, now, split):
    w = world
    first, second = split.children
    perform(s, second, "cancel", w.m["sup_xt"], now, reason="已并入雨湖区办理")
    assert split.state == State.rectifying
    w.advance(first, "closed")
    assert split.state == State.closed


def test_split_onto_a_child_code_already_taken_changes_nothing(s, world, now):
    w = world
    parent = w.register(title="绿心地区问题", region="湘潭市", code="XT-9")
    w.register(title="湘乡市已有的问题", region="湘乡市", code="XT-9-2")
    children = [
        {"region_id": w.regions["雨湖区"].id, "leads": [w.units["雨湖区人民政府"].id], "deadline": DEADLINE},
        {"region_id": w.regions["湘乡市"].id, "leads": [w.units["湘乡市人民政府"].id], "deadline": DEADLINE},
    ]
    refused_and_unchanged(s, parent, "问题编号“XT-9-2”在同一来源、批次和地区内已存在", perform, s, parent, "split",
                          w.m["sup_xt"], now, children=children)


# --- merge (合并) --------------------------------------------------------------------------------------


@pytest.fixture
def petitions(world):
    w = world
    kw = {"channel": w.channels["信访件"], "kind": "交办信访件"}
    kept = w.assigned(title="信访：某化工厂夜间偷排", **kw)
    duplicate = w.register(title="信访：某化工厂夜间偷排（重复件）", **kw)
    return kept, duplicate


def test_merge_cancels_the_duplicate_and_links_it(s, world, now, petitions):
    kept, duplicate = petitions
    kept_version = kept.version
    perform(s, duplicate, "merge", world.m["sup_xt"], now, reason="同一信访人重复信访", merge_into=kept.id)
    assert duplicate.state == State.cancelled
    assert duplicate.merged_into_id == kept.id
    link = s.scalar(select(TaskLink).where(TaskLink.task_id == duplicate.id))
    assert (link.other_task_id, link.kind, link.note) == (kept.id, "duplicate", "同一信访人重复信访")
    merge_event = events(s, duplicate)[-1]
    assert (merge_event.action, merge_event.to_state) == ("merge", "cancelled")
    assert merge_event.data["merge_into"] == kept.code
    s.flush()
    assert (kept.state, kept.version) == ("assigned", kept_version)


def test_merge_into_a_task_out_of_scope_is_refused(s, world, now, petitions):
    _, duplicate = petitions
    elsewhere = world.register(title="攸县的问题", region="攸县", actor="sup_zz")
    refused_and_unchanged(s, duplicate, "要保留的任务不存在", perform, s, duplicate, "merge", world.m["sup_xt"], now,
                          reason="重复", merge_into=elsewhere.id)


# --- decline, reassign, reopen, return ----------------------------------------------------------------


def test_decline_returns_to_pending_and_clears_units(s, world, now):
    w = world
    task = w.assigned(participants=("湘潭市生态环境局",))
    perform(s, task, "decline", w.m["unit_yh"], now, reason="该问题属湘乡市辖区")
    assert task.state == State.pending
    assert task.task_units == [] and task.assigned_on is None
    assert events(s, task)[-1].data == {"reason": "该问题属湘乡市辖区", "leads": ["雨湖区人民政府"]}
    assert task not in s.scalars(visible_tasks(w.m["unit_yh"])).all()
    assert not can(w.m["unit_sthj"], "report", task)
    perform(s, task, "assign", w.m["sup_xt"], now, leads=[w.units["湘乡市人民政府"].id], deadline=DEADLINE)
    assert [u.name for u in task.lead_units] == ["湘乡市人民政府"]


def test_reassign_replaces_leads_and_requires_signing_again(s, world, now):
    w = world
    task = w.advance(w.assigned(), "rectifying")
    perform(s, task, "reassign", w.m["sup_xt"], now, leads=[w.units["湘乡市人民政府"].id], reason="属地调整")
    assert task.state == State.assigned
    assert [u.name for u in task.lead_units] == ["湘乡市人民政府"]
    assert (task.signed_on, task.plan_submitted_on, task.plan_approved_on) == (None, None, None)
    assert events(s, task)[-1].data["before"] == ["雨湖区人民政府"]
    old, new = w.m["unit_yh"], w.m["unit_xx"]
    assert not can(old, "report", task) and not can(old, "sign", task)
    assert not can(new, "report", task)
    assert can(new, "sign", task)
    perform(s, task, "sign", new, now)
    assert task.state == State.signed


@pytest.mark.parametrize(("params", "message"), [
    ({"deadline": dt.date(2026, 9, 30)}, "请填写重新整改理由"),
    ({"reason": "问题反弹"}, "请填写整改时限"),
    ({"reason": "问题反弹", "deadline": dt.date(2026, 3, 1)}, "整改时限不能早于今天"),
], ids=["no-reason", "no-deadline", "past-deadline"])
def test_reopen_requires_reason_and_a_new_deadline(s, world, now, params, message):
    task = world.advance(world.assigned(), "closed")
    refused_and_unchanged(s, task, message, perform, s, task, "reopen", world.m["sup_xt"], now, **params)


def test_reopen_clears_the_closure_and_sets_the_new_deadline(s, world, now):
    w = world
    task = w.advance(w.assigned(), "closed")
    perform(s, task, "reopen", w.m["sup_xt"], now, reason="回头看发现反弹", deadline=dt.date(2026, 9, 30))
    assert task.state == State.rectifying
    assert (task.deadline, task.original_deadline) == (dt.date(2026, 9, 30), DEADLINE)
    assert (task.closed_on, task.closure_applied_on, task.closure_applied_by_id, task.verifier_unit_id) == (
        None, None, None, None)
    assert task.verify_opinion == ""
    assert events(s, task)[-1].data["previous"]["closed_on"] == "2026-03-02"
    perform(s, task, "report", w.m["unit_yh"], now, text="重新整改中")


def test_return_clears_the_closure_application(s, world, now):
    w = world
    task = w.advance(w.assigned(channel=w.channels["中央生态环境保护督察"]), "verifying")
    perform(s, task, "pre_verify", w.m["sup_xt"], now, opinion="初验合格")
    perform(s, task, "return", w.m["sup_hn"], now, reason="佐证材料不足")
    assert task.state == State.rectifying
    assert (task.closure_applied_on, task.closure_applied_by_id, task.pre_verified_on) == (None, None, None)
    assert task.pre_verify_opinion == ""
    perform(s, task, "submit", w.m["unit_yh"], now, text="补充材料后再次申请", files=[fake_file()])
    assert task.closure_applied_by_id == w.user("unit_yh").id
    assert not can(w.m["sup_hn"], "close", task)  # the new application needs a new 初验


# --- ledger edits ------------------------------------------------------------------------------------


def test_edit_records_before_and_after(s, world, now):
    task = world.assigned(title="旧标题")
    version = task.version
    edit_task(s, task, world.m["sup_xt"], now, version, {"title": " 新标题 ", "remarks": "市里督办", "contact": ""})
    edit = events(s, task)[-1]
    assert edit.action == "edit"
    assert edit.data == {"before": {"title": "旧标题", "remarks": ""},
                         "after": {"title": "新标题", "remarks": "市里督办"}}
    assert task.title == "新标题"
    s.flush()
    assert task.version == version + 1


@pytest.mark.parametrize("name", ["state", "deadline", "deadline_text", "assigned_on", "region_id", "version"])
def test_edit_refuses_fields_that_change_only_by_actions(s, world, now, name):
    task = world.assigned()
    error = refused_and_unchanged(s, task, "只能通过办理操作修改", edit_task, s, task, world.m["sup_xt"], now,
                                  task.version, {name: "2027-01-01", "remarks": "顺便改备注"})
    assert name in str(error)


@pytest.mark.parametrize("title", ["", "   "], ids=["empty", "blank"])
def test_edit_refuses_an_empty_title(s, world, now, title):
    task = world.assigned()
    refused_and_unchanged(s, task, "请填写问题名称", edit_task, s, task, world.m["sup_xt"], now, task.version,
                          {"title": title})


def test_edit_refuses_a_code_already_used(s, world, now):
    first = world.register(title="第一个问题", code="XT-001")
    second = world.register(title="第二个问题", code="XT-002")
    refused_and_unchanged(s, second, "问题编号“XT-001”在同一来源、批次和地区内已存在", edit_task, s, second,
                          world.m["sup_xt"], now, second.version, {"code": "XT-001"})
    assert first.code == "XT-001"
    other_region = world.register(title="湘乡的问题", region="湘乡市", code="XT-009")
    edit_task(s, other_region, world.m["sup_xt"], now, other_region.version, {"code": "XT-001"})  # another region
    assert other_region.code == "XT-001"


def test_edit_without_a_change_writes_no_event(s, world, now):
    task = world.assigned(title="双马填埋场")
    s.commit()
    before = snapshot(s, task.id)
    unchanged = {"title": "  双马填埋场 ", "remarks": "", "code": task.code}
    edit_task(s, task, world.m["sup_xt"], now, task.version, unchanged)
    assert snapshot(s, task.id) == before


@pytest.mark.parametrize("username", ["unit_yh", "viewer_xt", "sup_zz"])
def test_only_supervisors_in_scope_edit(s, world, now, username):
    task = world.assigned()
    refused_and_unchanged(s, task, "只有督办人员可以修改台账字段", edit_task, s, task, world.m[username], now,
                          task.version, {"remarks": "单位自己改"})


def test_cancelled_task_cannot_be_edited(s, world, now):
    task = world.assigned()
    perform(s, task, "cancel", world.m["sup_xt"], now, reason="重复")
    refused_and_unchanged(s, task, "已作废的任务不能修改", edit_task, s, task, world.m["sup_xt"], now, task.version,
                          {"remarks": "x"})


# --- links (举一反三) ----------------------------------------------------------------------------------


def test_link_once_per_pair_in_either_direction(s, world, now):
    w = world
    a, b = w.register(title="甲"), w.register(title="乙", region="湘乡市")
    link = link_tasks(s, a, b, w.m["sup_xt"], now, note=" 同类问题 ")
    assert (link.task_id, link.other_task_id, link.kind, link.note) == (a.id, b.id, "similar", "同类问题")
    assert events(s, a)[-1].data == {"other": b.code, "note": "同类问题"}
    for first, second in [(a, b), (b, a)]:
        with pytest.raises(ActionError, match="两个任务已经关联"):
            link_tasks(s, first, second, w.m["sup_xt"], now)


@pytest.mark.parametrize(("username", "other_region", "message"), [
    pytest.param("sup_xt", "攸县", "无法关联该任务", id="other-out-of-scope"),
    pytest.param("sup_xt", None, "无法关联该任务", id="itself"),
    pytest.param("viewer_xt", "湘乡市", "只有督办人员可以关联任务", id="viewer"),
])
def test_link_refusals(s, world, now, username, other_region, message):
    w = world
    task = w.register(title="甲")
    other = task if other_region is None else w.register(title="乙", region=other_region,
                                                         actor="sup_zz" if other_region == "攸县" else "sup_xt")
    with pytest.raises(ActionError, match=message):
        link_tasks(s, task, other, w.m[username], now)
    assert s.scalars(select(TaskLink)).all() == []


# --- registering (登记) --------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "region", "title", "message"), [
    ("unit_yh", "雨湖区", "问题", "只有督办人员可以登记问题"),
    ("viewer_xt", "雨湖区", "问题", "只有督办人员可以登记问题"),
    ("sup_xt", "攸县", "问题", "所在地区不在您的管辖范围内"),
    ("sup_xt", "雨湖区", "  ", "请填写问题名称"),
], ids=["unit", "viewer", "out-of-subtree", "blank-title"])
def test_register_refusals(s, world, now, username, region, title, message):
    w = world
    fields = TaskFields(title=title, channel_id=w.channels["信访件"].id, round_id=w.rounds["第一轮"].id,
                        region_id=w.regions[region].id)
    with pytest.raises(ActionError, match=message):
        register_task(s, w.m[username], now, fields)
    assert s.scalars(select(Task)).all() == []


def test_register_generates_a_code_and_a_pending_event(s, world, now):
    first = world.register(title="甲")
    second = world.register(title="乙")
    assert (first.code, second.code) == ("2026-0001", "2026-0002")
    assert first.state == State.pending
    (event,) = events(s, first)
    assert (event.action, event.to_state, event.membership_id) == ("register", "pending", world.m["sup_xt"].id)
    with pytest.raises(ActionError, match="已存在"):
        world.register(title="丙", code="2026-0001")


# --- plans and milestones (阶段目标) ----------------------------------------------------------------


def test_reports_mark_milestones_met_once_and_a_new_plan_keeps_the_met_ones(s, world, now):
    w = world
    lead, sup = w.m["unit_yh"], w.m["sup_xt"]
    task = w.advance(w.assigned(), "signed")
    perform(s, task, "submit_plan", lead, now, target="达标排放", measures="建设处理站", milestones=[
        {"due_on": dt.date(2026, 5, 31), "description": "完成设计", "planned_percent": 30},
        {"due_on": dt.date(2026, 9, 30), "description": "完成建设", "planned_percent": 80},
    ])
    perform(s, task, "approve_plan", sup, now)
    design, build = task.milestones
    perform(s, task, "report", lead, now, text="设计已完成", percent=30, milestones_met=[design.id])
    assert (design.met_on, build.met_on, task.latest_percent) == (TODAY, None, 30)
    refused_and_unchanged(s, task, "所选阶段目标已报告完成", perform, s, task, "report", lead, now, text="再报一次",
                          milestones_met=[design.id])
    other = w.advance(w.assigned(title="另一个问题"), "rectifying")
    refused_and_unchanged(s, other, "所选阶段目标不属于本任务", perform, s, other, "report", lead, now, text="进展",
                          milestones_met=[design.id])

    perform(s, task, "reassign", sup, now, leads=[w.units["雨湖区人民政府"].id], reason="重新签收")
    perform(s, task, "sign", lead, now)
    perform(s, task, "submit_plan", lead, now, target="达标排放", measures="调整方案", milestones=[
        {"due_on": dt.date(2026, 11, 30), "description": "完成验收监测"}])
    assert [(m.description, m.met_on) for m in task.milestones] == [("完成设计", TODAY), ("完成验收监测", None)]


def test_complainant_details_are_refused_on_a_task_that_is_not_a_xinfang_case(world, s):
    with pytest.raises(ActionError, match="交办信访件"):
        world.register(kind="反馈问题", complainant={"name": "李某某"})


def test_the_closure_date_may_not_precede_the_pre_verification(world, s):
    task = world.assigned(channel=world.channels["中央生态环境保护督察"])
    world.advance(task, "verifying", now=NOW - dt.timedelta(days=10))
    perform(s, task, "pre_verify", world.m["sup_xt"], NOW, opinion="初验合格")
    with pytest.raises(ActionError, match="初验日期"):
        perform(s, task, "close", world.m["sup_hn"], NOW, opinion="同意", closed_on=NOW.date() - dt.timedelta(days=3))


def test_reopening_forgets_the_closure_percent(world, s):
    task = world.advance(world.assigned(), "closed")
    assert task.latest_percent == 100
    perform(s, task, "reopen", world.m["sup_xt"], NOW, reason="返黑返臭", deadline=dt.date(2026, 9, 30))
    assert task.latest_percent is None and task.state == "rectifying"


def test_one_action_moves_the_version_by_exactly_one(world, s):
    task = world.assigned()
    s.commit()
    before = task.version
    perform(s, task, "sign", world.m["unit_yh"], NOW)
    s.commit()
    assert task.version == before + 1


@pytest.mark.parametrize("params", [{"deadline": dt.date(2926, 6, 30)}, {"deadline_text": "2926年6月底前"}])
def test_a_deadline_centuries_ahead_is_refused_as_a_typo(s, world, now, params):
    task = world.register(title="双马填埋场渗滤液处理不到位")
    with pytest.raises(ActionError, match="不能晚于2056年"):
        perform(s, task, "assign", world.m["sup_xt"], now, leads=[world.units["雨湖区人民政府"].id], **params)
    assert task.state == "pending" and task.deadline is None


def test_an_extension_centuries_ahead_is_refused(s, world, now):
    task = world.advance(world.assigned(), "rectifying")
    with pytest.raises(ActionError, match="不能晚于2056年"):
        perform(s, task, "request_extension", world.m["unit_yh"], now, reason="汛期影响施工",
                new_deadline=dt.date(2999, 12, 31))
    assert task.extension_requests == []
