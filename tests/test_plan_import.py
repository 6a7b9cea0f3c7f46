"""Plan import (DESIGN §7) on the real 003 plan: 37 items, 55 responsibility clauses, 21 milestones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, PASSWORD
from tracker.accounts import NewUser, create_unit, create_user
from tracker.demo import PROVINCIAL_DEPARTMENTS
from tracker.models import Channel, Event, Milestone, Problem, Region, Round, Task, Unit
from tracker.plan_import import PlanError, find_channel, import_plan, parse_clause, parse_plan

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "003_502d65456c908e95.txt"
if not SEED.exists():  # the shared folder beside the checkout
    SEED = Path("/work/shared/seeds/003_502d65456c908e95.txt")
TEXT = SEED.read_text(encoding="utf-8")
TITLE = "湖南省深入打好长江保护修复攻坚战实施方案"
ISSUED = dt.date(2023, 3, 6)
CHANNEL = "污染防治攻坚战交办"
NOT_SIGNATORIES = [  # named in 003's clauses but not among its 17 signatories
    "省卫生健康委", "省乡村振兴局", "省能源局", "国网湖南省电力有限公司", "省气象局", "省国资委", "省市场监管局",
    "省司法厅", "中国人民银行长沙中心支行", "国家开发银行湖南省分行", "中国农业发展银行湖南省分行", "湖南广播电视台",
]


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def departments(s):
    """The 17 signatories of 003 L10–L26 with the short names its clauses use (as the demo has them)."""
    province = s.scalar(select(Region).where(Region.level == 0))
    units = {name: create_unit(s, None, NOW, name, province, "department", aliases)
             for name, aliases in PROVINCIAL_DEPARTMENTS}
    s.commit()
    return units


def run(s, departments, **kw):
    params = dict(channel=find_channel(s, CHANNEL), issuer=departments["湖南省生态环境厅"], issued=ISSUED,
                  expires=None, actor=None, now=NOW)
    return import_plan(s, TEXT, **(params | kw))


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_003_gives_37_items_55_tasks_21_milestones():
    plan = parse_plan(TEXT)
    assert (len(plan.groups), len(plan.tasks), len(plan.milestones)) == (37, 55, 21)
    assert [g.number for g in plan.groups] == list(range(4, 41))
    assert plan.groups[0].title == "巩固提升饮用水安全保障水平" and plan.groups[-1].label == "（四十）"
    assert plan.title == TITLE and plan.signed_on == ISSUED
    assert (plan.expires, plan.expires_text) == (dt.date(2025, 12, 31), "有效期至2025年12月31日")
    assert plan.signatories == [name for name, _aliases in PROVINCIAL_DEPARTMENTS]
    # L211 holds two clauses: two tasks, each with its own text.
    on_211 = [t for t in plan.tasks if t.line == 211]
    assert [t.code for t in on_211] == ["39-4", "39-5"]
    assert on_211[1].title == "依法审理各类涉长江流域环境资源案件"
    assert on_211[1].leads == ["省高级人民法院", "省人民检察院"] and "公安厅" not in on_211[1].description
    first = plan.tasks[0]
    assert first.leads == ["省生态环境厅", "省水利厅"]
    assert first.participants == ["省发展改革委", "省自然资源厅", "省卫生健康委"]
    assert "（" not in first.description[-5:] and first.description.endswith("95.8%。")
    assert [(m.due_on, m.description[:12]) for m in first.milestones] == [
        (dt.date(2024, 12, 31), "到2024年年底，基本完"), (dt.date(2025, 12, 31), "到2025年年底，地级城")]
    assert set(NOT_SIGNATORIES) <= set(plan.bodies)


def test_clause_forms_and_generic_phrases():
    joint = parse_clause("省生态环境厅、省发展改革委、省工业和信息化厅按职责分工负责，各相关产业园区参与")
    assert joint.leads == ["省生态环境厅", "省发展改革委", "省工业和信息化厅"] and joint.participants == []
    assert joint.remarks == ["各相关产业园区参与"]
    assert parse_clause("省生态环境厅负责").leads == ["省生态环境厅"]
    assert parse_clause("省水利厅、省生态环境厅等按职责分工负责").leads == ["省水利厅", "省生态环境厅"]
    assert parse_clause("省生态环境厅、国家矿山安监局湖南局按照职责分工负责").leads[-1] == "国家矿山安监局湖南局"
    org = parse_clause("省生态环境厅牵头，有关部门参与")
    assert (org.leads, org.participants, org.remarks) == (["省生态环境厅"], [], ["有关部门参与"])
    with pytest.raises(PlanError, match="没有牵头或负责单位"):
        parse_clause("有关部门参与", 9)


# --- importing ------------------------------------------------------------------------------------


def test_unknown_bodies_are_refused_and_nothing_is_written(s, departments):
    before = (count(s, Task), count(s, Event), count(s, Unit), count(s, Round))
    with pytest.raises(PlanError) as refused:
        run(s, departments)
    s.rollback()
    # The 17 signatories resolve by the short names 003 writes; only the others are unknown.
    assert refused.value.unknown == sorted(NOT_SIGNATORIES, key=parse_plan(TEXT).bodies.index)
    assert "省卫生健康委" in str(refused.value) and "--create-missing" in str(refused.value)
    assert (count(s, Task), count(s, Event), count(s, Unit), count(s, Round)) == before


def test_create_missing_imports_tasks_assigned_as_of_the_issue_date(s, departments):
    report = run(s, departments, create_missing=True)
    s.commit()
    assert (report.groups, report.tasks, report.milestones) == (37, 55, 21)
    assert sorted(report.created_units) == sorted(
        "湖南" + b if b.startswith("省") else b for b in NOT_SIGNATORIES)
    assert report.round_name == TITLE and "共37个问题、55项任务、21个阶段目标" in report.summary()
    tasks = list(s.scalars(select(Task).order_by(Task.id)))
    assert len(tasks) == 55 and {t.state for t in tasks} == {"assigned"}
    assert {(t.assigned_on, t.cycle_started_on, t.deadline, t.original_deadline, t.deadline_kind, t.deadline_text)
            for t in tasks} == {(ISSUED, ISSUED, dt.date(2025, 12, 31), dt.date(2025, 12, 31), "date",
                                 "有效期至2025年12月31日")}
    issuer = departments["湖南省生态环境厅"]
    assert {(t.registered_by_unit_id, t.assigned_by_unit_id, t.region_id) for t in tasks} == {
        (issuer.id, issuer.id, issuer.region_id)}
    assert len({t.code for t in tasks}) == 55 and tasks[0].code == "4-1"
    # 所属问题: one per numbered item.
    assert count(s, Problem) == 37 and len({t.problem_id for t in tasks}) == 37
    assert tasks[0].problem.title == "巩固提升饮用水安全保障水平"
    # Leads and participants, found by alias; the bodies not in the database were created.
    assert [u.name for u in tasks[0].lead_units] == ["湖南省生态环境厅", "湖南省水利厅"]
    assert [u.name for u in tasks[0].participant_units] == [
        "湖南省发展和改革委员会", "湖南省自然资源厅", "湖南省卫生健康委"]
    used = {tu.unit.name for t in tasks for tu in t.task_units}
    assert set(departments) <= used
    bank = s.scalar(select(Unit).where(Unit.name == "国家开发银行湖南省分行"))
    health = s.scalar(select(Unit).where(Unit.name == "湖南省卫生健康委"))
    assert bank.kind == "enterprise" and health.kind == "department" and [a.alias for a in health.aliases] == [
        "省卫生健康委"]
    # Generic phrases go to 备注.
    by_code = {t.code: t for t in tasks}
    assert "有关部门参与" in by_code["35-1"].remarks and "有关部门参与" in by_code["40-1"].remarks
    assert "各相关产业园区参与" in by_code["7-1"].remarks
    assert all("地方各级人民政府相关部门负责落实" in t.remarks for t in tasks)
    assert {u.name for u in by_code["39-5"].lead_units} == {"湖南省高级人民法院", "湖南省人民检察院"}
    # Milestones, and the history: 登记 then 交办, both effective on the issue date.
    assert count(s, Milestone) == 21
    assert [(m.due_on, m.description.startswith("到2023年年底")) for m in by_code["7-1"].milestones] == [
        (dt.date(2023, 12, 31), True), (dt.date(2025, 12, 31), False)]
    events = list(s.scalars(select(Event).where(Event.task_id == tasks[0].id).order_by(Event.id)))
    assert [(e.action, e.to_state, e.effective_on) for e in events] == [
        ("register", "pending", ISSUED), ("assign", "assigned", ISSUED)]
    assert events[1].data["leads"] == ["湖南省生态环境厅", "湖南省水利厅"]
    assert events[1].data["deadline"] == "2025-12-31" and events[1].data["assigned_on"] == "2023-03-06"
    # Today's 序时进度 is kept: past the 2025 deadline on 2026-03-02.
    assert {(t.schedule, t.overdue) for t in tasks} == {("behind", True)}
    assert s.scalar(select(Event).where(Event.entity == "round")).data["name"] == TITLE


def test_a_second_import_of_the_same_plan_is_refused_and_writes_nothing(s, departments):
    run(s, departments, create_missing=True)
    s.commit()
    before = (count(s, Task), count(s, Event), count(s, Unit), count(s, Problem), count(s, Milestone))
    for create_missing in (False, True):
        with pytest.raises(PlanError, match="问题编号已存在.*4-1"):
            run(s, departments, create_missing=create_missing)
        s.rollback()
    assert (count(s, Task), count(s, Event), count(s, Unit), count(s, Problem), count(s, Milestone)) == before


def test_a_supervisor_imports_with_a_given_expiry_and_round(s, departments):
    province = s.scalar(select(Region).where(Region.level == 0))
    office = create_unit(s, None, NOW, "湖南省生态环境保护督察工作领导小组办公室", province, "coordinating",
                         ["省督察办"])
    for body in NOT_SIGNATORIES:
        create_unit(s, None, NOW, body, province, "department")
    sup = create_user(s, None, NOW, NewUser("sup_plan", "sup_plan", PASSWORD), office, "supervisor",
                      hash_method="pbkdf2:sha256:1000").memberships[0]
    s.commit()
    report = import_plan(s, TEXT, channel=s.scalar(select(Channel).where(Channel.name == CHANNEL)), issuer=office,
                         issued=ISSUED, expires=dt.date(2026, 6, 30), actor=sup, now=NOW, round_name="2023年")
    s.commit()
    assert report.created_units == [] and report.tasks == 55
    task = s.scalar(select(Task).where(Task.code == "4-1"))
    assert (task.deadline, task.deadline_text, task.round.name) == (
        dt.date(2026, 6, 30), "有效期至2026年6月30日", "2023年")
    assert {e.membership_id for e in s.scalars(select(Event).where(Event.task_id == task.id))} == {sup.id}
    viewer = create_user(s, None, NOW, NewUser("viewer_plan", "viewer_plan", PASSWORD), office, "viewer",
                         hash_method="pbkdf2:sha256:1000").memberships[0]
    with pytest.raises(PlanError, match="只有督办人员"):
        import_plan(s, TEXT, channel=task.channel,
                    issuer=office, issued=ISSUED, expires=None, actor=viewer, now=NOW, round_name="2024年")


def test_a_plan_without_expiry_needs_expires(s, departments):
    text = TEXT.replace("有效期至2025年12月31日", "")
    with pytest.raises(PlanError, match="--expires"):
        import_plan(s, text, channel=find_channel(s, "攻坚战交办"), issuer=departments["湖南省生态环境厅"],
                    issued=ISSUED, expires=None, actor=None, now=NOW, create_missing=True)
    with pytest.raises(Exception, match="问题来源“督察”不存在"):
        find_channel(s, "督察")


# --- the command line -----------------------------------------------------------------------------


def test_cli_refuses_unknown_bodies_then_imports_with_create_missing(app, s, departments):
    runner = app.test_cli_runner()
    args = ["plan", "import", str(SEED), "--channel", "攻坚战交办", "--issuer", "省生态环境厅", "--issued",
            "2023-03-06"]
    refused = runner.invoke(args=args)
    assert refused.exit_code == 1 and "省卫生健康委" in refused.output and "国网湖南省电力有限公司" in refused.output
    assert count(s, Task) == 0
    done = runner.invoke(args=[*args, "--create-missing"])
    assert done.exit_code == 0, done.output
    assert "共37个问题、55项任务、21个阶段目标" in done.output and "新建单位12个" in done.output
    s.expire_all()
    assert count(s, Task) == 55
    again = runner.invoke(args=[*args, "--create-missing"])
    assert again.exit_code == 1 and "问题编号已存在" in again.output
    assert count(s, Task) == 55
    bad = runner.invoke(args=[*args[:4], "不存在的来源", *args[5:]])
    assert bad.exit_code == 1 and "问题来源“不存在的来源”不存在" in bad.output
