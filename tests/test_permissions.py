"""Scope, four-eyes, closing level and 信访人信息 (DESIGN §2, §3, §4)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, fake_file
from tests.snapshot import refused_and_unchanged
from tracker.accounts import NewUser, add_membership, create_user, end_membership, set_user_active
from tracker.models import Complainant
from tracker.operations import ActionError, perform
from tracker.permissions import (
    can,
    can_see_complainant,
    closing_level,
    in_scope,
    needs_pre_verify,
    visible_tasks,
)
from tracker.workflow import State

DEADLINE = dt.date(2026, 12, 31)
CENTRAL = "中央生态环境保护督察"  # closing 省, 初验 市州
PROVINCIAL = "省级生态环境保护督察"  # closing level: the level that assigned


# --- scope -----------------------------------------------------------------------------------------


@pytest.fixture
def mix(world):
    """Tasks across the tree: 湘潭市 (its city, two counties, 高新区), 株洲市 攸县, 岳阳市 浯口镇, the province."""
    w = world
    tasks = {
        "yuhu": w.assigned(title="雨湖区：双马填埋场", lead="雨湖区人民政府", participants=("湘潭市生态环境局",)),
        "xiangxiang": w.assigned(title="湘乡市：涟水排口", region="湘乡市", lead="湘乡市人民政府"),
        "xiangtan_city": w.register(title="湘潭市本级：城区扬尘", region="湘潭市"),
        "gaoxin": w.register(title="高新区：园区污水", region="湘潭高新区"),
        "youxian": w.assigned(title="攸县：煤矿生态修复", region="攸县", lead="攸县人民政府", actor="sup_zz"),
        "wukou": w.assigned(title="浯口镇：畜禽养殖", region="浯口镇", lead="平江县人民政府", actor="sup_hn"),
        "province": w.assigned(title="省本级：洞庭湖采砂", region="湖南省", lead="湖南省水利厅",
                               participants=("湘潭市生态环境局",), actor="sup_hn"),
    }
    w.s.commit()
    return tasks


XIANGTAN = {"yuhu", "xiangxiang", "xiangtan_city", "gaoxin"}
ALL = XIANGTAN | {"youxian", "wukou", "province"}
SEES = {
    "unit_yh": {"yuhu"},  # lead unit: only its own tasks
    "unit_sthj": {"yuhu", "province"},  # participant, also of a province task outside its region
    "unit_xx": {"xiangxiang"},
    "unit_yx": {"youxian"},
    "sup_hn": ALL,
    "admin_hn": ALL,
    "sup_xt": XIANGTAN,
    "viewer_xt": XIANGTAN,
    "sup_yh": {"yuhu"},
    "sup_zz": {"youxian"},  # out of 湘潭市's subtree: sees nothing there
    "admin_zz": {"youxian"},
}


@pytest.mark.parametrize("username", SEES)
def test_visible_tasks_and_in_scope_agree(s, world, mix, username):
    membership = world.m[username]
    by_id = {task.id: name for name, task in mix.items()}
    visible = {by_id[task.id] for task in s.scalars(visible_tasks(membership))}
    assert visible == SEES[username]
    assert {name for name, task in mix.items() if in_scope(membership, task)} == SEES[username]


def test_no_membership_sees_nothing(s, world, mix):
    assert list(s.scalars(visible_tasks(None))) == []


@pytest.mark.parametrize("username", ["sup_xt", "unit_yh"])
def test_ended_membership_and_deactivated_user_see_nothing(s, world, mix, now, username):
    membership = world.m[username]
    end_membership(s, None, now, membership)
    assert list(s.scalars(visible_tasks(membership))) == []
    assert not in_scope(membership, mix["yuhu"])
    assert not can(membership, "report" if username == "unit_yh" else "reassign", mix["yuhu"])


def test_deactivated_user_sees_nothing(s, world, mix, now):
    set_user_active(s, None, now, world.user("sup_xt"), False)
    assert list(s.scalars(visible_tasks(world.m["sup_xt"]))) == []
    assert not in_scope(world.m["sup_xt"], mix["yuhu"])


def test_unit_not_involved_is_told_the_task_is_out_of_scope(s, world, mix):
    task = world.advance(mix["yuhu"], "rectifying")
    decision = can(world.m["unit_xx"], "report", task)
    assert not decision
    assert decision.reason == "该任务不在您的管辖范围内"


def test_participant_reports_but_cannot_sign_plan_or_apply(s, world, now):
    w = world
    task = w.assigned(lead="雨湖区人民政府", participants=("湘潭市生态环境局",))
    participant = w.m["unit_sthj"]
    assert not can(participant, "sign", task)
    assert not can(participant, "decline", task)
    refused_and_unchanged(s, task, "您的身份不能签收", perform, s, task, "sign", participant, now)
    w.advance(task, "signed")
    assert not can(participant, "submit_plan", task)
    refused_and_unchanged(s, task, "您的身份不能报送整改方案", perform, s, task, "submit_plan", participant, now,
                          target="达标", measures="整改")
    perform(s, task, "submit_plan", w.m["unit_yh"], now, target="达标", measures="整改")
    perform(s, task, "approve_plan", w.m["sup_xt"], now)
    assert can(participant, "report", task)
    perform(s, task, "report", participant, now, text="已配合完成监测", files=[fake_file("monitoring", "监测报告.pdf")])
    assert task.reports[0].membership_id == participant.id
    assert [e.kind for e in task.evidence] == ["monitoring"]
    assert not can(participant, "submit", task)
    refused_and_unchanged(s, task, "您的身份不能申请销号", perform, s, task, "submit", participant, now,
                          text="完成", files=[fake_file()])


# --- four-eyes (DESIGN §2) ---------------------------------------------------------------------------


def test_applicant_cannot_pre_verify_or_close_through_a_supervisor_membership(s, world, now):
    w = world
    task = w.advance(w.assigned(channel=w.channels[CENTRAL]), "verifying")
    applicant = w.user("unit_yh")
    assert task.closure_applied_by_id == applicant.id
    as_city = add_membership(s, None, now, applicant, w.units["湘潭市突出环境问题整改办公室"], "supervisor")
    as_province = add_membership(s, None, now, applicant, w.units["湖南省生态环境保护督察工作领导小组办公室"],
                                 "supervisor")
    assert not can(as_city, "pre_verify", task)
    refused_and_unchanged(s, task, "申请销号人及责任单位人员不能初验", perform, s, task, "pre_verify", as_city, now,
                          opinion="初验合格")

    perform(s, task, "pre_verify", w.m["sup_xt"], now, opinion="初验合格")
    assert not can(as_province, "close", task)
    refused_and_unchanged(s, task, "申请销号人及责任单位人员不能验收销号", perform, s, task, "close", as_province, now,
                          opinion="验收合格")
    perform(s, task, "close", w.m["sup_hn"], now, opinion="验收合格")
    assert task.state == State.closed


def test_supervisor_who_is_also_in_a_participant_unit_cannot_close(s, world, now):
    w = world
    task = w.advance(w.assigned(participants=("湘潭市生态环境局",)), "verifying")
    sup_xt = w.m["sup_xt"]
    assert can(sup_xt, "close", task)  # before the second membership
    add_membership(s, None, now, sup_xt.user, w.units["湘潭市生态环境局"], "unit")
    decision = can(sup_xt, "close", task)  # the supervisor membership itself, not the unit one
    assert not decision
    assert "申请销号人及责任单位人员" in decision.reason
    refused_and_unchanged(s, task, "不能验收销号", perform, s, task, "close", sup_xt, now, opinion="验收合格")

    other = create_user(s, None, now, NewUser("sup_xt2", "湘潭市突改办 王五", PASSWORD),
                        w.units["湘潭市突出环境问题整改办公室"], "supervisor", hash_method="pbkdf2:sha256:1000")
    perform(s, task, "close", other.memberships[0], now, opinion="验收合格")
    assert task.state == State.closed
    assert task.verifier_unit_id == w.units["湘潭市突出环境问题整改办公室"].id


# --- closing level (DESIGN §4) -----------------------------------------------------------------------


@pytest.fixture
def provincial(world):
    """A 省级督察 task in 雨湖区, assigned by the 湘潭市 supervisor, waiting for 验收."""
    return world.advance(world.assigned(channel=world.channels[PROVINCIAL]), "verifying")


@pytest.fixture
def central(world):
    """A 中央督察 task in 雨湖区 (closing 省, 初验 市州), assigned by the 湘潭市 supervisor."""
    return world.advance(world.assigned(channel=world.channels[CENTRAL]), "verifying")


@pytest.mark.parametrize("closer", ["sup_xt", "sup_hn"], ids=["city", "province"])
def test_provincial_channel_closes_at_the_assigning_level_or_above(s, world, now, provincial, closer):
    assert closing_level(provincial) == 1
    assert not needs_pre_verify(provincial)
    perform(s, provincial, "close", world.m[closer], now, opinion="验收合格")
    assert provincial.state == State.closed
    assert provincial.closed_on == dt.date(2026, 3, 2)


def test_provincial_channel_county_supervisor_pre_verifies_but_cannot_close(s, world, now, provincial):
    county, city = world.m["sup_yh"], world.m["sup_xt"]
    decision = can(county, "close", provincial)
    assert not decision
    assert decision.reason == "该任务须由上级验收销号，您可以初验"
    refused_and_unchanged(s, provincial, "须由上级验收销号", perform, s, provincial, "close", county, now,
                          opinion="验收合格")
    assert not can(city, "pre_verify", provincial)  # the closing level closes directly
    assert not can(world.m["sup_hn"], "pre_verify", provincial)
    perform(s, provincial, "pre_verify", county, now, opinion="现场核查合格")
    assert (provincial.state, provincial.pre_verified_on) == (State.verifying, dt.date(2026, 3, 2))
    perform(s, provincial, "close", city, now, opinion="验收合格")
    assert provincial.state == State.closed


def test_task_assigned_by_the_province_closes_at_the_province(s, world, now):
    w = world
    task = w.advance(w.assigned(actor="sup_hn"), "verifying")
    assert closing_level(task) == 0
    assert not can(w.m["sup_xt"], "close", task)
    assert can(w.m["sup_xt"], "pre_verify", task)
    perform(s, task, "close", w.m["sup_hn"], now, opinion="验收合格")
    assert task.state == State.closed


def test_central_channel_needs_city_pre_verify_before_province_closes(s, world, now, central):
    county, city, province = world.m["sup_yh"], world.m["sup_xt"], world.m["sup_hn"]
    assert closing_level(central) == 0
    assert needs_pre_verify(central)
    refused_and_unchanged(s, central, "该来源的问题须由市州初验", perform, s, central, "pre_verify", county, now,
                          opinion="初验合格")
    refused_and_unchanged(s, central, "该任务须由上级验收销号", perform, s, central, "close", city, now,
                          opinion="验收合格")
    refused_and_unchanged(s, central, "该任务须先经初验", perform, s, central, "close", province, now,
                          opinion="验收合格")
    assert not can(county, "close", central)

    perform(s, central, "pre_verify", city, now, opinion="市级初验合格")
    refused_and_unchanged(s, central, "已初验", perform, s, central, "pre_verify", city, now, opinion="再次初验")
    refused_and_unchanged(s, central, "该任务须由上级验收销号", perform, s, central, "close", city, now,
                          opinion="验收合格")
    perform(s, central, "close", province, now, opinion="省级验收合格")
    assert central.state == State.closed
    assert central.pre_verify_opinion == "市级初验合格"


def test_central_task_of_a_city_goes_through_the_city_pre_verify(s, world, now):
    w = world
    task = w.advance(w.assigned(region="湘潭市", lead="湘潭市生态环境局", channel=w.channels[CENTRAL]), "verifying",
                     lead_user="unit_sthj")
    assert needs_pre_verify(task)
    assert can(w.m["sup_xt"], "pre_verify", task)
    assert not can(w.m["sup_hn"], "close", task)


def test_central_task_of_the_province_closes_without_pre_verify(s, world, now):
    w = world
    lead = create_user(s, None, now, NewUser("unit_slt", "省水利厅 孙七", PASSWORD), w.units["湖南省水利厅"], "unit",
                       hash_method="pbkdf2:sha256:1000").memberships[0]
    w.m["unit_slt"] = lead
    task = w.advance(w.assigned(region="湖南省", lead="湖南省水利厅", actor="sup_hn", channel=w.channels[CENTRAL]),
                     "verifying", lead_user="unit_slt", sup="sup_hn")
    assert not needs_pre_verify(task)
    assert not can(w.m["sup_hn"], "pre_verify", task)
    perform(s, task, "close", w.m["sup_hn"], now, opinion="验收合格")
    assert task.state == State.closed


# --- 信访人信息 (DESIGN §3) ---------------------------------------------------------------------------


@pytest.fixture
def petition(world):
    """A 交办信访件 registered and assigned by the 湘潭市 supervisor to 雨湖区."""
    return world.assigned(title="信访：夜间施工噪声扰民", channel=world.channels["信访件"], kind="交办信访件",
                          participants=("湘潭市生态环境局",), complainant={"name": "张某", "phone": "13800000000"})


COMPLAINANT_SEEN_BY = {
    "sup_xt": True,  # the assigning level
    "sup_hn": False,  # a supervisor of another (higher) level
    "sup_yh": False,  # a supervisor of another (lower) level
    "sup_zz": False,  # out of scope
    "unit_yh": False,  # the lead unit
    "unit_sthj": False,  # a participant unit
    "viewer_xt": False,  # same office, viewer
    "admin_hn": False,
}


@pytest.mark.parametrize("username", COMPLAINANT_SEEN_BY)
def test_complainant_visible_only_to_supervisors_of_the_assigning_level(s, world, petition, username):
    assert s.get(Complainant, petition.id).name == "张某"
    assert can_see_complainant(world.m[username], petition) is COMPLAINANT_SEEN_BY[username]


def test_complainant_visible_to_every_supervisor_of_the_assigning_office(s, world, now, petition):
    colleague = create_user(s, None, now, NewUser("sup_xt3", "湘潭市突改办 赵六", PASSWORD),
                            world.units["湘潭市突出环境问题整改办公室"], "supervisor", hash_method="pbkdf2:sha256:1000")
    assert can_see_complainant(colleague.memberships[0], petition)


def test_complainant_follows_the_assigning_level_not_the_registering_one(s, world, now):
    w = world
    task = w.register(title="信访：河道倾倒垃圾", channel=w.channels["信访件"], kind="交办信访件", actor="sup_hn",
                      complainant={"name": "李某"})
    assert can_see_complainant(w.m["sup_hn"], task)  # registered, not yet assigned: the province
    assert not can_see_complainant(w.m["sup_xt"], task)
    perform(s, task, "assign", w.m["sup_xt"], now, leads=[w.units["雨湖区人民政府"].id], deadline=DEADLINE)
    assert can_see_complainant(w.m["sup_xt"], task)
    assert not can_see_complainant(w.m["sup_hn"], task)


def test_complainant_kept_only_for_petitions(s, world):
    with pytest.raises(ActionError, match="交办信访件"):
        world.register(title="反馈问题不带信访人", complainant={"name": "王某"})
    s.rollback()
    assert s.scalar(select(Complainant)) is None
