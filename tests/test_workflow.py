"""The workflow table, exercised whole (STYLE habit 1, DESIGN §4).

Every (state, action, party) combination is generated from ``workflow.TRANSITIONS``: what the table
says (plus the few documented guards) must be what ``permissions.can`` says, and ``perform`` must
either move the task to ``workflow.next_state`` or refuse with a Chinese message and change nothing.

One world with a task in every state is built once for this module and committed; each test rolls
back whatever it did, so the tasks are the same for every combination (and the matrix stays fast).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

import config
from tests.conftest import NOW, _reset, build_world, fake_file
from tests.snapshot import refused_and_unchanged, snapshot
from tracker import create_app, db
from tracker.models import Event, Task
from tracker.operations import HANDLERS, perform
from tracker.permissions import can, parties
from tracker.timeutil import local_date
from tracker.workflow import (
    FINAL_STATES,
    OPEN_STATES,
    TRANSITIONS,
    Party,
    State,
    actions_from,
    is_allowed_from,
    next_state,
)

TODAY = local_date(NOW)  # 2026-03-02
DEADLINE = dt.date(2026, 12, 31)

# The states a task can be built in; "signed_plan" is `signed` with the 整改方案 submitted.
STATES: dict[str, State] = {
    "pending": State.pending,
    "assigned": State.assigned,
    "signed": State.signed,
    "signed_plan": State.signed,
    "rectifying": State.rectifying,
    "verifying": State.verifying,
    "closed": State.closed,
    "cancelled": State.cancelled,
}
ACTIONS = [name for name in TRANSITIONS if name != "register"]


@dataclass(frozen=True)
class Who:
    """A membership of the world and what it is to the matrix tasks (region 湘潭市)."""

    username: str
    party: Party | None  # its party once the task has units (None: never a party)
    sees_subtree: bool  # a supervisor/viewer/admin whose subtree holds 湘潭市


PARTIES: dict[str, Who] = {
    "supervisor": Who("sup_xt", Party.supervisor, True),  # 湘潭市突改办, assigned the tasks
    "lead": Who("unit_sthj", Party.lead, False),  # 湘潭市生态环境局, 牵头
    "participant": Who("unit_yh", Party.participant, False),  # 雨湖区人民政府, 参与
    "viewer": Who("viewer_xt", None, True),
    "admin": Who("admin_hn", None, True),  # the province admin: in scope, but not a party
    "supervisor_out_of_scope": Who("sup_zz", None, False),  # 株洲市
    "unit_not_involved": Who("unit_yx", None, False),  # 攸县人民政府
}

# Refusals the table alone does not show: the guards of permissions.can, by (state, action, party).
GUARDED: dict[tuple[str, str, str], str] = {
    ("signed_plan", "submit_plan", "lead"): "整改方案已报送",
    ("signed", "approve_plan", "supervisor"): "尚未报送整改方案",
    ("signed", "return_plan", "supervisor"): "尚未报送整改方案",
    # the task was assigned by the city, so the city closes it directly (DESIGN §4 closing level)
    ("verifying", "pre_verify", "supervisor"): "无需初验",
    # no lead unit asked for an extension on the matrix tasks
    ("rectifying", "decide_extension", "supervisor"): "没有待审批的延期申请",
}


def has_units(state: str) -> bool:
    """The pending task has no units yet; every other matrix task was assigned (cancelled included)."""
    return state != "pending"


def expected_refusal(state: str, action: str, who_name: str) -> str | None:
    """What the table (and the documented guards) say: None when allowed, else part of the reason."""
    who = PARTIES[who_name]
    party = who.party if (who.party == Party.supervisor or has_units(state)) else None
    if not who.sees_subtree and party is None:
        return "不在您的管辖范围内"
    row = TRANSITIONS[action]
    if STATES[state] not in row.sources:
        return "当前状态为"
    if party not in row.parties:
        return "您的身份不能"
    return GUARDED.get((state, action, who_name))


# --- the world of the matrix ---------------------------------------------------------------------


@dataclass
class Matrix:
    s: Any
    world: Any
    tasks: dict[str, Task]
    keeper: Task  # an open task to merge into
    central: Task  # a 中央督察 task in 雨湖区 waiting for 初验 by the city

    def unit_id(self, name: str) -> int:
        return self.world.units[name].id

    def region_id(self, name: str) -> int:
        return self.world.regions[name].id


def _assigned(w, title: str) -> Task:
    return w.assigned(title=title, region="湘潭市", lead="湘潭市生态环境局", participants=("雨湖区人民政府",),
                      deadline=DEADLINE)


def _build_tasks(w) -> dict[str, Task]:
    s, sup, lead = w.s, w.m["sup_xt"], "unit_sthj"
    tasks = {"pending": w.register(title="待交办：湘江岸线违规堆场", region="湘潭市")}
    tasks["assigned"] = _assigned(w, "已交办：竹埠港遗留废渣")
    tasks["signed"] = w.advance(_assigned(w, "已签收：城区黑臭水体"), "signed", lead_user=lead)
    tasks["signed_plan"] = w.advance(_assigned(w, "方案待审：污水管网混错接"), "signed", lead_user=lead)
    perform(s, tasks["signed_plan"], "submit_plan", w.m[lead], NOW, target="雨污分流", measures="改造管网")
    tasks["rectifying"] = w.advance(_assigned(w, "整改中：工业园区废气"), "rectifying", lead_user=lead)
    tasks["verifying"] = w.advance(_assigned(w, "待验收：垃圾填埋场渗滤液"), "verifying", lead_user=lead)
    tasks["closed"] = w.advance(_assigned(w, "已销号：饮用水源保护区排口"), "closed", lead_user=lead)
    tasks["cancelled"] = _assigned(w, "已作废：重复登记的问题")
    perform(s, tasks["cancelled"], "cancel", sup, NOW, reason="重复登记")
    return tasks


@pytest.fixture(scope="module")
def m(database_url, reference_rows, tmp_path_factory):
    """A committed world with one task per state, shared by the tests of this module."""
    app = create_app(config.TestConfig(database_url, str(tmp_path_factory.mktemp("instance"))))
    with app.app_context():
        s = db.session()
        w = build_world(s)
        tasks = _build_tasks(w)
        keeper = w.register(title="保留的信访件", region="湘潭市")
        central = w.assigned(title="中央督察：湘江干流排污口", region="雨湖区",
                             channel=w.channels["中央生态环境保护督察"], deadline=DEADLINE)
        w.advance(central, "verifying")
        s.commit()
        yield Matrix(s, w, tasks, keeper, central)
        s.rollback()
        s.close()
    _reset(app.extensions["tracker.engine"], reference_rows)
    app.extensions["tracker.engine"].dispose()


@pytest.fixture(autouse=True)
def rolled_back(m):
    """Every test leaves nothing behind: the shared tasks stay as they were committed."""
    yield
    m.s.rollback()


def valid_params(action: str, m: Matrix) -> dict[str, Any]:
    """Example params that satisfy every requirement of ``action``."""
    examples: dict[str, dict[str, Any]] = {
        "assign": {"leads": [m.unit_id("湘潭市生态环境局")], "participants": [m.unit_id("雨湖区人民政府")],
                   "deadline": DEADLINE},
        "split": {"children": [
            {"region_id": m.region_id("雨湖区"), "leads": [m.unit_id("雨湖区人民政府")], "deadline": DEADLINE},
            {"region_id": m.region_id("湘乡市"), "leads": [m.unit_id("湘乡市人民政府")], "deadline": DEADLINE},
        ]},
        "decline": {"reason": "不属于本单位职责"},
        "sign": {},
        "submit_plan": {"target": "渗滤液达标排放", "measures": "建设处理站",
                        "milestones": [{"due_on": dt.date(2026, 6, 30), "description": "完成主体工程",
                                        "planned_percent": 50}]},
        "approve_plan": {"opinion": "同意"},
        "return_plan": {"reason": "整改措施不具体"},
        "report": {"text": "主体工程已完成一半", "percent": 50, "files": [fake_file("before", "整改前.jpg")]},
        "submit": {"text": "已完成整改", "files": [fake_file()]},
        "pre_verify": {"opinion": "初验合格"},
        "return": {"reason": "佐证材料不足"},
        "close": {"opinion": "验收合格", "closed_on": TODAY},
        "reopen": {"reason": "问题反弹", "deadline": dt.date(2026, 9, 30)},
        "reassign": {"leads": [m.unit_id("湘乡市人民政府")], "reason": "职责调整"},
        "cancel": {"reason": "重复登记"},
        "merge": {"reason": "同一信访人重复信访", "merge_into": m.keeper.id},
        "request_extension": {"reason": "汛期无法施工", "new_deadline": dt.date(2027, 3, 31)},
        "decide_extension": {"decision": "approve"},
        "change_deadline": {"reason": "省里统一调整时限", "deadline": dt.date(2027, 6, 30)},
        "confirm_measure": {"level": 3, "doc_no": "潭突改〔2026〕3号", "note": "逾期未整改"},
    }
    return examples[action]


def assert_refused_and_unchanged(m: Matrix, task: Task, action: str, actor, params, *, expected: str) -> str:
    """``perform`` raises ActionError (Chinese, containing ``expected``) and changes nothing; the message."""
    return str(refused_and_unchanged(m.s, task, expected, perform, m.s, task, action, actor, NOW, **params))


# --- the table itself ----------------------------------------------------------------------------


def test_matrix_covers_every_state_and_every_handled_action():
    assert set(STATES.values()) == set(State)
    assert set(ACTIONS) == set(HANDLERS), "every action of the table (but register) has a handler"


def test_table_shape_matches_design():
    assert actions_from(State.closed) == ["reopen"]
    assert actions_from(State.cancelled) == []
    for state in OPEN_STATES:
        assert {"cancel", "merge"} <= set(actions_from(state))
    assert not is_allowed_from("close", State.rectifying)
    assert is_allowed_from("register", None)
    assert next_state("report", State.rectifying) == State.rectifying  # no target: the state is kept
    assert next_state("submit", State.rectifying) == State.verifying
    for action in ("submit_plan", "report", "pre_verify", "return_plan"):
        assert TRANSITIONS[action].target is None, action
    # Only supervisors act on final states; only units sign, plan, report and apply.
    for action, row in TRANSITIONS.items():
        if row.sources & FINAL_STATES:
            assert row.parties == {Party.supervisor}, action
    assert {a for a, t in TRANSITIONS.items() if Party.participant in t.parties} == {"report"}
    assert {a for a, t in TRANSITIONS.items() if Party.lead in t.parties} == {
        "decline", "sign", "submit_plan", "report", "submit", "request_extension"}


# --- every (state, action, party) ----------------------------------------------------------------

COMBINATIONS = [
    pytest.param(state, action, who, id=f"{state}-{action}-{who}")
    for state, action, who in itertools.product(STATES, ACTIONS, PARTIES)
]


@pytest.mark.parametrize(("state", "action", "who"), COMBINATIONS)
def test_every_state_action_party(m, state, action, who):
    task = m.tasks[state]
    assert task.state == STATES[state].value, "an earlier test left the shared task changed"
    actor = m.world.m[PARTIES[who].username]
    refusal = expected_refusal(state, action, who)
    decision = can(actor, action, task)
    params = valid_params(action, m)

    if refusal is not None:
        assert not decision, f"the table refuses {action} from {state} to {who}"
        assert refusal in decision.reason
        message = assert_refused_and_unchanged(m, task, action, actor, params, expected=refusal)
        assert message == decision.reason
        return

    assert decision, decision.reason
    before = snapshot(m.s, task.id)
    perform(m.s, task, action, actor, NOW, expected_version=task.version, **params)
    assert task.state == next_state(action, STATES[state]).value
    after = snapshot(m.s, task.id)
    assert after["task"]["state"] == task.state
    assert after["task"]["version"] > before["task"]["version"]
    newest = m.s.scalars(select(Event).where(Event.task_id == task.id).order_by(Event.id.desc())).first()
    assert (newest.action, newest.from_state, newest.to_state, newest.membership_id) == (
        action, STATES[state].value, task.state, actor.id)


@pytest.mark.parametrize("who", PARTIES)
def test_parties_of_the_matrix_memberships(m, who):
    """The party each membership is to an assigned task is what the matrix assumes."""
    expected = {PARTIES[who].party} - {None}
    assert parties(m.world.m[PARTIES[who].username], m.tasks["rectifying"]) == expected


# --- what each action requires ---------------------------------------------------------------------

DROP = object()  # remove the param


def _child(m, region, lead, **extra):
    return {"region_id": m.region_id(region), "leads": [m.unit_id(lead)], "deadline": DEADLINE, **extra}


# (id, state, action, username, changes to the valid params, part of the message)
REQUIREMENTS = [
    ("assign-no-leads", "pending", "assign", "sup_xt", {"leads": DROP}, "请选择至少一个牵头单位"),
    ("assign-no-deadline", "pending", "assign", "sup_xt", {"deadline": DROP}, "请填写整改时限"),
    ("assign-past-deadline", "pending", "assign", "sup_xt", {"deadline": dt.date(2026, 3, 1)},
     "整改时限不能早于今天"),
    ("assign-deadline-not-a-date", "pending", "assign", "sup_xt", {"deadline": "2026-12-31"}, "整改时限不是有效日期"),
    ("assign-lead-also-participant", "pending", "assign", "sup_xt",
     {"participants": lambda m: [m.unit_id("湘潭市生态环境局")]}, "同一单位不能既牵头又参与"),
    ("split-no-children", "pending", "split", "sup_xt", {"children": DROP}, "分解交办至少需要两个子任务"),
    ("split-one-child", "pending", "split", "sup_xt", {"children": lambda m: [_child(m, "雨湖区", "雨湖区人民政府")]},
     "分解交办至少需要两个子任务"),
    ("split-child-without-lead", "pending", "split", "sup_xt",
     {"children": lambda m: [_child(m, "雨湖区", "雨湖区人民政府"), _child(m, "湘乡市", "湘乡市人民政府", leads=[])]},
     "第2个子任务请选择牵头单位"),
    ("split-child-without-deadline", "pending", "split", "sup_xt",
     {"children": lambda m: [_child(m, "雨湖区", "雨湖区人民政府"),
                             _child(m, "湘乡市", "湘乡市人民政府", deadline=None)]},
     "请填写整改时限"),
    ("split-child-outside-region", "pending", "split", "sup_xt",
     {"children": lambda m: [_child(m, "雨湖区", "雨湖区人民政府"), _child(m, "攸县", "攸县人民政府")]},
     "第2个子任务的地区不在本任务范围内"),
    ("decline-no-reason", "assigned", "decline", "unit_sthj", {"reason": DROP}, "请填写退办理由"),
    ("decline-blank-reason", "assigned", "decline", "unit_sthj", {"reason": "   "}, "请填写退办理由"),
    ("submit_plan-no-target", "signed", "submit_plan", "unit_sthj", {"target": DROP}, "请填写整改目标"),
    ("submit_plan-empty-measures", "signed", "submit_plan", "unit_sthj", {"measures": ""}, "请填写整改措施"),
    ("submit_plan-milestone-after-deadline", "signed", "submit_plan", "unit_sthj",
     {"milestones": [{"due_on": dt.date(2027, 1, 31), "description": "完成"}]}, "晚于整改时限"),
    ("submit_plan-milestone-without-date", "signed", "submit_plan", "unit_sthj",
     {"milestones": [{"due_on": None, "description": "完成"}]}, "第1个阶段目标须有日期和内容"),
    ("return_plan-no-reason", "signed_plan", "return_plan", "sup_xt", {}, "请填写退回理由"),
    ("report-no-text", "rectifying", "report", "unit_sthj", {"text": DROP}, "请填写进展情况"),
    ("report-blank-text-participant", "rectifying", "report", "unit_yh", {"text": " "}, "请填写进展情况"),
    ("report-percent-over-100", "rectifying", "report", "unit_sthj", {"percent": 150}, "完成进度须是0到100之间的整数"),
    ("submit-no-text", "rectifying", "submit", "unit_sthj", {"text": DROP}, "请填写整改完成情况"),
    ("submit-no-files", "rectifying", "submit", "unit_sthj", {"files": DROP}, "至少一份佐证材料"),
    ("submit-empty-files", "rectifying", "submit", "unit_sthj", {"files": []}, "至少一份佐证材料"),
    ("submit-unknown-file-kind", "rectifying", "submit", "unit_sthj",
     {"files": lambda m: [fake_file(), fake_file(kind="selfie")]}, "佐证材料类型“selfie”无效"),
    ("return-no-reason", "verifying", "return", "sup_xt", {"reason": DROP}, "请填写退回理由"),
    ("close-no-opinion", "verifying", "close", "sup_xt", {"opinion": DROP}, "请填写验收意见"),
    ("close-date-in-future", "verifying", "close", "sup_xt", {"closed_on": dt.date(2026, 3, 3)},
     "销号日期不能晚于今天"),
    ("close-date-before-application", "verifying", "close", "sup_xt", {"closed_on": dt.date(2026, 3, 1)},
     "销号日期不能早于申请销号日期"),
    ("reopen-no-reason", "closed", "reopen", "sup_xt", {"reason": DROP}, "请填写重新整改理由"),
    ("reopen-no-deadline", "closed", "reopen", "sup_xt", {"deadline": DROP}, "请填写整改时限"),
    ("reopen-past-deadline", "closed", "reopen", "sup_xt", {"deadline": dt.date(2026, 2, 27)}, "整改时限不能早于今天"),
    ("reassign-no-leads", "rectifying", "reassign", "sup_xt", {"leads": DROP}, "请选择至少一个牵头单位"),
    ("reassign-empty-leads", "signed", "reassign", "sup_xt", {"leads": []}, "请选择至少一个牵头单位"),
    ("cancel-no-reason", "assigned", "cancel", "sup_xt", {"reason": DROP}, "请填写作废理由"),
    ("merge-no-reason", "pending", "merge", "sup_xt", {"reason": DROP}, "请填写合并理由"),
    ("merge-no-target", "pending", "merge", "sup_xt", {"merge_into": DROP}, "要保留的任务不存在"),
    ("merge-into-itself", "assigned", "merge", "sup_xt", {"merge_into": lambda m: m.tasks["assigned"].id},
     "只能合并到另一个未作废的任务"),
    ("merge-into-cancelled", "assigned", "merge", "sup_xt", {"merge_into": lambda m: m.tasks["cancelled"].id},
     "只能合并到另一个未作废的任务"),
]


@pytest.mark.parametrize(("state", "action", "username", "changes", "message"),
                         [pytest.param(*case[1:], id=case[0]) for case in REQUIREMENTS])
def test_missing_or_bad_requirement_is_refused(m, state, action, username, changes, message):
    task, actor = m.tasks[state], m.world.m[username]
    assert can(actor, action, task), "the actor may take the action; only the params are wrong"
    params = valid_params(action, m)
    if action == "return_plan":
        params.pop("reason")
    for key, value in changes.items():
        if value is DROP:
            params.pop(key, None)
        else:
            params[key] = value(m) if callable(value) else value
    assert_refused_and_unchanged(m, task, action, actor, params, expected=message)


@pytest.mark.parametrize("params", [{}, {"opinion": "  "}], ids=["missing", "blank"])
def test_pre_verify_requires_an_opinion(m, params):
    task, sup = m.central, m.world.m["sup_xt"]
    assert can(sup, "pre_verify", task)
    assert_refused_and_unchanged(m, task, "pre_verify", sup, params, expected="请填写初验意见")


def test_report_with_an_unknown_evidence_kind_changes_nothing(m):
    params = {"text": "进展", "files": [fake_file(kind="selfie")]}
    assert_refused_and_unchanged(m, m.tasks["rectifying"], "report", m.world.m["unit_sthj"], params,
                                 expected="佐证材料类型“selfie”无效")


def test_split_with_an_unknown_lead_changes_nothing(m):
    params = {"children": [_child(m, "雨湖区", "雨湖区人民政府"),
                           {"region_id": m.region_id("湘乡市"), "leads": [999_999], "deadline": DEADLINE}]}
    assert_refused_and_unchanged(m, m.tasks["pending"], "split", m.world.m["sup_xt"], params,
                                 expected="牵头单位不存在或已停用")


def test_pre_verify_with_an_unknown_evidence_kind_changes_nothing(m):
    params = {"opinion": "初验合格", "files": [fake_file(kind="selfie")]}
    assert_refused_and_unchanged(m, m.central, "pre_verify", m.world.m["sup_xt"], params,
                                 expected="佐证材料类型“selfie”无效")
