"""Unit fields as a type-ahead (DESIGN §9: a province holds about a thousand units, and pages rendered every
one of them in each unit field): ``/units/search`` answers the units of the user's scope matching what is
typed, and the list's and the task page's unit fields hold only their chosen units — validated as before,
a unit out of scope is refused."""

from __future__ import annotations

import datetime as dt
import re

import flask
import pytest
from flask_babel import force_locale
from sqlalchemy import select, text

from tests.catalogue import compile_catalogue
from tests.conftest import csrf_token, login
from tests.test_i18n import switch
from tracker import babel
from tracker.i18n import Msg
from tracker.models import Event, Task, Unit
from tracker.queries import TaskFilter, filtered_tasks, list_order
from tracker.workflow import State

ALL_GOVERNMENTS = {"雨湖区人民政府", "湘乡市人民政府", "攸县人民政府", "平江县人民政府"}


def search(client, q: str, **extra) -> list[dict]:
    response = client.get("/units/search", query_string={"q": q, **extra})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()["units"]


def names(found: list[dict]) -> set[str]:
    return {re.sub(r"（.*）$", "", u["label"]) for u in found}


def test_the_search_answers_units_of_the_users_scope_with_their_region(client, world):
    login(client, "sup_xt")
    found = search(client, "人民政府")
    assert names(found) == {"雨湖区人民政府", "湘乡市人民政府"}  # 湘潭市 only: not 攸县, not 平江县
    assert {u["id"]: u["label"] for u in found} == {world.units["雨湖区人民政府"].id: "雨湖区人民政府（雨湖区）",
                                                    world.units["湘乡市人民政府"].id: "湘乡市人民政府（湘乡市）"}
    login(client, "sup_hn")
    assert names(search(client, "人民政府")) == ALL_GOVERNMENTS


def test_the_search_matches_a_region_and_an_alias_and_puts_the_whole_name_first(client, world):
    login(client, "sup_hn")
    assert names(search(client, "雨湖")) == {"雨湖区突出环境问题整改办公室", "雨湖区人民政府"}
    office = "湖南省生态环境保护督察工作领导小组办公室"
    assert search(client, "省督察办") == [{"id": world.units[office].id, "label": office}]  # the province: no region
    assert search(client, "湘潭市生态环境局")[0]["label"] == "湘潭市生态环境局（湘潭市）"


def test_every_region_only_for_those_whose_forms_offer_every_region(client, world):
    login(client, "sup_xt")  # a supervisor may name any unit 验收单位
    assert names(search(client, "人民政府", anywhere="1")) == ALL_GOVERNMENTS
    login(client, "unit_yh")
    assert names(search(client, "人民政府", anywhere="1")) == {"雨湖区人民政府"}
    login(client, "viewer_xt")
    assert names(search(client, "人民政府", anywhere="1")) == {"雨湖区人民政府", "湘乡市人民政府"}
    login(client, "admin_zz")
    assert names(search(client, "人民政府", anywhere="1")) == {"攸县人民政府"}


def test_inactive_units_blank_and_wildcard_text_find_nothing(client, world, s):
    world.units["湘乡市人民政府"].active = False
    s.commit()
    login(client, "sup_xt")
    assert names(search(client, "人民政府")) == {"雨湖区人民政府"}
    for typed in ("", "   ", "%", "_", "' OR 1=1 --", "<script>", "x" * 5000):
        assert search(client, typed) == []


def test_the_search_needs_a_login_and_answers_at_most_twenty(client, world, s):
    answer = client.get("/units/search?q=人民政府")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    for i in range(25):
        s.add(Unit(name=f"雨湖区第{i}排污口整治专班", region_id=world.regions["雨湖区"].id, kind="department"))
    s.commit()
    login(client, "sup_xt")
    assert len(search(client, "排污口")) == 20


def test_labels_follow_the_users_language(app, client, world):
    compile_catalogue()
    login(client, "sup_xt")
    switch(client, "en", client.get("/todo").get_data(as_text=True))
    assert search(client, "雨湖区人民")[0]["label"] == "雨湖区人民政府 (雨湖区)"


# --- the task page's unit fields ----------------------------------------------------------------------------


def _form(html: str, action: str) -> str:
    return re.search(rf'<details[^>]*id="action-{action}".*?</details>', html, re.S).group(0)


def test_the_task_page_offers_only_chosen_units_and_a_search_in_scope(client, world, s):
    task = world.assigned(title="涓水直排口污水直排湘江", participants=["湘潭市生态环境局"])
    s.commit()
    login(client, "sup_xt")
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    reassign = _form(html, "reassign")
    # 改派 keeps the participants: the one participant ticked, no other unit listed
    participant = world.units["湘潭市生态环境局"].id
    assert re.search(rf'<input checked id="reassign-participants-0" name="reassign-participants" type="checkbox" '
                     rf'value="{participant}">', reassign)
    assert reassign.count('type="checkbox"') == 1 and "<option" not in reassign
    assert 'data-units="/units/search"' in reassign and 'data-name="reassign-leads"' in reassign
    assert "湘乡市人民政府" not in html and "攸县人民政府" not in html
    assert 'src="/static/js/units.js"' in html


