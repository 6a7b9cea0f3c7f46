"""Time on the web: traffic lights, the report page with its drill-down, the calendar and the
settings pages, extensions through the forms, and 本期未报送 in 待办."""

from __future__ import annotations

import datetime as dt
import io
import json

from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.test_web import page, post_action
from tracker import schedule, settings
from tracker.models import CalendarYear, Setting, Task
from tracker.operations import perform
from tracker.timeutil import local_date, utcnow

TODAY = local_date(utcnow())


def overdue_task(world, s):
    """A task assigned a while ago whose deadline has passed (history dated in the past)."""
    then = utcnow() - dt.timedelta(days=60)
    task = world.assigned(now=then, deadline=TODAY - dt.timedelta(days=10), title="涓水直排口整治逾期")
    world.advance(task, "rectifying", now=then)
    s.commit()
    return task


def test_an_overdue_task_shows_red_in_lists_and_on_its_page(client, world, s):
    task = overdue_task(world, s)
    login(client, "sup_xt")
    _, html = page(client, "/tasks")  # 序时进度 was computed when the plan was approved, 60 days ago
    perform(s, s.get(Task, task.id), "report", world.m["unit_yh"], utcnow(), text="仍在施工", percent=50)
    s.commit()
    _, html = page(client, "/tasks?schedule=overdue")
    assert "涓水直排口整治逾期" in html and "light-red" in html
    _, html = page(client, f"/tasks/{task.id}")
    assert "已逾期" in html and "个工作日" in html


def test_the_report_page_counts_and_drills_down_to_the_tasks(client, world, s):
    overdue_task(world, s)
    on_time = world.assigned(title="双马填埋场渗滤液", deadline=TODAY + dt.timedelta(days=200))
    s.commit()
    login(client, "sup_xt")
    response, html = page(client, f"/reports?by=region&as_of={TODAY.isoformat()}")
    assert response.status_code == 200 and "雨湖区" in html and "合计" in html
    group = json.dumps(["雨湖区"], ensure_ascii=False)
    response, html = page(client, f"/reports/tasks?by=region&as_of={TODAY.isoformat()}&cell=overdue&group={group}")
    assert response.status_code == 200
    assert "涓水直排口整治逾期" in html and on_time.title not in html
    _, html = page(client, f"/reports/tasks?by=region&as_of={TODAY.isoformat()}&cell=total&group={group}")
    assert "涓水直排口整治逾期" in html and on_time.title in html


def test_the_report_page_is_scoped(client, world, s):
    login(client, "sup_zz")
    assert client.get(f"/reports?region={world.regions['湘潭市'].id}").status_code == 404
    login(client, "unit_yh")
    assert client.get("/reports").status_code == 403


def test_a_unit_requests_an_extension_and_the_supervisor_approves_it_on_the_web(client, world, s):
    task = world.assigned(deadline=TODAY + dt.timedelta(days=30))
    world.advance(task, "rectifying")
    s.commit()
    original = task.deadline
    login(client, "unit_yh")
    wanted = (TODAY + dt.timedelta(days=90)).isoformat()
    response = post_action(client, task, "request_extension", {"new_deadline": wanted, "reason": "汛期停工"})
    assert response.status_code == 302
    login(client, "sup_xt")
    _, html = page(client, "/todo")
    assert task.title in html and "审批延期" in html
    s.expire_all()
    task = s.get(Task, task.id)
    assert post_action(client, task, "decide_extension", {"decision": "approve"}).status_code == 302
    s.expire_all()
    task = s.get(Task, task.id)
    assert task.deadline.isoformat() == wanted and task.original_deadline == original and task.extension_count == 1
    _, html = page(client, f"/tasks/{task.id}")
    assert "时限变更" in html and "汛期停工" in html


def test_not_reported_tasks_wait_in_the_units_todo(client, world, s):
    then = utcnow() - dt.timedelta(days=100)
    task = world.assigned(now=then, deadline=TODAY + dt.timedelta(days=200), title="湘乡皮革工业园污水")
    world.advance(task, "rectifying", now=then)
    s.commit()
    schedule.refresh_due(s, TODAY, settings.time_settings(s))
    s.commit()
    assert s.get(Task, task.id).not_reported is True
    login(client, "unit_yh")
    _, html = page(client, "/todo")
    assert "湘乡皮革工业园污水" in html and "本期未报送" in html


