"""批量办理 (DESIGN §4 through ``operations.perform``): 交办, 改派, 督办措施 and 审批延期 on a selection —
every selected task changes, each with its own event, or none does and each refusal says why."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, csrf_token, login
from tests.snapshot import snapshot
from tracker import bulk
from tracker.audit import CONFLICT_MESSAGE, ActionError
from tracker.models import EscalationRecord, Event, Membership, Notification, OutboxMail, Task
from tracker.operations import perform
from tracker.workflow import State

D = dt.date
DEADLINE = D(2026, 9, 30)
WEB_DEADLINE = D(2030, 6, 30)  # the pages act at the real time
TITLES = ("双马填埋场渗滤液处理不到位", "涓水直排口污水直排湘江", "湘乡皮革工业园污水处理厂超标排放")


def events(s, task_ids, action) -> int:
    return s.scalar(select(func.count()).select_from(Event).where(Event.task_id.in_(task_ids),
                                                                  Event.action == action))


def written(s) -> dict[str, int]:
    """Rows that a refused selection must not leave behind anywhere."""
    return {model.__name__: s.scalar(select(func.count()).select_from(model))
            for model in (Event, Notification, OutboxMail, EscalationRecord)}


@pytest.fixture
def pending(world, s):
    """Three 待交办 problems in 湘潭 (雨湖区, 雨湖区, 湘乡市), registered by the city supervisor."""
    tasks = [world.register(title=TITLES[0]), world.register(title=TITLES[1]),
             world.register(title=TITLES[2], region="湘乡市")]
    s.commit()
    return tasks


def versions(tasks):
    return {t.id: t.version for t in tasks}


def assign_params(world, *leads):
    return {"leads": [world.units[name].id for name in leads or ("雨湖区人民政府",)], "participants": [],
            "deadline": DEADLINE}


# --- 交办 ------------------------------------------------------------------------------------------------------


def test_bulk_assign_hands_every_task_to_the_same_lead_with_one_event_each(s, world, pending):
    ids = [t.id for t in pending]
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, ids, "assign",
                               assign_params(world, "雨湖区人民政府", "湘潭市生态环境局"), versions(pending))
    s.commit()
    assert result.ok and [t.id for t in result.done] == ids
    s.expire_all()
    for task in pending:
        assert task.state == State.assigned.value and task.deadline == DEADLINE
        assert [u.name for u in task.lead_units] == ["雨湖区人民政府", "湘潭市生态环境局"]
        assert task.assigned_by_unit.name == "湘潭市突出环境问题整改办公室"
    assert events(s, ids, "assign") == 3
    by_task = dict(s.execute(select(Event.task_id, func.count()).where(Event.action == "assign")
                             .group_by(Event.task_id)).all())
    assert by_task == {i: 1 for i in ids}
    # Each task's own 交办 notice reached the lead unit's user.
    assert s.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == world.user("unit_yh").id)) == 3


def test_one_refused_task_leaves_every_task_unchanged_and_says_why(s, world, pending):
    done_already = world.assigned(title="南尧村重金属尾砂污染")
    s.commit()
    selection = [*pending[:2], done_already, pending[2]]
    before = {t.id: snapshot(s, t.id) for t in selection}
    totals = written(s)

    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in selection], "assign",
                               assign_params(world), versions(selection))

    assert not result.ok
    (refusal,) = result.refused
    assert refusal.task_id == done_already.id and refusal.code == done_already.code
    assert refusal.title == "南尧村重金属尾砂污染"
    assert "当前状态为“已交办（待签收）”，不能交办" in str(refusal.reason)
    # The savepoint is rolled back already: nothing of the other three is left, before or after the view's rollback.
    assert {t.id: snapshot(s, t.id) for t in selection} == before and written(s) == totals
    s.rollback()
    assert {t.id: snapshot(s, t.id) for t in selection} == before and written(s) == totals
    assert all(t.state == State.pending.value for t in pending)


def test_every_refusal_is_reported_not_only_the_first(s, world, pending):
    first, second = world.assigned(title="清水塘老工业区遗留废渣"), world.assigned(title="九丰洞钒矿废渣")
    s.commit()
    selection = [first, pending[0], second]
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in selection], "assign",
                               assign_params(world), versions(selection))
    assert [r.task_id for r in result.refused] == [first.id, second.id]
    s.rollback()
    s.expire_all()
    assert pending[0].state == State.pending.value and events(s, [pending[0].id], "assign") == 0


def test_bad_input_is_refused_for_every_task_and_changes_nothing(s, world, pending):
    params = {**assign_params(world), "deadline": D(2026, 1, 5)}  # before today
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in pending], "assign", params,
                               versions(pending))
    assert [str(r.reason) for r in result.refused] == ["整改时限不能早于今天"] * 3
    s.rollback()
    assert events(s, [t.id for t in pending], "assign") == 0


def test_a_task_out_of_scope_is_refused_as_missing_and_nothing_changes(s, world, pending):
    youxian = world.register(title="攸县网岭镇养殖污染", region="攸县", actor="sup_zz")
    s.commit()
    ids = [pending[0].id, youxian.id]
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, ids, "assign", assign_params(world),
                               versions([pending[0], youxian]))
    (refusal,) = result.refused
    assert (refusal.task_id, str(refusal.reason)) == (youxian.id, bulk.NOT_FOUND)
    assert refusal.title == ""  # nothing of a task out of scope is told
    s.rollback()
    s.expire_all()
    assert pending[0].state == youxian.state == State.pending.value


def test_a_unit_may_not_assign_in_bulk(s, world, pending):
    result = bulk.bulk_perform(s, world.m["unit_yh"], NOW, [pending[0].id], "assign", assign_params(world),
                               versions(pending))
    # A unit sees no 待交办 task of its county: it has no part in it yet.
    assert [str(r.reason) for r in result.refused] == [bulk.NOT_FOUND]


def test_a_viewer_sees_the_tasks_but_may_not_assign(s, world, pending):
    result = bulk.bulk_perform(s, world.m["viewer_xt"], NOW, [t.id for t in pending], "assign",
                               assign_params(world), versions(pending))
    assert [str(r.reason) for r in result.refused] == ["您的身份不能交办"] * 3


def test_a_task_changed_since_the_list_was_shown_is_refused_with_the_conflict_message(s, world, pending):
    shown = versions(pending)
    perform(s, pending[1], "assign", world.m["sup_yh"], NOW, **assign_params(world))
    s.commit()
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in pending], "assign",
                               assign_params(world), shown)
    assert [(r.task_id, str(r.reason)) for r in result.refused] == [(pending[1].id, CONFLICT_MESSAGE)]
    s.rollback()
    assert events(s, [pending[0].id, pending[2].id], "assign") == 0


def test_a_change_committed_by_another_session_meanwhile_is_a_conflict(s, world, pending, app):
    """The list's version matches what this session read, but another request committed since: the guarded
    UPDATE finds no row (StaleDataError), and that task is refused like any other."""
    shown = versions(pending)
    other = app.extensions["tracker.sessionmaker"]()
    try:
        task = other.get(Task, pending[2].id)
        perform(other, task, "assign", other.get(Membership, world.m["sup_xt"].id), NOW, **assign_params(world))
        other.commit()
    finally:
        other.close()
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in pending], "assign",
                               assign_params(world), shown)
    assert [(r.task_id, str(r.reason)) for r in result.refused] == [(pending[2].id, CONFLICT_MESSAGE)]
    s.rollback()
    s.expire_all()
    assert [t.state for t in pending] == [State.pending.value, State.pending.value, State.assigned.value]
    assert events(s, [t.id for t in pending], "assign") == 1


def test_selection_limits_and_actions_that_cannot_be_bulk(s, world, pending):
    sup = world.m["sup_xt"]
    with pytest.raises(ActionError, match="请至少选择一个任务"):
        bulk.bulk_perform(s, sup, NOW, [], "assign", assign_params(world), {})
    with pytest.raises(ActionError, match=f"一次最多批量办理{bulk.MAX_TASKS}个任务"):
        bulk.bulk_perform(s, sup, NOW, range(1, bulk.MAX_TASKS + 2), "assign", assign_params(world), {})
    with pytest.raises(ActionError, match="该操作不能批量办理"):
        bulk.bulk_perform(s, sup, NOW, [pending[0].id], "cancel", {"reason": "重复"}, {})
    # A task ticked twice is done once.
    result = bulk.bulk_perform(s, sup, NOW, [pending[0].id, pending[0].id], "assign", assign_params(world),
                               versions(pending))
    assert result.ok and len(result.done) == 1 and events(s, [pending[0].id], "assign") == 1


# --- 改派, 督办措施, 审批延期 ----------------------------------------------------------------------------------


def test_bulk_reassign_keeps_each_tasks_participants_unless_given(s, world):
    a = world.assigned(title=TITLES[0], participants=["湘潭市生态环境局"])
    b = world.assigned(title=TITLES[1])
    world.advance(b, "signed")
    s.commit()
    params = {"leads": [world.units["湘乡市人民政府"].id], "participants": None, "reason": "属地调整"}
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [a.id, b.id], "reassign", params, versions([a, b]))
    s.commit()
    assert result.ok
    s.expire_all()
    assert [u.name for u in a.lead_units] == [u.name for u in b.lead_units] == ["湘乡市人民政府"]
    assert [u.name for u in a.participant_units] == ["湘潭市生态环境局"] and b.participant_units == []
    assert a.state == b.state == State.assigned.value and b.signed_on is None
    assert events(s, [a.id, b.id], "reassign") == 2


def test_bulk_confirm_measure_records_the_level_on_each_task(s, world):
    tasks = [world.assigned(title=t) for t in TITLES[:2]]
    s.commit()
    params = {"level": 2, "doc_no": "潭突改函〔2026〕3号", "note": "逾期未完成"}
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in tasks], "confirm_measure", params,
                               versions(tasks))
    s.commit()
    assert result.ok
    records = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id.in_([t.id for t in tasks]))).all()
    assert sorted((r.task_id, r.level, r.status, r.doc_no) for r in records) == sorted(
        (t.id, 2, "confirmed", "潭突改函〔2026〕3号") for t in tasks)
    assert all(t.escalation_level == 2 for t in tasks)


def test_bulk_confirm_measure_without_doc_no_is_refused_for_all(s, world):
    tasks = [world.assigned(title=t) for t in TITLES[:2]]
    s.commit()
    totals = written(s)
    result = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [t.id for t in tasks], "confirm_measure",
                               {"level": 2, "doc_no": ""}, versions(tasks))
    assert [str(r.reason) for r in result.refused] == ["函告须填写文号"] * 2
    s.rollback()
    assert written(s) == totals


def test_bulk_extension_decision_needs_a_pending_request_on_every_task(s, world):
    asked, not_asked = (world.advance(world.assigned(title=t), "rectifying") for t in TITLES[:2])
    perform(s, asked, "request_extension", world.m["unit_yh"], NOW, reason="汛期无法施工",
            new_deadline=D(2027, 3, 31))
    s.commit()
    refused = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [asked.id, not_asked.id], "decide_extension",
                                {"decision": "approve", "note": ""}, versions([asked, not_asked]))
    assert [(r.task_id, str(r.reason)) for r in refused.refused] == [(not_asked.id, "没有待审批的延期申请")]
    s.rollback()
    s.expire_all()
    assert asked.deadline == D(2026, 12, 31) and asked.pending_extension is not None

    perform(s, not_asked, "request_extension", world.m["unit_yh"], NOW, reason="资金未到位",
            new_deadline=D(2027, 6, 30))
    s.commit()
    done = bulk.bulk_perform(s, world.m["sup_xt"], NOW, [asked.id, not_asked.id], "decide_extension",
                             {"decision": "approve", "note": "同意"}, versions([asked, not_asked]))
    s.commit()
    assert done.ok
    s.expire_all()
    assert (asked.deadline, not_asked.deadline) == (D(2027, 3, 31), D(2027, 6, 30))
    assert asked.original_deadline == not_asked.original_deadline == D(2026, 12, 31)


# --- the pages ---------------------------------------------------------------------------------------------------


def bulk_page(client, action, tasks, shown=None):
    shown = shown or {t.id: t.version for t in tasks}
    query = "&".join(f"task={t.id}:{shown[t.id]}" for t in tasks)
    response = client.get(f"/tasks/bulk?action={action}&{query}")
    return response, response.get_data(as_text=True)


def post_bulk(client, action, tasks, data, shown=None):
    response, html = bulk_page(client, action, tasks, shown)
    assert response.status_code == 200, html
    shown = shown or {t.id: t.version for t in tasks}
    form = {"csrf_token": csrf_token(html), "action": action, "task": [f"{t.id}:{shown[t.id]}" for t in tasks]}
    form.update({f"bulk-{k}": v for k, v in data.items()})
    return client.post("/tasks/bulk", data=form)


def test_the_list_offers_bulk_actions_to_supervisors_only(client, world, pending):
    login(client, "sup_xt")
    html = client.get("/tasks?state=pending").get_data(as_text=True)
    assert 'id="bulk-form"' in html and "批量交办" in html and "批量改派" in html
    assert f'value="{pending[0].id}:{pending[0].version}"' in html and 'form="bulk-form"' in html
    login(client, "viewer_xt")
    html = client.get("/tasks?state=pending").get_data(as_text=True)
    assert 'id="bulk-form"' not in html and TITLES[0] in html
    assert client.get(f"/tasks/bulk?action=assign&task={pending[0].id}:1").status_code == 403


def test_bulk_assign_page_assigns_every_ticked_task(client, world, s, pending):
    login(client, "sup_xt")
    response, html = bulk_page(client, "assign", pending)
    assert response.status_code == 200 and all(t in html for t in TITLES) and "可以办理" in html
    assert "autofocus" in html and 'for="bulk-leads"' in html
    response = post_bulk(client, "assign", pending, {"leads": str(world.units["雨湖区人民政府"].id),
                                                      "deadline": WEB_DEADLINE.isoformat(), "deadline_kind": "date"})
    assert response.status_code == 302, response.get_data(as_text=True)
    s.expire_all()
    assert all(t.state == State.assigned.value and t.deadline == WEB_DEADLINE for t in pending)
    assert events(s, [t.id for t in pending], "assign") == 3
    assert "已批量交办 3 个任务" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_bulk_page_shows_the_reason_per_task_and_changes_nothing(client, world, s, pending):
    assigned = world.assigned(title="南尧村重金属尾砂污染")
    s.commit()
    login(client, "sup_xt")
    _, html = bulk_page(client, "assign", [pending[0], assigned])
    assert "当前状态为“已交办（待签收）”，不能交办" in html  # warned before submitting
    response = post_bulk(client, "assign", [pending[0], assigned],
                         {"leads": str(world.units["雨湖区人民政府"].id), "deadline": WEB_DEADLINE.isoformat()})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "有 1 个任务不能办理，所选任务均未改变" in html and "未办理：" in html
    s.expire_all()
    assert pending[0].state == State.pending.value and events(s, [pending[0].id], "assign") == 0


def test_bulk_page_refuses_a_stale_selection_with_the_conflict_message(client, world, s, pending):
    shown = versions(pending)
    perform(s, pending[0], "assign", world.m["sup_xt"], NOW, **assign_params(world))
    s.commit()
    login(client, "sup_xt")
    response = post_bulk(client, "assign", pending[:2], {"leads": str(world.units["雨湖区人民政府"].id),
                                                          "deadline": WEB_DEADLINE.isoformat()}, shown)
    assert response.status_code == 409 and CONFLICT_MESSAGE in response.get_data(as_text=True)
    s.expire_all()
    assert pending[1].state == State.pending.value


def test_bulk_page_of_another_county_shows_the_task_as_missing(client, world, s, pending):
    youxian = world.register(title="攸县网岭镇养殖污染", region="攸县", actor="sup_zz")
    s.commit()
    login(client, "sup_xt")
    response, html = bulk_page(client, "assign", [pending[0], youxian])
    assert response.status_code == 200 and "攸县网岭镇养殖污染" not in html
    assert "任务不存在或不在您的管辖范围内" in html
    assert client.get(f"/tasks/bulk?action=split&task={pending[0].id}:1").status_code == 404
    response = client.get("/tasks/bulk?action=assign", follow_redirects=True)
    assert "请至少选择一个任务" in response.get_data(as_text=True)


def test_bulk_form_errors_keep_the_selection(client, world, s, pending):
    login(client, "sup_xt")
    response = post_bulk(client, "assign", pending[:2], {"deadline": WEB_DEADLINE.isoformat()})  # no lead unit
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "此项必填" in html
    assert f'value="{pending[0].id}:{pending[0].version}" checked' in html
    s.expire_all()
    assert events(s, [t.id for t in pending], "assign") == 0