def _post(client, task: Task, action: str, data: dict):
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    return client.post(f"/tasks/{task.id}/act/{action}", data={
        "csrf_token": csrf_token(page), f"{action}-version": str(task.version),
        **{f"{action}-{k}": v for k, v in data.items()}})


def test_a_unit_out_of_scope_is_refused_and_one_in_scope_is_taken(client, world, s):
    task = world.register(title="双马填埋场渗滤液处理不到位")
    s.commit()
    login(client, "sup_xt")
    deadline = {"deadline_kind": "date", "deadline": "2027-06-30", "deadline_text": "2027年6月底前"}
    answer = _post(client, task, "assign", {"leads": [str(world.units["攸县人民政府"].id)], **deadline})
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "攸县人民政府" not in html  # not offered back either
    s.expire_all()
    assert s.get(Task, task.id).state == State.pending.value
    assert s.scalar(select(Event).where(Event.task_id == task.id, Event.action == "assign")) is None

    answer = _post(client, task, "assign", {"leads": [str(world.units["攸县人民政府"].id),
                                                      str(world.units["雨湖区人民政府"].id)], **deadline})
    assert answer.status_code == 400  # one bad unit among good ones: refused as a whole
    lead = world.units["雨湖区人民政府"].id
    assert re.search(rf'<input checked id="assign-leads-0" name="assign-leads" type="checkbox" value="{lead}">',
                     _form(answer.get_data(as_text=True), "assign"))  # the good one kept for the next try
    answer = _post(client, task, "assign", {"leads": [str(lead)], "participants": [], **deadline})
    assert answer.status_code == 302
    s.expire_all()
    task = s.get(Task, task.id)
    assert task.state == State.assigned.value and [u.name for u in task.lead_units] == ["雨湖区人民政府"]
    assert task.deadline == dt.date(2027, 6, 30)


def test_the_verifier_may_be_any_unit_but_an_unknown_one_is_refused(client, world, s):
    task = world.advance(world.assigned(title="湘江河道非法采砂整治"), "verifying")
    s.commit()
    login(client, "sup_hn")
    close = _form(client.get(f"/tasks/{task.id}").get_data(as_text=True), "close")
    assert re.search(r'<select class="unit-picker" data-search-label="[^"]+" data-units="/units/search\?anywhere=1" '
                     r'id="close-verifier_unit_id" name="close-verifier_unit_id">'
                     r'<option value="0">本单位</option></select>', close)
    answer = _post(client, task, "close", {"opinion": "验收合格", "closed_on": "2026-03-02",
                                           "verifier_unit_id": "999999"})
    assert answer.status_code == 400
    s.expire_all()
    assert s.get(Task, task.id).state == State.verifying.value
    verifier = world.units["平江县人民政府"].id  # another city's unit: any unit may verify
    answer = _post(client, task, "close", {"opinion": "验收合格", "closed_on": "2026-03-02",
                                           "verifier_unit_id": str(verifier)})
    assert answer.status_code == 302
    s.expire_all()
    assert s.get(Task, task.id).verifier_unit_id == verifier


# --- the list's unit filter ----------------------------------------------------------------------------------


def test_the_list_filter_holds_only_the_chosen_unit(client, world, s):
    world.assigned(title="双马填埋场渗滤液处理不到位")
    world.assigned(title="湘江河道非法采砂整治", lead="湘乡市人民政府", region="湘乡市")
    s.commit()
    login(client, "sup_xt")
    html = client.get("/tasks?sort=deadline").get_data(as_text=True)
    unit_select = re.search(r'<select id="unit".*?</select>', html, re.S).group(0)
    assert 'data-units="/units/search"' in unit_select
    assert unit_select.count("<option") == 1  # 全部 only
    xx = world.units["湘乡市人民政府"].id
    html = client.get(f"/tasks?unit={xx}&sort=deadline").get_data(as_text=True)
    unit_select = re.search(r'<select id="unit".*?</select>', html, re.S).group(0)
    assert re.findall(r"<option[^>]*>[^<]*</option>", unit_select) == [
        '<option value="">全部</option>', f'<option value="{xx}" selected>湘乡市人民政府（湘乡市）</option>']
    assert "湘江河道非法采砂整治" in html and "双马填埋场" not in html
    html = client.get(f"/tasks?lead_unit={xx}&sort=deadline").get_data(as_text=True)
    assert "仅作为牵头单位：湘乡市人民政府" in html