def test_the_province_admin_imports_a_year_and_edits_a_day(client, world, s):
    login(client, "admin_hn")
    _, html = page(client, "/admin/calendar?year=2031")
    assert "尚未确认" in html
    csv = "date,is_workday,name\n2031-10-01,0,国庆节\n2031-10-11,1,国庆节调休上班\n".encode()
    response = client.post("/admin/calendar/import", data={
        "u-csrf_token": csrf_token(html), "u-file": (io.BytesIO(csv), "2031.csv"), "u-source": "国办发明电"},
        content_type="multipart/form-data")
    assert response.status_code == 302
    assert s.get(CalendarYear, 2031).confirmed
    _, html = page(client, "/admin/calendar?year=2031")
    assert "国庆节调休上班" in html and "已确认" in html
    bad = client.post("/admin/calendar/import", data={
        "u-csrf_token": csrf_token(html), "u-file": (io.BytesIO(b"2032-13-01,0,x\n"), "bad.csv")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "第1行的日期" in bad.get_data(as_text=True)
    assert s.get(CalendarYear, 2032) is None


def test_a_city_admin_reads_but_cannot_change_the_calendar_or_settings(client, world, s):
    login(client, "admin_zz")
    _, html = page(client, "/admin/calendar")
    assert "导入全年安排" not in html
    _, html = page(client, "/admin/settings")
    client.post("/admin/settings", data={"csrf_token": csrf_token(html), "every": "quarter", "due_day": "20",
                                          "tolerance": "5", "immediate_workdays": "3"})
    assert s.get(Setting, "reporting_period") is None


def test_the_province_admin_changes_the_reporting_period(client, world, s):
    login(client, "admin_hn")
    _, html = page(client, "/admin/settings")
    response = client.post("/admin/settings", data={"csrf_token": csrf_token(html), "every": "quarter",
                                                     "due_day": "20", "tolerance": "5", "immediate_workdays": "3"})
    assert response.status_code == 302
    assert s.get(Setting, "reporting_period").value == {"every": "quarter", "due_day": 20}
    bad = client.post("/admin/settings", data={"csrf_token": csrf_token(html), "every": "quarter", "due_day": "40",
                                                "tolerance": "5", "immediate_workdays": "3"})
    assert bad.status_code == 200 and "须在1到31之间" in bad.get_data(as_text=True)


def test_admins_are_warned_from_november_while_next_year_is_unconfirmed(client, world, s):
    login(client, "admin_hn")
    _, html = page(client, "/admin/users")
    next_year = s.get(CalendarYear, TODAY.year + 1)
    expected = TODAY.month >= 11 and not (next_year and next_year.confirmed)
    assert (f"{TODAY.year + 1}年的节假日安排尚未导入确认" in html) is expected
    login(client, "sup_xt")
    assert "节假日安排尚未导入确认" not in page(client, "/todo")[1]


def test_a_deadline_written_as_text_is_read_when_assigning(client, world, s):
    task = world.register(title="黑臭水体整治")
    s.commit()
    login(client, "sup_xt")
    response = post_action(client, task, "assign", {"leads": world.units["雨湖区人民政府"].id,
                                                    "deadline_text": f"{TODAY.year + 1}年6月底前"})
    assert response.status_code == 302
    s.expire_all()
    assert s.get(Task, task.id).deadline == dt.date(TODAY.year + 1, 6, 30)
    other = world.register(title="黑臭水体整治（二）")
    s.commit()
    response = post_action(client, other, "assign", {"leads": world.units["雨湖区人民政府"].id,
                                                     "deadline_text": "尽快"})
    assert response.status_code == 400 and "无法识别的时限要求" in response.get_data(as_text=True)
    assert s.scalar(select(Task.state).where(Task.id == other.id)) == "pending"
