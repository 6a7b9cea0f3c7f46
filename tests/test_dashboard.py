"""总览 (the dashboard): its figures on a small 湘潭市 ledger, their agreement with the §5 report, and —
the strongest check — every number on the page followed to the task list, whose total must be that number."""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event, func, select

from tests.conftest import NOW, login
from tracker import calendars, dashboard, escalation, reports, schedule, settings
from tracker.models import EscalationRecord, Task
from tracker.operations import perform
from tracker.paths import STATIC_DIR
from tracker.queries import deadline_facts
from tracker.timeutil import local_date
from tracker.views import dashboard as dashboard_view

TODAY = local_date(NOW)  # 2026-03-02
EARLY = NOW - dt.timedelta(days=120)  # 2025-11-02: 交办 of the tasks now overdue
PAST_DEADLINE = dt.date(2026, 1, 30)
EARLIER_DEADLINE = dt.date(2026, 1, 15)
LATER = dt.date(2026, 12, 31)


@pytest.fixture
def ledger(world, s):
    """湘潭市's tasks (and one of 攸县, out of its scope), each named after the seeds.

    | task | region | state at TODAY | 序时进度 |
    | 双马填埋场 | 雨湖区 | 整改中 | 逾期 (deadline 2026-01-30) |
    | 涓水直排口 | 雨湖区 | 已销号 2026-03-02 | 已完成 |
    | 黑臭水体 | 雨湖区 | 已签收 | 达到序时进度 |
    | 皮革工业园 | 湘乡市 (participant 雨湖区人民政府) | 整改中 | 逾期 (deadline 2026-01-15) |
    | 竹埠港 | 湘潭市 本级, lead 湘潭市生态环境局 | 已交办 | 达到序时进度 |
    | 绿心 split into 雨湖区 and 湘乡市 children | 湘潭市 | parent 整改中 | parent not counted; children 达到序时进度 |
    | 待交办 (雨湖区), 作废 (湘乡市) | | | not counted |
    | 攸县 | 攸县 | 整改中 | 逾期, not in 湘潭市 |
    """
    w = world
    t = {}
    t["shuangma"] = w.advance(w.assigned(title="双马填埋场渗滤液处理不到位", now=EARLY, deadline=PAST_DEADLINE),
                              "rectifying", now=EARLY)
    t["juanshui"] = w.advance(w.assigned(title="涓水直排口污水直排", now=EARLY, deadline=LATER), "closed")
    t["heichou"] = w.advance(w.assigned(title="雨湖区建成区黑臭水体整治不彻底"), "signed")
    t["pige"] = w.advance(w.assigned(title="湘乡皮革工业园污水处理厂超标排放", region="湘乡市", lead="湘乡市人民政府",
                                     participants=["雨湖区人民政府"], now=EARLY, deadline=EARLIER_DEADLINE),
                          "rectifying", lead_user="unit_xx", now=EARLY)
    t["zhubugang"] = w.assigned(title="竹埠港老工业区遗留污染地块", region="湘潭市", lead="湘潭市生态环境局")
    parent = w.register(title="长株潭绿心地区违规项目", region="湘潭市")
    perform(s, parent, "split", w.m["sup_xt"], NOW, children=[
        {"region_id": w.regions["雨湖区"].id, "leads": [w.units["雨湖区人民政府"].id], "deadline": LATER},
        {"region_id": w.regions["湘乡市"].id, "leads": [w.units["湘乡市人民政府"].id], "deadline": LATER}])
    t["lvxin"] = parent
    t["pending"] = w.register(title="雨湖区某砂场非法开采")
    t["cancelled"] = w.assigned(title="湘乡市重复信访件", region="湘乡市", lead="湘乡市人民政府")
    perform(s, t["cancelled"], "cancel", w.m["sup_xt"], NOW, reason="重复登记")
    t["youxian"] = w.advance(w.assigned(title="攸县煤矿废水直排", region="攸县", lead="攸县人民政府", actor="sup_zz",
                                        now=EARLY, deadline=PAST_DEADLINE),
                             "rectifying", lead_user="unit_yx", sup="sup_zz", now=EARLY)
    schedule.refresh_all(s, TODAY)  # the daily refresh of today's values, as the scheduler runs it
    s.commit()
    return t


def values(row: dashboard.Row) -> dict[str, int]:
    return {cell: figure.value for cell, figure in row.figures.items()}


def counts(total, completed, on_schedule, behind, overdue) -> dict[str, int]:
    return {"total": total, "completed": completed, "on_schedule": on_schedule, "behind": behind, "overdue": overdue}


