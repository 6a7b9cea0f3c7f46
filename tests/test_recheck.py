"""回头看: random samples of closed tasks within a supervisor's scope, results, reopening on regression
(返黑返臭), and reopen rates per lead unit."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select

from tests.conftest import NOW, csrf_token, fake_file, login
from tests.snapshot import refused_and_unchanged
from tracker import recheck
from tracker.models import Event, RecheckItem, RecheckSample, Task, TaskUnit
from tracker.operations import ActionError, perform
from tracker.recheck import RecheckResult, SampleCriteria
from tracker.workflow import State

NEW_DEADLINE = dt.date(2026, 9, 30)


@pytest.fixture
def closed(s, world):
    """Five closed tasks in 湘潭 (three in 雨湖区, two in 湘乡市), one in 攸县 (株洲), one still open."""
    tasks = {}
    for i, title in enumerate(["双马填埋场渗滤液", "涓水直排口", "雨湖区黑臭水体"]):
        tasks[title] = world.advance(world.assigned(title=title, code=f"YH-{i}"), "closed")
    for i, title in enumerate(["湘乡皮革工业园", "中材日新矿扬尘"]):
        task = world.assigned(title=title, code=f"XX-{i}", region="湘乡市", lead="湘乡市人民政府")
        tasks[title] = world.advance(task, "closed", lead_user="unit_xx")
    tasks["攸县"] = world.advance(world.assigned(title="攸县清水塘遗留废渣", region="攸县", lead="攸县人民政府",
                                                actor="sup_zz"), "closed", lead_user="unit_yx", sup="sup_zz")
    tasks["open"] = world.advance(world.assigned(title="湘江岸线码头", code="YH-OPEN"), "rectifying")
    s.commit()
    return tasks


def codes(sample: RecheckSample) -> set[str]:
    return {item.task.code for item in sample.items}


def test_a_sample_is_drawn_from_closed_tasks_in_scope_with_its_seed_recorded(s, world, closed):
    sample = recheck.draw_sample(s, world.m["sup_xt"], NOW, 3, SampleCriteria(), seed="2026-回头看-1")
    s.commit()
    assert (sample.population, sample.size, sample.seed, sample.drawn_on) == (5, 3, "2026-回头看-1", NOW.date())
    in_scope = sorted(t.id for key, t in closed.items() if key not in ("攸县", "open"))
    assert {i.task_id for i in sample.items} == set(random.Random("2026-回头看-1").sample(in_scope, 3))
    assert all(i.result == "pending" for i in sample.items)
    event = s.scalars(select(Event).where(Event.entity == "recheck_sample", Event.entity_id == sample.id)).one()
    assert (event.action, event.data["seed"], event.data["population"], event.data["region"]) == (
        "recheck_draw", "2026-回头看-1", 5, "湘潭市")
    assert set(event.data["tasks"]) == codes(sample)


def test_the_same_seed_over_the_same_population_draws_the_same_tasks(s, world, closed):
    first = recheck.draw_sample(s, world.m["sup_xt"], NOW, 2, SampleCriteria(), seed="abc")
    drawn = codes(first)
    s.rollback()  # as if it had not been drawn: the population is the same again
    again = recheck.draw_sample(s, world.m["sup_xt"], NOW, 2, SampleCriteria(), seed="abc")
    assert codes(again) == drawn
    assert len(recheck.draw_sample(s, world.m["sup_xt"], NOW, 5, SampleCriteria()).seed) == 16  # generated


def test_filters_narrow_the_population_and_pending_tasks_are_not_drawn_twice(s, world, closed):
    xiangxiang = world.regions["湘乡市"].id
    by_region = recheck.draw_sample(s, world.m["sup_xt"], NOW, 10, SampleCriteria(region_id=xiangxiang))
    assert codes(by_region) == {"XX-0", "XX-1"} and by_region.population == 2
    by_unit = recheck.draw_sample(s, world.m["sup_xt"], NOW, 10,
                                  SampleCriteria(unit_id=world.units["雨湖区人民政府"].id))
    assert codes(by_unit) == {"YH-0", "YH-1", "YH-2"}
    with pytest.raises(ActionError, match="没有符合条件的已销号任务"):
        recheck.draw_sample(s, world.m["sup_xt"], NOW, 1, SampleCriteria())  # all five wait in samples
    s.rollback()
    assert recheck.draw_sample(s, world.m["sup_hn"], NOW, 10, SampleCriteria(
        channel_id=world.channels["省级生态环境保护督察"].id, closed_from=NOW.date(), closed_to=NOW.date())).size == 6


@pytest.mark.parametrize(("who", "size", "criteria", "message"), [
    ("unit_yh", 3, SampleCriteria(), "只有督办人员"),
    ("viewer_xt", 3, SampleCriteria(), "只有督办人员"),
    ("sup_xt", 0, SampleCriteria(), "抽取数量须在1到200之间"),
    ("sup_xt", 3, "攸县", "不在您的管辖范围内"),
    ("sup_xt", 3, SampleCriteria(closed_from=dt.date(2026, 3, 5), closed_to=dt.date(2026, 3, 1)), "起点晚于终点"),
    ("sup_zz", 3, SampleCriteria(channel_id=-1), "不存在"),
])
def test_bad_draws_are_refused_and_write_nothing(s, world, closed, who, size, criteria, message):
    if criteria == "攸县":
        criteria = SampleCriteria(region_id=world.regions["攸县"].id)
    with pytest.raises(ActionError, match=message):
        recheck.draw_sample(s, world.m[who], NOW, size, criteria)
    s.rollback()
    assert s.scalars(select(RecheckSample)).all() == []


def test_split_parents_are_not_drawn_their_children_are(s, world):
    parent = world.register(title="长株潭绿心违规建设", region="湘潭市")
    perform(s, parent, "split", world.m["sup_xt"], NOW, children=[
        {"region_id": world.regions["雨湖区"].id, "leads": [world.units["雨湖区人民政府"].id],
         "deadline": dt.date(2026, 12, 31)},
        {"region_id": world.regions["湘乡市"].id, "leads": [world.units["湘乡市人民政府"].id],
         "deadline": dt.date(2026, 12, 31)}])
    first, second = parent.children
    world.advance(first, "closed")
    world.advance(second, "closed", lead_user="unit_xx")
    assert parent.state == State.closed
    sample = recheck.draw_sample(s, world.m["sup_xt"], NOW, 10, SampleCriteria())
    assert {i.task_id for i in sample.items} == {first.id, second.id}


def test_a_passed_recheck_is_recorded_on_the_task(s, world, closed):
    sample = recheck.draw_sample(s, world.m["sup_xt"], NOW, 1, SampleCriteria(), seed="x")
    item = sample.items[0]
    recheck.record_result(s, world.m["sup_yh"] if item.task.region.name == "雨湖区" else world.m["sup_xt"], NOW, item,
                          RecheckResult("passed", "现场水体清澈，无返黑返臭"))
    s.commit()
    assert (item.result, item.checked_on, item.task.state) == ("passed", NOW.date(), State.closed)
    event = s.scalars(select(Event).where(Event.task_id == item.task_id).order_by(Event.id.desc())).first()
    assert (event.action, event.data["result"], event.data["sample_id"]) == ("recheck", "passed", sample.id)


def test_a_regression_reopens_the_task_with_the_finding_and_a_new_deadline(s, world, closed):
    sample = recheck.draw_sample(s, world.m["sup_xt"], NOW, 10, SampleCriteria(region_id=world.regions["湘乡市"].id))
    item = sample.items[0]
    recheck.record_result(s, world.m["sup_xt"], NOW, item, RecheckResult(
        "regressed", "汛期厂区雨水排口检出总铬超标", deadline=NEW_DEADLINE))
    s.commit()
    task = item.task
    assert (task.state, task.reopen_count, task.deadline, task.closed_on) == (State.rectifying, 1, NEW_DEADLINE, None)
    reopen, noted = s.scalars(select(Event).where(Event.task_id == task.id).order_by(Event.id.desc())).all()[:2][::-1]
    assert (reopen.action, noted.action) == ("reopen", "recheck")
    assert reopen.data["reason"] == "回头看抽查发现问题反弹（返黑返臭）：汛期厂区雨水排口检出总铬超标"
    assert (item.result, item.note, item.membership_id) == ("regressed", "汛期厂区雨水排口检出总铬超标",
                                                            world.m["sup_xt"].id)


@pytest.mark.parametrize(("who", "found", "message"), [
    ("sup_xt", RecheckResult("regressed", "", deadline=NEW_DEADLINE), "请填写复查发现的问题"),
    ("sup_xt", RecheckResult("regressed", "返黑返臭"), "请填写整改时限"),
    ("sup_xt", RecheckResult("regressed", "返黑返臭", deadline=dt.date(2026, 1, 1)), "不能早于今天"),
    ("sup_xt", RecheckResult("maybe"), "请选择复查结果"),
    ("sup_zz", RecheckResult("passed"), "不在您的管辖范围内"),
    ("viewer_xt", RecheckResult("passed"), "只有督办人员"),
])
def test_bad_results_are_refused_and_change_nothing(s, world, closed, who, found, message):
    sample = recheck.draw_sample(s, world.m["sup_xt"], NOW, 1, SampleCriteria(region_id=world.regions["湘乡市"].id))
    item = sample.items[0]
    refused_and_unchanged(s, item.task, message, recheck.record_result, s, world.m[who], NOW, item, found)
    assert s.get(RecheckItem, item.id).result == "pending"


def test_a_result_is_recorded_once(s, world, closed):
    item = recheck.draw_sample(s, world.m["sup_xt"], NOW, 1, SampleCriteria()).items[0]
    recheck.record_result(s, world.m["sup_xt"], NOW, item, RecheckResult("passed"))
    with pytest.raises(ActionError, match="已记录复查结果"):
        recheck.record_result(s, world.m["sup_xt"], NOW, item, RecheckResult("regressed", "x", deadline=NEW_DEADLINE))


# --- reopen rates -------------------------------------------------------------------------------------------


def test_reopen_rates_per_lead_unit_count_tasks_closed_ever_and_reopened(s, world, closed):
    sup = world.m["sup_xt"]
    perform(s, closed["涓水直排口"], "reopen", sup, NOW, reason="返黑返臭", deadline=NEW_DEADLINE)
    perform(s, closed["湘乡皮革工业园"], "reopen", sup, NOW, reason="返黑返臭", deadline=NEW_DEADLINE)
    pige = closed["湘乡皮革工业园"]  # closed again, then reopened again
    perform(s, pige, "submit", world.m["unit_xx"], NOW, text="再次整改完成", files=[fake_file()])
    perform(s, pige, "close", world.m["sup_hn"], NOW, opinion="同意销号")
    perform(s, closed["湘乡皮革工业园"], "reopen", sup, NOW, reason="再次反弹", deadline=NEW_DEADLINE)
    # A joint lead: counted under each lead unit, once in the total.
    s.add(TaskUnit(task_id=closed["双马填埋场渗滤液"].id, unit_id=world.units["湘潭市生态环境局"].id, role="lead",
                   position=5))
    perform(s, closed["双马填埋场渗滤液"], "reopen", sup, NOW, reason="渗滤液超标", deadline=NEW_DEADLINE)
    s.commit()
    rows, total = recheck.reopen_rates(s, sup)
    assert [(r.unit, r.closed, r.reopened, r.reopens) for r in rows] == [
        ("湘潭市生态环境局", 1, 1, 1), ("雨湖区人民政府", 3, 2, 2), ("湘乡市人民政府", 2, 1, 2)]
    assert (total.closed, total.reopened, total.reopens) == (5, 3, 4)  # 攸县 is outside 湘潭's scope
    assert rows[1].rate == pytest.approx(2 / 3)
    province, province_total = recheck.reopen_rates(s, world.m["sup_hn"])
    assert province_total.closed == 6 and "攸县人民政府" in {r.unit for r in province}
    _, filtered = recheck.reopen_rates(s, sup, channel_id=world.channels["信访件"].id)
    assert filtered.closed == 0


# --- pages ----------------------------------------------------------------------------------------------------


def test_a_supervisor_draws_a_sample_and_records_a_regression_on_the_pages(client, s, world, closed):
    login(client, "sup_xt")
    assert 'href="/recheck"' in client.get("/todo").get_data(as_text=True)  # in the nav
    page = client.get("/recheck")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="size"' in html
    drawn = client.post("/recheck", data={"csrf_token": csrf_token(html), "size": "2", "channel_id": "0",
                                          "round_id": "0", "region_id": str(world.regions["湘乡市"].id),
                                          "unit_id": "0", "seed": "页面抽查", "note": "2026年第一季度回头看"})
    assert drawn.status_code == 302
    sample = s.scalars(select(RecheckSample)).one()
    html = client.get(drawn.headers["Location"]).get_data(as_text=True)
    assert "页面抽查" in html and "湘乡皮革工业园" in html and "中材日新矿扬尘" in html
    item = sample.items[0]
    prefix = f"i{item.id}"
    posted = client.post(f"/recheck/items/{item.id}", data={
        "csrf_token": csrf_token(html), f"{prefix}-result": "regressed", f"{prefix}-note": "雨后厂区周边水体发黑",
        f"{prefix}-deadline_kind": "date", f"{prefix}-deadline": "2026-12-31"})
    assert posted.status_code == 302
    s.expire_all()
    assert s.get(RecheckItem, item.id).result == "regressed"
    assert s.get(Task, item.task_id).state == State.rectifying
    rates = client.get("/recheck/reopen-rates").get_data(as_text=True)
    assert "湘乡市人民政府" in rates and "50.0%" in rates


def test_viewers_read_units_cannot_and_other_regions_get_404(app, client, s, world, closed):
    sample = recheck.draw_sample(s, world.m["sup_zz"], NOW, 1, SampleCriteria())
    s.commit()
    login(client, "viewer_xt")
    html = client.get("/recheck").get_data(as_text=True)
    assert "抽查记录" in html and 'name="size"' not in html
    assert client.get(f"/recheck/{sample.id}").status_code == 404  # drawn in 株洲
    assert client.get("/recheck/reopen-rates").status_code == 200
    unit = app.test_client()
    login(unit, "unit_yh")
    assert unit.get("/recheck").status_code == 403
