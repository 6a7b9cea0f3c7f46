"""Lists that save time: the dashboard's filters on the list (督办等级, 待决定的督办建议, 销号日期, 重新整改),
filters remembered per membership, saved filters per user, the CSV export of the list within scope,
and keyboard-friendly forms."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html import escape
from html.parser import HTMLParser
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from tests.conftest import NOW, csrf_token, login
from tracker import escalation, list_export, saved_filters
from tracker.accounts import add_membership
from tracker.audit import ActionError
from tracker.models import Complainant, EscalationRecord, Event, SavedFilter
from tracker.operations import perform
from tracker.queries import TaskFilter, filtered_tasks
from tracker.timeutil import SHANGHAI

D = dt.date


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI).astimezone(dt.UTC)


def listing(client, query: str) -> str:
    response = client.get(f"/tasks?{query}")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def shown(html: str, *titles: str) -> set[str]:
    return {t for t in titles if t in html}


# --- the dashboard's filters on the list ---------------------------------------------------------------------


@pytest.fixture
def ledger(world, s, app):
    """湘潭: 双马 (函告 confirmed), 涓水 (函告 proposed by the scan), 南尧村 (closed 2026-02-02 and reopened),
    湘乡皮革 (closed 2026-03-02); 株洲: 清水塘 (函告 confirmed)."""
    early = at(D(2026, 2, 2))
    shuangma = world.assigned(title="双马填埋场渗滤液处理不到位")
    perform(s, shuangma, "confirm_measure", world.m["sup_xt"], NOW, level=2, doc_no="潭突改函〔2026〕1号")
    juanshui = world.assigned(title="涓水直排口污水直排湘江", deadline=D(2026, 3, 31))
    world.advance(juanshui, "rectifying")
    nanyao = world.assigned(title="南尧村重金属尾砂污染", now=early)
    world.advance(nanyao, "closed", now=early)
    perform(s, nanyao, "reopen", world.m["sup_xt"], NOW, reason="回头看发现反弹", deadline=D(2026, 12, 31))
    pige = world.assigned(title="湘乡皮革工业园污水处理厂超标排放", region="湘乡市", lead="湘乡市人民政府")
    world.advance(pige, "closed", lead_user="unit_xx")
    qingshuitang = world.assigned(title="清水塘老工业区遗留废渣", region="攸县", lead="攸县人民政府", actor="sup_zz")
    perform(s, qingshuitang, "confirm_measure", world.m["sup_zz"], NOW, level=2, doc_no="株督改函〔2026〕2号")
    s.commit()
    with app.app_context():
        escalation.scan(s, D(2026, 4, 1), at(D(2026, 4, 1)))
    s.commit()
    assert s.scalar(select(EscalationRecord.status).where(EscalationRecord.task_id == juanshui.id,
                                                          EscalationRecord.level == 2)) == "proposed"
    return {"shuangma": shuangma, "juanshui": juanshui, "nanyao": nanyao, "pige": pige, "qingshuitang": qingshuitang}


TITLES = ("双马填埋场渗滤液处理不到位", "涓水直排口污水直排湘江", "南尧村重金属尾砂污染",
          "湘乡皮革工业园污水处理厂超标排放", "清水塘老工业区遗留废渣")


@pytest.mark.parametrize(("query", "xiangtan", "zhuzhou"), [
    ("", set(TITLES[:4]), {TITLES[4]}),
    ("level=2", {TITLES[0]}, {TITLES[4]}),
    ("level=0", {TITLES[1], TITLES[2], TITLES[3]}, set()),
    ("proposal=1", {TITLES[1]}, set()),
    ("reopened=1", {TITLES[2]}, set()),
    ("closed_from=2026-03-01", {TITLES[3]}, set()),
    ("closed_from=2026-02-01&closed_to=2026-02-28", set(), set()),  # 南尧村 was reopened: no 销号日期 now
    ("closed_to=2026-03-02&state=closed", {TITLES[3]}, set()),
    ("level=2&reopened=1", set(), set()),
])
def test_each_filter_narrows_the_list_within_scope(client, ledger, query, xiangtan, zhuzhou):
    login(client, "sup_xt")
    assert shown(listing(client, query), *TITLES) == xiangtan
    login(client, "sup_zz")
    assert shown(listing(client, query), *TITLES) == zhuzhou


def test_a_unit_sees_only_its_own_tasks_under_any_filter(client, ledger):
    login(client, "unit_xx")
    assert shown(listing(client, "level=0"), *TITLES) == {TITLES[3]}
    assert shown(listing(client, "closed_from=2026-03-01"), *TITLES) == {TITLES[3]}
    assert shown(listing(client, "level=2"), *TITLES) == set()


def test_the_filter_form_shows_the_new_filters_filled_in(client, ledger):
    login(client, "sup_xt")
    html = listing(client, "level=2&proposal=1&closed_from=2026-03-01")
    assert re.search(r'<option value="2" selected>函告</option>', html)
    assert re.search(r'name="proposal" value="1" checked', html)
    assert 'name="closed_from" value="2026-03-01"' in html
    assert re.search(r'<details class="more" open>', html)


# --- remembered filters ----------------------------------------------------------------------------------------


def test_the_list_restores_the_last_filters_and_clear_forgets_them(client, world, s):
    world.register(title="双马填埋场渗滤液处理不到位")
    world.assigned(title="涓水直排口污水直排湘江")
    s.commit()
    login(client, "sup_xt")
    assert client.get("/tasks").status_code == 200  # nothing remembered yet
    html = listing(client, "state=pending&after=abc")
    assert "清除筛选" in html
    response = client.get("/tasks")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tasks?state=pending")
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "双马填埋场" in html and "涓水直排口" not in html

    response = client.get("/tasks?clear=1")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tasks")
    html = listing(client, "")
    assert "双马填埋场" in html and "涓水直排口" in html and "清除筛选" not in html


def test_remembered_filters_belong_to_the_membership(client, world, s):
    add_membership(s, None, NOW, world.user("sup_yh"), world.units["湘潭市突出环境问题整改办公室"], "viewer")
    s.commit()
    login(client, "sup_yh")
    listing(client, "state=pending")
    assert client.get("/tasks").status_code == 302
    page = client.get("/todo").get_data(as_text=True)
    other = [m for m in world.user("sup_yh").memberships if m.role == "viewer"][0]
    client.post("/membership", data={"membership_id": other.id, "csrf_token": csrf_token(page)})
    assert client.get("/tasks").status_code == 200  # the viewer membership remembers nothing yet
    client.post("/membership", data={"membership_id": world.m["sup_yh"].id, "csrf_token": csrf_token(page)})
    assert client.get("/tasks").headers["Location"].endswith("/tasks?state=pending")


# --- saved filters -----------------------------------------------------------------------------------------------


def test_save_apply_rename_and_delete_a_filter_with_audit_events(client, world, s):
    world.register(title="双马填埋场渗滤液处理不到位")
    s.commit()
    login(client, "sup_xt")
    html = listing(client, "state=pending&q=双马&after=xyz")
    response = client.post("/filters", data={"csrf_token": csrf_token(html), "name": "  待交办  双马 ",
                                             "query": "state=pending&q=%E5%8F%8C%E9%A9%AC&after=xyz"})
    assert response.status_code == 302
    saved = s.scalar(select(SavedFilter))
    assert (saved.name, saved.user_id) == ("待交办 双马", world.user("sup_xt").id)
    assert saved.query == "q=%E5%8F%8C%E9%A9%AC&state=pending"  # normal form, no page cursor

    html = client.get("/tasks?clear=1", follow_redirects=True).get_data(as_text=True)
    assert f'href="/tasks?{escape(saved.query)}"' in html and "待交办 双马" in html
    assert "aria-current" not in html.split("saved-filters")[1].split("</nav>")[0]
    html = listing(client, saved.query)
    assert 'aria-current="true">待交办 双马' in html

    token = csrf_token(client.get("/filters").get_data(as_text=True))
    client.post(f"/filters/{saved.id}/rename", data={"csrf_token": token, "name": "双马待交办"})
    s.expire_all()
    assert s.get(SavedFilter, saved.id).name == "双马待交办"
    response = client.post(f"/filters/{saved.id}/delete", data={"csrf_token": token, "next": "filters"})
    assert response.headers["Location"].endswith("/filters")
    assert s.scalar(select(func.count()).select_from(SavedFilter)) == 0
    actions = s.execute(select(Event.action, Event.data).where(Event.entity == "saved_filter")
                        .order_by(Event.id)).all()
    assert [a for a, _ in actions] == ["create", "rename", "delete"]
    assert actions[1][1] == {"before": "待交办 双马", "after": "双马待交办"}


def test_saved_filter_rules_and_messages(s, world):
    sup, other = world.m["sup_xt"], world.m["sup_zz"]
    saved = saved_filters.save_filter(s, sup, NOW, "逾期", "schedule=overdue")
    with pytest.raises(ActionError, match="已有名为“逾期”的筛选，请换一个名称"):
        saved_filters.save_filter(s, sup, NOW, "逾期", "state=pending")
    saved_filters.save_filter(s, other, NOW, "逾期", "schedule=overdue")  # names are per user
    with pytest.raises(ActionError, match="请填写筛选名称"):
        saved_filters.save_filter(s, sup, NOW, "  ", "state=pending")
    with pytest.raises(ActionError, match="筛选名称不能超过100个字"):
        saved_filters.save_filter(s, sup, NOW, "长" * 101, "state=pending")
    with pytest.raises(ActionError, match="请先设置筛选条件再保存"):
        saved_filters.save_filter(s, sup, NOW, "空", "after=abc&unknown=1")
    with pytest.raises(ActionError, match="该筛选不存在"):
        saved_filters.delete_filter(s, other, NOW, saved.id)  # another user's filter
    with pytest.raises(ActionError, match="该筛选不存在"):
        saved_filters.rename_filter(s, other, NOW, saved.id, "改名")
    s.commit()
    assert s.get(SavedFilter, saved.id).name == "逾期"
    assert [f.name for f in saved_filters.filters_of(s, sup.user_id)] == ["逾期"]


def test_another_users_filter_cannot_be_deleted_through_the_page(client, world, s):
    saved = saved_filters.save_filter(s, world.m["sup_zz"], NOW, "株洲逾期", "schedule=overdue")
    s.commit()
    login(client, "sup_xt")
    html = listing(client, "")
    assert "株洲逾期" not in html
    response = client.post(f"/filters/{saved.id}/delete", data={"csrf_token": csrf_token(html)})
    assert response.status_code == 404  # another user's filter is answered as missing
    s.expire_all()
    assert s.get(SavedFilter, saved.id) is not None


def test_list_query_keeps_known_filters_in_a_normal_order():
    pairs = [("sort", "code"), ("after", "abc"), ("state", "pending"), ("q", " 双马 "), ("state", "assigned"),
             ("channel", ""), ("csrf_token", "x"), ("level", "2")]
    assert saved_filters.list_query(pairs) == (
        "q=%E5%8F%8C%E9%A9%AC&state=pending&state=assigned&level=2&sort=code")


# --- CSV export ------------------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # Excel reads UTF-8 only with a BOM
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_export_is_the_filtered_list_within_scope_and_is_logged(client, world, s):
    world.assigned(title="双马填埋场渗滤液处理不到位", participants=["湘潭市生态环境局"])
    world.register(title="涓水直排口污水直排湘江")
    world.register(title="清水塘老工业区遗留废渣", region="攸县", actor="sup_zz")
    s.commit()
    login(client, "sup_xt")
    response = client.get("/tasks/export.csv?state=assigned")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert "filename*=UTF-8''%E4%BB%BB%E5%8A%A1%E5%88%97%E8%A1%A8" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == list(list_export.HEADERS)
    assert [r[2] for r in rows[1:]] == ["双马填埋场渗滤液处理不到位"]
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["责任单位（牵头）"] == "雨湖区人民政府" and record["参与单位"] == "湘潭市生态环境局"
    assert record["状态"] == "已交办（待签收）" and record["现行时限"] == "2026-12-31"
    assert record["问题来源"] == "省级生态环境保护督察"

    everything = read_csv(client.get("/tasks/export.csv"))
    assert sorted(r[2] for r in everything[1:]) == ["双马填埋场渗滤液处理不到位", "涓水直排口污水直排湘江"]
    exports = s.scalars(select(Event).where(Event.action == "export", Event.entity == "task_list")).all()
    assert [e.data["query"] for e in exports] == ["state=assigned", ""]
    assert {e.user_id for e in exports} == {world.user("sup_xt").id}


def test_export_follows_the_lists_order_and_never_writes_a_formula(client, world, s):
    world.assigned(title="=HYPERLINK(\"http://example.com\",\"点击\")", deadline=D(2026, 6, 30))
    world.assigned(title="+双马填埋场", deadline=D(2026, 5, 31))
    world.assigned(title="@涓水直排口", deadline=D(2026, 7, 31))
    world.register(title="-信访件：九华工业园异味", kind="交办信访件",
                   complainant={"name": "张三", "phone": "13800000000"})
    s.commit()
    assert s.scalar(select(func.count()).select_from(Complainant)) == 1
    login(client, "sup_xt")
    rows = read_csv(client.get("/tasks/export.csv?sort=deadline"))
    assert [r[2] for r in rows[1:]] == ["'+双马填埋场", "'=HYPERLINK(\"http://example.com\",\"点击\")", "'@涓水直排口",
                                         "'-信访件：九华工业园异味"]
    text = "".join(",".join(r) for r in rows)
    assert "张三" not in text and "13800000000" not in text  # 信访人信息 is never exported


def test_export_streams_in_chunks(world, s):
    for i in range(5):
        world.register(title=f"长株潭“绿心”违规建设第{i + 1}处", region="湘乡市")
    s.commit()
    query = list_export.ordered_query(s, world.m["sup_xt"], TaskFilter())
    chunks = list(list_export.csv_chunks(s, query, batch=2))
    assert chunks[0].startswith("\ufeff任务ID,") and chunks[0].count("\n") == 1
    assert [c.count("\n") for c in chunks[1:]] == [2, 2, 1]


def test_a_unit_exports_only_its_own_tasks(client, world, s):
    world.assigned(title="双马填埋场渗滤液处理不到位")
    world.assigned(title="湘乡皮革工业园污水处理厂超标排放", region="湘乡市", lead="湘乡市人民政府")
    s.commit()
    login(client, "unit_xx")
    rows = read_csv(client.get("/tasks/export.csv"))
    assert [r[2] for r in rows[1:]] == ["湘乡皮革工业园污水处理厂超标排放"]


# --- keyboard-friendly forms ------------------------------------------------------------------------------------


class Controls(HTMLParser):
    """Form controls with how they are labelled, autofocus, and any inline script or style."""

    def __init__(self):
        super().__init__()
        self.controls, self.labels, self.inline, self.autofocus = [], set(), [], []
        self._in_label = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "label":
            self._in_label += 1
            if a.get("for"):
                self.labels.add(a["for"])
        if "style" in a or any(k.startswith("on") for k in a) or (tag == "script" and not a.get("src")):
            self.inline.append(tag)
        if "autofocus" in a:
            self.autofocus.append(a.get("id"))
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append((a.get("id"), bool(a.get("aria-label")), self._in_label > 0, a.get("name")))

    def handle_endtag(self, tag):
        if tag == "label":
            self._in_label -= 1


def controls(html: str) -> Controls:
    parser = Controls()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("url", ["/tasks", "/tasks/new", "/tasks/bulk?action=assign&task={id}:{version}",
                                 "/filters"])
def test_every_control_is_labelled_one_field_has_autofocus_and_no_inline_script(client, world, s, url):
    task = world.register(title="双马填埋场渗滤液处理不到位")
    saved_filters.save_filter(s, world.m["sup_xt"], NOW, "待交办", "state=pending")
    s.commit()
    login(client, "sup_xt")
    response = client.get(url.format(id=task.id, version=task.version))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    found = controls(html)
    unlabelled = [c for c in found.controls if not (c[1] or c[2] or c[0] in found.labels)]
    assert unlabelled == []
    assert found.inline == []
    assert len(found.autofocus) <= 1
    assert 'src="/static/js/keys.js"' in html
    if url != "/filters":
        assert len(found.autofocus) == 1 and "Ctrl+Enter" in html


def test_the_list_documents_its_shortcuts_and_loads_its_script(client, world, s):
    login(client, "sup_xt")
    html = listing(client, "")
    assert 'data-search' in html and "/ 搜索" in html and "j / k" in html
    assert 'src="/static/js/list.js"' in html
    assert client.get("/static/js/list.js").status_code == 200
    assert client.get("/static/js/keys.js").status_code == 200


def test_pages_render_for_every_role(client, world, s):
    world.assigned(title="双马填埋场渗滤液处理不到位")
    s.commit()
    for username in ("admin_hn", "sup_hn", "viewer_xt", "unit_yh"):
        login(client, username)
        assert client.get("/tasks?level=0&proposal=1").status_code == 200
        assert client.get("/filters").status_code == 200
        assert client.get("/tasks/export.csv").status_code == 200


def test_a_task_filter_round_trips_through_a_saved_query(s, world):
    task = world.register(title="双马填埋场渗滤液处理不到位")
    world.register(title="涓水直排口污水直排湘江")
    s.commit()
    saved = saved_filters.save_filter(s, world.m["sup_xt"], NOW, "双马", "q=双马&state=pending")
    f = TaskFilter.from_args(MultiDict(parse_qsl(saved.query)))
    assert (f.q, f.states) == ("双马", ["pending"])
    assert list(s.scalars(filtered_tasks(s, world.m["sup_xt"], f))) == [task]