def test_a_city_supervisor_sees_its_subtree_by_county_and_local_level(s, world, ledger):
    board = dashboard.build(s, world.m["sup_xt"], world.regions["湘潭市"], TODAY)
    # 双马, 涓水, 黑臭, 皮革, 竹埠港 and the two 绿心 children; not the split parent, 待交办, 作废 or 攸县.
    assert values(board.totals) == counts(7, 1, 4, 2, 2)
    assert board.totals.closure_rate == round(1 / 7, 4)
    rows = {row.label: values(row) for row in board.by_region}
    assert list(rows) == ["雨湖区", "湘乡市", "湘潭高新区", "本级"]
    assert rows["雨湖区"] == counts(4, 1, 2, 1, 1)
    assert rows["湘乡市"] == counts(2, 0, 1, 1, 1)
    assert rows["湘潭高新区"] == counts(0, 0, 0, 0, 0)
    assert rows["本级"] == counts(1, 0, 1, 0, 0)
    yuhu = next(row for row in board.by_region if row.label == "雨湖区")
    assert yuhu.figures["overdue"].params == {"region": str(world.regions["雨湖区"].id), "schedule": "overdue"}
    local = board.by_region[-1]
    assert local.figures["total"].params == {"region": str(world.regions["湘潭市"].id), "subtree": "0",
                                              "schedule": "counted"}
    # Both overdue tasks are 整改中 with no report this period; the oldest deadline comes first.
    assert board.not_reported.value == 2
    assert [o.task.title for o in board.oldest_overdue] == ["湘乡皮革工业园污水处理厂超标排放",
                                                            "双马填埋场渗滤液处理不到位"]
    # Working days overdue as the task page counts them (the Spring Festival holiday is not counted).
    calendar = calendars.load(s)
    for item in board.oldest_overdue:
        assert item.workdays == deadline_facts(calendar, item.task, TODAY)["overdue_workdays"] > 10


def test_units_are_counted_as_lead_units_only(s, world, ledger):
    board = dashboard.build(s, world.m["sup_xt"], world.regions["湘潭市"], TODAY)
    rows = {row.label: values(row) for row in board.by_unit}
    # 雨湖区人民政府 takes part in 皮革 but does not lead it.
    assert rows["雨湖区人民政府"] == counts(4, 1, 2, 1, 1)
    assert rows["湘乡市人民政府"] == counts(2, 0, 1, 1, 1)
    assert rows["湘潭市生态环境局"] == counts(1, 0, 1, 0, 0)
    assert board.units_with_tasks == 3
    # The units with overdue tasks come first.
    assert [row.label for row in board.by_unit][:2] == ["雨湖区人民政府", "湘乡市人民政府"]
    assert {name: f.value for name, f in board.not_reported_units} == {"雨湖区人民政府": 1, "湘乡市人民政府": 1}


