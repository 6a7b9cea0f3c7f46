"""举一反三: linked tasks for similar problems elsewhere, created from one task, and the family together."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, csrf_token, login
from tracker import family
from tracker.family import SimilarSpec
from tracker.models import Event, Task, TaskLink
from tracker.operations import ActionError, link_tasks, perform
from tracker.workflow import State


@pytest.fixture
def source_with_plan(s, world):
    task = world.register(title="雨湖区城区黑臭水体返黑返臭", category="水", description="汛期水体返黑返臭",
                          problem_title="省级督察反馈黑臭水体问题", target="消除黑臭", measures="截污、清淤、补水")
    perform(s, task, "assign", world.m["sup_xt"], NOW, leads=[world.units["雨湖区人民政府"].id],
            deadline_text="2026年9月底前")
    s.commit()
    return task


def test_similar_tasks_copy_what_applies_and_are_linked(s, world, source_with_plan):
    src = source_with_plan
    created = family.create_similar(s, world.m["sup_xt"], NOW, src, [
        SimilarSpec(world.regions["湘乡市"].id, leads=[world.units["湘乡市人民政府"].id]),
        SimilarSpec(world.regions["湘潭高新区"].id, title="湘潭高新区黑臭水体排查"),
    ], note="举一反三：排查同类黑臭水体")
    s.commit()
    assigned, pending = created
    for task in created:
        assert (task.channel_id, task.round_id, task.category, task.description, task.target, task.measures) == (
            src.channel_id, src.round_id, "水", "汛期水体返黑返臭", "消除黑臭", "截污、清淤、补水")
        assert task.problem_id == src.problem_id and src.code in task.remarks
    assert (assigned.title, assigned.state, assigned.deadline, assigned.deadline_text) == (
        src.title, State.assigned, dt.date(2026, 9, 30), "2026年9月底前")
    assert [u.name for u in assigned.lead_units] == ["湘乡市人民政府"]
    assert (pending.title, pending.state, pending.region.name) == (
        "湘潭高新区黑臭水体排查", State.pending, "湘潭高新区")
    links = s.scalars(select(TaskLink).where(TaskLink.task_id == src.id).order_by(TaskLink.id)).all()
    assert [(lk.other_task_id, lk.kind, lk.note) for lk in links] == [
        (assigned.id, "similar", "举一反三：排查同类黑臭水体"), (pending.id, "similar", "举一反三：排查同类黑臭水体")]
    actions = s.scalars(select(Event.action).where(Event.task_id == assigned.id).order_by(Event.id)).all()
    assert actions == ["register", "assign", "similar"]
    assert s.scalars(select(Event.action).where(Event.task_id == src.id, Event.action == "link")).all() == ["link"] * 2


def test_an_explicit_deadline_wins_over_the_copied_text(s, world, source_with_plan):
    [task] = family.create_similar(s, world.m["sup_xt"], NOW, source_with_plan, [SimilarSpec(
        world.regions["湘乡市"].id, leads=[world.units["湘乡市人民政府"].id], deadline=dt.date(2026, 12, 31))])
    assert (task.deadline, task.deadline_text) == (dt.date(2026, 12, 31), "2026年12月31日前")


@pytest.mark.parametrize(("who", "specs", "message"), [
    ("unit_yh", lambda w: [SimilarSpec(w.regions["湘乡市"].id)], "只有督办人员"),
    ("sup_xt", lambda w: [], "请至少选择一个地区"),
    ("sup_xt", lambda w: [SimilarSpec(w.regions["湘乡市"].id), SimilarSpec(w.regions["攸县"].id)],
     "第2项：所在地区不在您的管辖范围内"),
    ("sup_xt", lambda w: [SimilarSpec(w.regions["湘乡市"].id, leads=[w.units["湘乡市人民政府"].id],
                                      deadline=dt.date(2025, 1, 1))], "第1项：整改时限不能早于今天"),
])
def test_a_refused_row_creates_nothing(s, world, source_with_plan, who, specs, message):
    count = s.scalar(select(func.count()).select_from(Task))
    with pytest.raises(ActionError, match=message):
        family.create_similar(s, world.m[who], NOW, source_with_plan, specs(world))
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Task)) == count
    assert s.scalars(select(TaskLink)).all() == []


def test_the_family_is_every_task_reached_over_similar_links_as_far_as_one_can_see(s, world):
    a = world.assigned(title="雨湖区黑臭水体")
    b = world.assigned(title="湘乡市黑臭水体", region="湘乡市", lead="湘乡市人民政府")
    c = world.assigned(title="攸县黑臭水体", region="攸县", lead="攸县人民政府", actor="sup_zz")
    d = world.assigned(title="雨湖区另一条黑臭水体")
    lonely = world.assigned(title="雨湖区扬尘")
    sup = world.m["sup_hn"]
    link_tasks(s, a, b, sup, NOW)
    link_tasks(s, c, b, sup, NOW)  # a — b — c, over two links and in both directions
    perform(s, d, "merge", world.m["sup_xt"], NOW, reason="重复", merge_into=a.id)  # a duplicate is not family
    s.commit()
    assert {t.id for t in family.family_of(s, sup, a).members} == {a.id, b.id, c.id}
    assert family.family_of(s, sup, c).members == family.family_of(s, sup, a).members
    scoped = family.family_of(s, world.m["sup_xt"], a)  # 湘潭 cannot see 攸县
    assert ({t.id for t in scoped.members}, scoped.hidden) == ({a.id, b.id}, 1)
    alone = family.family_of(s, sup, lonely)
    assert (alone.members, alone.hidden, bool(alone)) == ([lonely], 0, False)


def test_the_pages_create_similar_tasks_and_show_the_family(client, s, world, source_with_plan):
    src = source_with_plan
    login(client, "sup_xt")
    html = client.get(f"/tasks/{src.id}").get_data(as_text=True)
    assert f"/tasks/{src.id}/similar" in html
    form_page = client.get(f"/tasks/{src.id}/similar")
    html = form_page.get_data(as_text=True)
    assert form_page.status_code == 200 and "2026年9月底前" in html
    posted = client.post(f"/tasks/{src.id}/similar", data={
        "csrf_token": csrf_token(html), "note": "举一反三",
        "r0-region_id": str(world.regions["湘乡市"].id), "r0-leads": [str(world.units["湘乡市人民政府"].id)],
        "r0-deadline_text": "2026年12月底前", "r1-region_id": "0", "r2-region_id": "0"})
    assert posted.status_code == 302
    created = s.scalars(select(Task).where(Task.region_id == world.regions["湘乡市"].id)).one()
    assert (created.state, created.deadline) == (State.assigned, dt.date(2026, 12, 31))
    page = client.get(f"/tasks/{created.id}").get_data(as_text=True)
    assert "同类问题（举一反三）" in page and src.code in page


@pytest.mark.parametrize(("username", "status"), [("unit_yh", 403), ("viewer_xt", 403), ("sup_zz", 404)])
def test_only_supervisors_in_scope_open_the_form(client, world, source_with_plan, username, status):
    login(client, username)
    assert client.get(f"/tasks/{source_with_plan.id}/similar").status_code == status
