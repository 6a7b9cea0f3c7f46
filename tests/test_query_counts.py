"""No N+1: a page's number of SQL statements does not grow with the rows it shows (DESIGN §9).

Each page is fetched over a small ledger and again over a larger one (more tasks, or a task with more
reports, evidence, milestones and events); the statements sent to the database are counted with a
SQLAlchemy event listener on the app's engine and must be the same."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from bench.generate import generate
from tests.conftest import NOW, fake_file, login
from tracker.models import Milestone, Task
from tracker.operations import perform
from tracker.timeutil import local_date, utcnow


@contextmanager
def counted(app):
    found: list[str] = []

    def _count(_conn, _cursor, statement, _parameters, _context, _executemany):
        found.append(statement)

    engine = app.extensions["tracker.engine"]
    event.listen(engine, "before_cursor_execute", _count)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", _count)


def statements(app, client, url: str) -> int:
    client.get(url)  # once to warm what is loaded once per process (templates, the calendar's years)
    with counted(app) as found:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(found)


def grow(app, tasks: int, seed: int) -> None:
    """Add ``tasks`` generated tasks (every state, with history) across the province's counties."""
    generate(app.extensions["tracker.engine"], tasks, seed=seed, log=lambda _line: None)


# --- lists of tasks: more rows, same statements ----------------------------------------------------------


def _today() -> str:
    return local_date(utcnow()).isoformat()


LIST_PAGES = [
    "/tasks",
    "/tasks?sort=updated",
    "/tasks?state=rectifying&state=verifying&sort=code",
    "/todo",
    "/reports?by=channel-round",
    "/reports?by=region",
    "/reports?by=unit",
]


@pytest.mark.parametrize("url", LIST_PAGES)
def test_a_list_page_costs_the_same_statements_for_more_tasks(app, client, world, url):
    login(client, "sup_hn")
    grow(app, 12, seed=1)
    few = statements(app, client, url)
    grow(app, 48, seed=2)
    many = statements(app, client, url)
    assert many == few, f"{url}: {few} statements for the small ledger, {many} for the larger one"


def test_the_dashboard_costs_the_same_statements_for_more_tasks(app, client, world):
    if "dashboard" not in app.blueprints:
        pytest.skip("no dashboard in this build")
    login(client, "sup_hn")
    grow(app, 12, seed=1)
    few = statements(app, client, "/dashboard")
    grow(app, 48, seed=2)
    assert statements(app, client, "/dashboard") == few


def test_a_units_todo_costs_the_same_statements_for_more_tasks(app, client, world, s):
    login(client, "unit_yh")
    for i in range(2):
        world.assigned(title=f"双马填埋场渗滤液处理不到位{i}")
    s.commit()
    few = statements(app, client, "/todo")
    for i in range(8):
        task = world.assigned(title=f"涓水直排口污水直排{i}", participants=["湘潭市生态环境局"])
        if i % 2:
            world.advance(task, "signed")
    s.commit()
    assert statements(app, client, "/todo") == few


def test_a_drill_down_costs_the_same_statements_for_more_tasks(app, client, world):
    login(client, "sup_hn")
    grow(app, 12, seed=1)
    url = f'/reports/tasks?as_of={_today()}&by=channel-round&cell=total&group=["合计"]'
    few = statements(app, client, url)
    grow(app, 48, seed=2)
    assert statements(app, client, url) == few


# --- one task: more history, same statements --------------------------------------------------------------


def _task_with_history(world, s, reports: int, title: str) -> Task:
    task = world.assigned(title=title, participants=["湘潭市生态环境局"], deadline=dt.date(2027, 6, 30))
    world.advance(task, "signed")
    milestones = [{"due_on": dt.date(2026, 6, 30 - i), "description": f"阶段目标{i}", "planned_percent": 10 * i}
                  for i in range(1, reports + 1)]
    perform(s, task, "submit_plan", world.m["unit_yh"], NOW, target="渗滤液达标排放", measures="建设处理站",
            milestones=milestones)
    perform(s, task, "approve_plan", world.m["sup_xt"], NOW)
    met = s.scalars(select(Milestone.id).where(Milestone.task_id == task.id)).all()
    for i in range(reports):
        who = "unit_yh" if i % 2 == 0 else "unit_sthj"
        perform(s, task, "report", world.m[who], NOW, text=f"第{i + 1}次进展：渗滤液处理站主体完工", percent=10 * i,
                files=[fake_file(name=f"现场照片{i}.jpg"), fake_file(kind="monitoring", name=f"监测报告{i}.pdf")],
                milestones_met=[met[i]] if i < len(met) else [])
    s.commit()
    return task


@pytest.mark.parametrize("username", ["sup_xt", "unit_yh", "viewer_xt"])
def test_a_task_page_costs_the_same_statements_for_more_history(app, client, world, s, username):
    short = _task_with_history(world, s, 1, "双马填埋场渗滤液处理不到位")
    long = _task_with_history(world, s, 8, "涓水直排口污水直排湘江")
    login(client, username)
    assert statements(app, client, f"/tasks/{long.id}") == statements(app, client, f"/tasks/{short.id}")


def test_the_counter_sees_an_n_plus_one(app, world, s):
    """The listener counts what a lazy load per row sends (the test above would fail on one)."""
    for i in range(3):
        world.assigned(title=f"双马填埋场渗滤液处理不到位{i}")
    s.commit()
    reader = app.extensions["tracker.sessionmaker"]()
    tasks = reader.scalars(select(Task)).all()
    with counted(app) as found:
        for task in tasks:
            _ = [tu.unit.name for tu in task.task_units]
    reader.close()
    assert len(found) >= len(tasks)