# --- the list's order by 整改时限: the same order whichever way it is written -------------------------------


def _pages(client, url: str) -> list[str]:
    """Every task title of the list, page by page through the keyset links."""
    titles: list[str] = []
    while url:
        html = client.get(url).get_data(as_text=True)
        titles += re.findall(r'<td data-label="问题名称"><a href="/tasks/\d+">([^<]+)</a>', html)
        found = re.search(r'<a rel="next" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        assert len(titles) < 100, "the pages do not end"
    return titles


def test_the_deadline_order_is_one_order_with_or_without_filters(app, client, world, s):
    """A region scope narrowed by region alone orders by the indexed expression, other filters and a unit's
    scope by an equal one that no index matches (queries.DEADLINE_ORDER): the same tasks in the same order,
    no deadline last, on every keyset page."""
    deadlines = [dt.date(2026, 6, 30), None, dt.date(2026, 3, 31), dt.date(2026, 6, 30), None, dt.date(2027, 1, 15)]
    for i, deadline in enumerate(deadlines):
        task = world.assigned(title=f"湘江河道非法采砂整治{i}", deadline=deadline or dt.date(2026, 12, 31))
        task.deadline = deadline
    world.register(title="涓水直排口污水直排湘江")  # 待交办: no deadline
    s.commit()
    app.config["PAGE_SIZE"] = 2
    login(client, "sup_xt")
    expected = [f"湘江河道非法采砂整治{i}" for i in (2, 0, 3, 5, 1, 4)]  # by deadline, then by id; none last
    assert _pages(client, "/tasks?sort=deadline") == [*expected, "涓水直排口污水直排湘江"]
    assert _pages(client, f"/tasks?region={world.regions['雨湖区'].id}&sort=deadline") == [
        *expected, "涓水直排口污水直排湘江"]
    assert _pages(client, "/tasks?state=assigned&sort=deadline") == expected
    assert _pages(client, "/tasks?state=assigned&state=pending&sort=deadline") == [*expected, "涓水直排口污水直排湘江"]
    login(client, "unit_yh")  # a unit's scope: the other spelling
    assert _pages(client, "/tasks?sort=deadline") == expected


def test_postgresql_walks_the_deadline_index_only_for_scope_and_region(app, world, s):
    if s.get_bind().dialect.name != "postgresql":
        pytest.skip("a PostgreSQL plan")

    def plan(f: TaskFilter, who: str = "sup_hn") -> str:
        key, order, _descending = list_order(world.m[who], f)
        query = filtered_tasks(s, world.m[who], f).add_columns(key).order_by(*order).limit(51)
        sql = query.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        s.execute(text("SET LOCAL enable_seqscan = off"))
        s.execute(text("SET LOCAL enable_sort = off"))
        return "\n".join(s.execute(text(f"EXPLAIN {sql}")).scalars())

    assert "ix_task_deadline_order" in plan(TaskFilter(sort="deadline"))
    assert "ix_task_deadline_order" in plan(TaskFilter(region_id=world.regions["湘潭市"].id, sort="deadline"))
    for f, who in ((TaskFilter(states=["pending"], sort="deadline"), "sup_hn"),
                   (TaskFilter(schedule="overdue", sort="deadline"), "sup_hn"),
                   (TaskFilter(deadline_from=dt.date(2027, 1, 1), sort="deadline"), "sup_hn"),
                   (TaskFilter(sort="deadline"), "unit_yh")):
        found = plan(f, who)
        assert "ix_task_deadline_order" not in found.split("Sort")[0] and "Sort" in found, found
    s.rollback()


# --- translations found once per request -----------------------------------------------------------------


def test_kept_translations_follow_the_language_in_force(app, world):
    """Pages translate through ``babel.current_translations`` (kept per request, not looked up per label):
    they must still follow ``force_locale`` inside a request and the next request's language."""
    compile_catalogue()
    page = app.jinja_env.from_string("{{ _('任务列表') }}|{{ _('选择 %(code)s', code='<b>') }}")
    with app.test_request_context("/"):
        assert page.render() == "任务列表|选择 &lt;b&gt;"
        assert babel.gettext("任务列表") == "任务列表"
        with force_locale("en"):
            assert page.render() == "Tasks|Select &lt;b&gt;"
            assert babel.translate(Msg("{unit}（{region}）", unit="雨湖区人民政府", region="雨湖区")) == \
                "雨湖区人民政府 (雨湖区)"
        assert page.render() == "任务列表|选择 &lt;b&gt;"
    with app.test_request_context("/"):
        flask.session["locale"] = "en"
        assert page.render() == "Tasks|Select &lt;b&gt;"