def test_closures_per_month_cover_the_last_twelve_months(s, world, ledger):
    board = dashboard.build(s, world.m["sup_xt"], world.regions["湘潭市"], TODAY)
    assert [m.start for m in board.months] == [dt.date(2025, m, 1) for m in range(4, 13)] + [
        dt.date(2026, m, 1) for m in (1, 2, 3)]
    assert board.months[-1].end == dt.date(2026, 3, 31) and board.months[1].end == dt.date(2025, 5, 31)
    assert [m.closed.value for m in board.months] == [0] * 11 + [1]
    assert board.months[-1].closed.params == {"schedule": "completed", "closed_from": "2026-03-01",
                                              "closed_to": "2026-03-31"}
    assert board.closed_in_year.value == 1
    assert dashboard.month_windows(dt.date(2026, 12, 31), 2) == [(dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
                                                                 (dt.date(2026, 12, 1), dt.date(2026, 12, 31))]


def test_escalation_levels_and_open_proposals(s, world, ledger):
    perform(s, s.get(Task, ledger["pige"].id), "confirm_measure", world.m["sup_xt"], NOW, level=3,
            doc_no="潭突改通〔2026〕5号")
    escalation.scan(s, TODAY, NOW)  # proposes 函告 for 双马 (and for 攸县's task, out of scope)
    s.commit()
    board = dashboard.build(s, world.m["sup_xt"], world.regions["湘潭市"], TODAY)
    levels = {level.name: level.tasks.value for level in board.levels}
    assert levels["通报"] == 1
    assert "区域限批" not in levels  # recorded against a region, never a task
    proposed = set(s.scalars(select(EscalationRecord.task_id).where(EscalationRecord.status == "proposed")))
    assert ledger["shuangma"].id in proposed and ledger["youxian"].id in proposed
    assert board.proposals.value == len(proposed - {ledger["youxian"].id})
    assert board.proposals.params == {"proposal": "1", "schedule": "counted"}


@pytest.mark.parametrize("by", ["region", "channel-round", "unit"])
def test_the_figures_agree_with_the_report_replayed_from_history(s, world, ledger, by):
    """Per-task current values and the §5 report's replay count the same tasks the same way."""
    region = world.regions["湘潭市"]
    board = dashboard.build(s, world.m["sup_xt"], region, TODAY)
    report = reports.build(s, region, TODAY, by, settings.time_settings(s))
    expected = {" · ".join(row.group): {cell: getattr(row, cell) for cell in dashboard.CELLS} for row in report.rows}
    rows = {"region": board.by_region, "channel-round": board.by_channel_round, "unit": board.by_unit}[by]
    assert {row.label: values(row) for row in rows} == expected
    assert values(board.totals) == {cell: getattr(report.total, cell) for cell in dashboard.CELLS}


def test_the_figures_come_from_the_tasks_values_not_the_history(app, s, world, ledger):
    """A fixed number of set-based queries, none reading the event log, whatever the ledger's size."""
    engine = app.extensions["tracker.engine"]

    def statements() -> list[str]:
        seen: list[str] = []

        def log(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", log)
        try:
            with app.extensions["tracker.sessionmaker"]() as fresh:
                membership = fresh.merge(world.m["sup_xt"])
                dashboard.build(fresh, membership, membership.unit.region, TODAY)
        finally:
            event.remove(engine, "before_cursor_execute", log)
        return seen

    before = statements()
    for i in range(6):
        world.advance(world.assigned(title=f"湘江沿岸码头整治{i}", now=EARLY, deadline=PAST_DEADLINE), "rectifying",
                      now=EARLY)
    s.commit()
    after = statements()
    assert len(after) == len(before)
    assert not [q for q in after if re.search(r"\bFROM event\b", q, re.I)]


# --- the page ---------------------------------------------------------------------------------------


class Links(HTMLParser):
    """Every link of the page with its text, and every figure shown (linked or not)."""

    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.figures: list[tuple[str | None, str]] = []
        self._open: list[dict] = []
        self.chart_data = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("id") == "dashboard-data":
            self._in_data = True
        if tag in ("a", "span"):
            self._open.append({"tag": tag, "href": attrs.get("href"), "figure": "figure" in (attrs.get("class") or ""),
                               "text": ""})

    def handle_data(self, data):
        if self._in_data:
            self.chart_data += data
        for item in self._open:
            item["text"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_data = False
        if tag in ("a", "span") and self._open:
            item = self._open.pop()
            if item["tag"] == "a" and item["href"]:
                self.links.append((item["href"], item["text"].strip()))
            if item["figure"]:
                self.figures.append((item["href"], item["text"].strip()))


def parse(html: str) -> Links:
    found = Links()
    found.feed(html)
    return found


def list_total(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    match = re.search(r"共 (\d[\d,]*) 个", response.get_data(as_text=True))
    assert match, url
    return int(match.group(1).replace(",", ""))


def follow_every_number(client, html: str) -> int:
    """Each linked figure: the list behind it holds exactly that many tasks. Unlinked figures are 0 or a rate."""
    page = parse(html)
    task_links = [(href, text) for href, text in page.figures if href]
    assert task_links, "no linked figures on the dashboard"
    for href, text in task_links:
        assert urlsplit(href).path == "/tasks", href
        assert list_total(client, href) == int(text.replace(",", "")), (href, text)
    for href, text in page.figures:
        if href is None:
            assert text == "0" or text.endswith("%"), text
    return len(task_links)


def test_every_number_on_the_dashboard_lists_exactly_its_tasks(client, world, s, ledger):
    perform(s, s.get(Task, ledger["pige"].id), "confirm_measure", world.m["sup_xt"], NOW, level=3,
            doc_no="潭突改通〔2026〕5号")
    escalation.scan(s, TODAY, NOW)
    s.commit()
    login(client, "sup_xt")
    html = client.get("/dashboard").get_data(as_text=True)
    assert follow_every_number(client, html) > 20
    # The county's overdue figure lists its one overdue task.
    yuhu = world.regions["雨湖区"].id
    listing = client.get(f"/tasks?region={yuhu}&schedule=overdue").get_data(as_text=True)
    assert "双马填埋场渗滤液处理不到位" in listing and "湘乡皮革工业园" not in listing
    assert f'href="/tasks?region={yuhu}&amp;schedule=overdue"' in html


@pytest.mark.parametrize("username", ["sup_hn", "viewer_xt", "admin_zz"])
def test_every_number_holds_for_other_scopes(client, world, s, ledger, username):
    login(client, username)
    response = client.get("/dashboard")
    assert response.status_code == 200
    follow_every_number(client, response.get_data(as_text=True))


def test_a_county_below_the_supervisor_has_a_dashboard_of_its_own(client, world, s, ledger):
    login(client, "sup_xt")
    yuhu = world.regions["雨湖区"].id
    html = client.get(f"/dashboard?region={yuhu}").get_data(as_text=True)
    assert f'href="/dashboard?region={yuhu}"' in client.get("/dashboard").get_data(as_text=True)  # drill-down link
    follow_every_number(client, html)
    page = parse(html)
    assert all(parse_qs(urlsplit(href).query).get("region") for href, _ in page.figures if href)
    assert "湘乡皮革工业园" not in html


def test_the_chart_data_is_the_tables_figures(client, world, s, ledger):
    login(client, "sup_xt")
    html = client.get("/dashboard").get_data(as_text=True)
    charts = json.loads(parse(html).chart_data)
    assert set(charts) == {"chart-buckets", "chart-region", "chart-channel", "chart-months", "chart-levels"}
    for chart_id in charts:
        assert f'id="{chart_id}"' in html
    region = charts["chart-region"]
    assert region["labels"] == ["雨湖区", "湘乡市", "湘潭高新区", "本级"]
    behind = next(d for d in region["datasets"] if d["label"] == "滞后")
    assert behind["data"] == [1, 1, 0, 0]
    for dataset in region["datasets"]:
        for value, link in zip(dataset["data"], dataset["links"], strict=True):
            assert list_total(client, link) == value
    assert sum(charts["chart-buckets"]["datasets"][0]["data"]) == 7


def test_scope_units_and_landing(client, world, s, ledger):
    login(client, "sup_xt")
    assert client.get(f"/dashboard?region={world.regions['攸县'].id}").status_code == 404
    assert client.get("/dashboard?region=999999").status_code == 404
    assert '<a href="/dashboard">' in client.get("/todo").get_data(as_text=True)  # 总览 in the top bar
    assert client.get("/").headers["Location"] == "/todo"  # supervisors start on 待办

    unit = client.application.test_client()
    login(unit, "unit_yh")
    response = unit.get("/dashboard")
    assert response.status_code == 302 and response.headers["Location"] == "/todo"  # units have their 待办
    assert '<a href="/dashboard">' not in unit.get("/todo").get_data(as_text=True)

    viewer = client.application.test_client()
    assert login(viewer, "viewer_xt").headers["Location"] == "/dashboard"  # 领导/查阅 start on 总览
    assert viewer.get("/").headers["Location"] == "/dashboard"
    assert viewer.get("/todo").status_code == 200  # 待办 stays reachable


def test_an_empty_scope_shows_zeros(client, world):
    login(client, "sup_zz")
    response = client.get("/dashboard")
    assert response.status_code == 200
    page = parse(response.get_data(as_text=True))
    assert not [href for href, _ in page.figures if href]
    assert {text for _, text in page.figures} <= {"0", "0.0%"}


def test_the_chart_library_is_installed_and_served(client, world):
    path = STATIC_DIR / dashboard_view.CHART_JS
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make assets` (npm ci, then the Chart.js UMD build into static/vendor/)")
    assert path.read_text(encoding="utf-8").lstrip().startswith("/*!\n * Chart.js v4.")
    pinned = json.loads((STATIC_DIR.parent / "package-lock.json").read_text(encoding="utf-8"))
    version = pinned["packages"]["node_modules/chart.js"]["version"]
    assert f"Chart.js v{version}" in path.read_text(encoding="utf-8")[:200]
    login(client, "sup_xt")
    html = client.get("/dashboard").get_data(as_text=True)
    assert '<script src="/static/vendor/chart.umd.js" defer></script>' in html
    assert "图表组件未安装" not in html
    served = client.get("/static/vendor/chart.umd.js")
    assert served.status_code == 200 and b"Chart.js" in served.data[:200]
    served.close()


def test_without_the_chart_library_the_page_says_so_and_keeps_its_tables(client, world, ledger, monkeypatch):
    monkeypatch.setattr(dashboard_view, "CHART_JS", "vendor/not-installed.js")
    login(client, "sup_xt")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "图表组件未安装" in html and "make assets" in html
    assert "vendor/" not in re.sub(r"图表组件未安装[^<]*", "", html)
    follow_every_number(client, html)


def test_nothing_is_counted_twice_or_left_out_of_the_scope(s, world, ledger):
    """The region rows add up to the total, whatever the depth of the tree."""
    board = dashboard.build(s, world.m["sup_hn"], world.regions["湖南省"], TODAY)
    for cell in dashboard.CELLS:
        assert sum(row.figures[cell].value for row in board.by_region) == board.totals.figures[cell].value
    counted = s.scalar(select(func.count()).select_from(Task).where(Task.schedule.is_not(None)))
    assert board.totals.figures["total"].value == counted == 8
    assert [row.label for row in board.by_region][-1] == "本级"
    assert {row.label: row.figures["overdue"].value for row in board.by_region if row.figures["overdue"].value} == {
        "湘潭市": 2, "株洲市": 1}
