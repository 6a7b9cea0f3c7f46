"""Chinese first, English second: every Chinese string in the templates goes through Flask-Babel, every marked
string has an English translation, and the pages read in English once a user switches (docs/I18N.md)."""

from __future__ import annotations

import ast
import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from flask import session
from sqlalchemy import JSON, String, func, select

from tests.catalogue import KEYWORDS, compile_catalogue, extracted, read_catalogue
from tests.conftest import NOW, csrf_token, fake_file, login
from tracker import babel
from tracker.accounts import set_locale
from tracker.audit import ActionError
from tracker.babel import translate
from tracker.i18n import N_
from tracker.models import Base, Event, User
from tracker.operations import perform
from tracker.paths import TEMPLATE_DIR
from tracker.permissions import can

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # ideographs and full-width punctuation (、：（）)
# Text passed to the gettext functions, and Jinja comments, are what may hold Chinese.
MARKED = re.compile(r"""_\(\s*(?:"[^"]*"|'[^']*')|\{#.*?#\}""", re.S)


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATE_DIR).as_posix()
                                            for p in TEMPLATE_DIR.rglob("*.html")))
def test_no_chinese_text_outside_gettext(template):
    """Punctuation too: a "：" or "、" between two texts reads wrong in English — `{{ _("、") }}` translates it."""
    source = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
    left = MARKED.sub("", source)
    offending = [line.strip() for line in left.splitlines() if CJK.search(line)]
    assert offending == [], f"unmarked Chinese text in {template}"


def test_babel_extracts_the_template_strings():
    method_map = [("**.html", "jinja2")]
    found = {message for _, _, message, *_ in extract_from_dir(str(TEMPLATE_DIR), method_map)}
    assert {"待办", "任务列表", "办理记录（履责留痕）", "登录"} <= found


# --- the English catalogue -------------------------------------------------------------------------------------
# Every text the code marks is in translations/en/LC_MESSAGES/messages.po with an English translation; pages
# read in English once a user switches, except user data (names of units, regions, tasks …), which stay Chinese.

WIDE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # CJK ideographs and full-width punctuation
WIDE_RUN = re.compile(WIDE.pattern + "+")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")
ROOT = Path(__file__).resolve().parent.parent


def test_every_marked_string_has_an_english_translation():
    """Fails when someone adds a string: run `make translations` and translate the new entries (docs/I18N.md)."""
    catalogue = read_catalogue()
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    missing = {msgid: where[0] for msgid, where in extracted().items() if msgid not in translated}
    assert missing == {}, f"{len(missing)} strings without an English translation: run `make translations`"


def test_the_english_strings_keep_the_placeholders_of_the_chinese_ones():
    wrong = {}
    for m in read_catalogue():
        if m.id and m.string and not m.fuzzy:
            wanted = sorted(PLACEHOLDER.findall(m.id))
            if sorted(PLACEHOLDER.findall(m.string)) != wanted:
                wrong[m.id] = m.string
            elif m.string.count("%%") != m.id.count("%%"):
                wrong[m.id] = m.string
    assert wrong == {}


def test_no_english_text_is_left_chinese_and_the_catalogue_compiles(tmp_path):
    """Chinese may appear in a translation only where it quotes the original (an example as it is written)."""
    catalogue = read_catalogue()
    assert [m.id for m in catalogue if m.string and any(run not in m.id for run in WIDE_RUN.findall(m.string))] == []
    with (tmp_path / "messages.mo").open("wb") as handle:
        write_mo(handle, catalogue)
    assert (tmp_path / "messages.mo").stat().st_size > 10_000


def test_make_translations_extracts_with_the_keywords_the_tests_use():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert all(f"-k {keyword}" in makefile for keyword in KEYWORDS)
    assert "pybabel extract -F babel.cfg" in makefile and "pybabel compile" in makefile


TRANSLATABLE_CALLS = {"_", "gettext", "_l", "lazy_gettext", "N_", *KEYWORDS}


def _untranslatable_calls(path: Path) -> list[str]:
    """Calls of the translation marks whose text the extractor cannot see (an f-string, a join)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            first = node.args[0]
            if name in TRANSLATABLE_CALLS and (isinstance(first, ast.JoinedStr) or (
                    isinstance(first, ast.BinOp) and any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                                                         for n in ast.walk(first)))):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_messages_are_msgids_with_named_parameters_never_f_strings():
    """ActionError("{region}已有单位“{name}”", region=…, name=…), not ActionError(f"…"): the extractor must see
    the text and the page must translate it before the parameters go in."""
    found = [where for path in sorted((ROOT / "tracker").rglob("*.py")) for where in _untranslatable_calls(path)]
    assert found == []


def test_views_show_refusals_in_the_users_language():
    """`flash(str(exc))` shows a refused action in Chinese to everyone; `flash(translate(exc))` translates it."""
    offending = [f"{p.name}:{n}" for p in sorted((ROOT / "tracker" / "views").glob("*.py"))
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
                 if re.search(r"flash\(\s*str\(", line)]
    assert offending == []


# --- the switch and the formats ----------------------------------------------------------------------------------


@pytest.fixture
def english(app):
    """The compiled catalogue (from the .po in git, as `make` compiles it)."""
    compile_catalogue()
    return app


def switch(client, locale: str, html: str, next_url: str = ""):
    return client.post("/locale", data={"locale": locale, "csrf_token": csrf_token(html), "next": next_url})


def test_the_login_page_switches_to_english_for_the_session_only(english, client, world, s):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and ">English</button>" in html
    answer = switch(client, "en", html, "/login")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html and "Log in" in html and "Username" in html and "登录" not in html
    assert 'lang="zh-CN">中文</button>' in html  # the way back, in its own language
    login(client, "sup_xt")  # the choice made on the login page stays after logging in
    assert "To-do" in client.get("/todo").get_data(as_text=True)
    assert s.scalar(select(User.locale).where(User.username == "sup_xt")) == "zh_Hans_CN"  # nothing stored


def test_a_logged_in_user_switches_and_the_choice_is_kept_for_the_next_login(english, app, client, world, s):
    login(client, "unit_yh")
    html = client.get("/todo").get_data(as_text=True)
    assert "暂无待办事项" in html
    switch(client, "en", html, "/todo")
    assert "Nothing to do" in client.get("/todo").get_data(as_text=True)
    s.expire_all()
    user = s.scalar(select(User).where(User.username == "unit_yh"))
    assert user.locale == "en"
    event = s.scalar(select(Event).where(Event.action == "set_locale"))
    assert event.entity_id == user.id and event.data["locale"] == "en" and event.data["old_locale"] == "zh_Hans_CN"
    assert event.membership_id == world.m["unit_yh"].id

    other = app.test_client()  # another browser: the stored choice applies from the first page on
    login(other, "unit_yh")
    html = other.get("/todo").get_data(as_text=True)
    assert "Nothing to do" in html and '<html lang="en">' in html
    switch(other, "zh_Hans_CN", html)
    assert "暂无待办事项" in other.get("/todo").get_data(as_text=True)
    s.expire_all()
    assert s.scalar(select(User.locale).where(User.username == "unit_yh")) == "zh_Hans_CN"
    assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "set_locale")) == 2


def test_the_switch_refuses_an_unknown_language_and_a_missing_csrf_token(english, client, world, s):
    login(client, "unit_yh")
    html = client.get("/todo").get_data(as_text=True)
    assert switch(client, "fr", html).status_code == 400
    assert client.post("/locale", data={"locale": "en"}).status_code == 400
    assert switch(client, "en", html, "https://evil.example/").headers["Location"].endswith("/todo")
    s.expire_all()
    assert s.scalar(select(User.locale).where(User.username == "unit_yh")) == "en"


def test_dates_and_numbers_are_written_the_way_the_language_writes_them(english, app):
    day, instant = dt.date(2026, 3, 2), dt.datetime(2026, 3, 2, 1, 5, tzinfo=dt.UTC)
    for locale, expected in (("zh_Hans_CN", ("2026年3月2日", "2026年3月2日 09:05", "周一", "12,345", "97.3%")),
                             ("en", ("Mar 2, 2026", "Mar 2, 2026 09:05", "Mon", "12,345", "97.3%"))):
        with app.test_request_context("/"):
            session["locale"] = locale
            assert (babel.format_day(day), babel.format_moment(instant), babel.format_weekday(day),
                    babel.format_number(12345), babel.format_percent(0.9734)) == expected
            assert babel.iso_day(day) == "2026-03-02"  # form fields and query strings keep ISO


def test_refusals_are_translated_with_their_parameters(english, app, world, s):
    task = world.assigned(title="涓水直排口污水直排湘江")
    world.advance(task, "closed")
    refusal = can(world.m["unit_yh"], "sign", task)
    duplicate = ActionError("{region}已有单位“{name}”", region="雨湖区", name="雨湖区人民政府")
    assert str(duplicate) == "雨湖区已有单位“雨湖区人民政府”"  # the CLI's text
    with app.test_request_context("/"):
        session["locale"] = "en"
        assert translate(refusal.reason) == 'Not possible while the task is "Closed": Sign for'
        assert translate(duplicate) == '雨湖区 already has a unit "雨湖区人民政府"'
        assert translate(ActionError(N_("用户名或密码错误"))) == "Wrong username or password"
        assert translate("雨湖区人民政府") == "雨湖区人民政府"  # data comes back as it is
    with app.test_request_context("/"):
        assert translate(refusal.reason) == "当前状态为“已销号”，不能签收"


# --- the pages in English ------------------------------------------------------------------------------------------


class VisibleText(HTMLParser):
    """The text a reader sees (text nodes, and title / placeholder / aria-label / alt / button values), leaving
    out what is marked as another language (lang="zh-CN": the way back to Chinese)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")

    def __init__(self):
        super().__init__()
        self.open: list[tuple[str, bool]] = []
        self.parts: list[str] = []

    @property
    def hidden(self) -> bool:
        return any(skip for _, skip in self.open) or any(tag in ("script", "style") for tag, _ in self.open)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        other_language = bool(attrs.get("lang")) and not attrs["lang"].startswith("en") and tag != "html"
        if not self.hidden and not other_language:
            self.parts += [attrs[a] for a in self.SHOWN_ATTRIBUTES if attrs.get(a)]
            if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
                self.parts.append(attrs["value"])
        if tag not in self.VOID:
            self.open.append((tag, other_language))

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.parts.append(data.strip())


def data_values(s) -> list[str]:
    """Chinese text stored in the database that is not vocabulary from the catalogue (names, titles, reasons …),
    and what the English catalogue quotes as it is written (an example document number)."""
    catalogue = read_catalogue()
    msgids = {m.id for m in catalogue if m.id}
    found: set[str] = {run for m in catalogue if m.string for run in WIDE_RUN.findall(m.string)}

    def walk(value):
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.c if isinstance(c.type, String | JSON)]
        if columns:
            for row in s.execute(select(*columns)):
                walk(tuple(row))
    return sorted((v for v in found if WIDE.search(v) and v not in msgids), key=len, reverse=True)


def chinese_left(html: str, data: list[str]) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    left = []
    for part in parser.parts:
        for value in data:
            part = part.replace(value, "")
        if WIDE.search(part):
            left.append(part)
    return left


def read_in_english(client, s, paths) -> dict[str, list[str]]:
    """Each page's text that is still Chinese (or has full-width punctuation) and is not data."""
    data = data_values(s)
    problems = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert '<html lang="en">' in html, path
        left = chinese_left(html, data)
        if left:
            problems[path] = left
    return problems


@pytest.fixture
def ledger(world, s):
    """Tasks in every stage (with reports, evidence, an extension request, a measure and a closure)."""
    tasks = {"pending": world.register(title="双马填埋场渗滤液处理不到位", description="渗滤液直排，周边水体发黑"),
             "assigned": world.assigned(title="涓水直排口污水直排湘江", participants=["湘潭市生态环境局"])}
    rectifying = world.assigned(title="竹埠港化工区遗留污染地块治理", deadline=dt.date(2026, 9, 30))
    world.advance(rectifying, "rectifying")
    perform(s, rectifying, "report", world.m["unit_yh"], NOW, text="已完成土壤修复方案编制", percent=40,
            files=[fake_file("before", "整改前现场照片.jpg")])
    perform(s, rectifying, "request_extension", world.m["unit_yh"], NOW, reason="雨季施工受阻",
            new_deadline=dt.date(2026, 12, 31))
    perform(s, rectifying, "confirm_measure", world.m["sup_xt"], NOW, level=2, doc_no="潭督函〔2026〕3号",
            note="进度滞后")
    tasks["rectifying"] = rectifying
    closed = world.assigned(title="湘江河道非法采砂整治", lead="湘乡市人民政府", region="湘乡市")
    tasks["closed"] = world.advance(closed, "closed", lead_user="unit_xx")
    s.commit()
    return tasks


def english_client(client, username: str):
    login(client, username)
    html = client.get("/todo").get_data(as_text=True)
    assert chinese_left(html, []), "the checker finds the Chinese of a Chinese page"
    switch(client, "en", html)
    return client


def test_the_main_pages_read_in_english_for_a_supervisor(english, client, world, s, ledger):
    english_client(client, "sup_xt")
    ids = {k: t.id for k, t in ledger.items()}
    paths = ["/todo", "/tasks", "/tasks?schedule=behind&sort=code", "/tasks/new", "/messages", "/restrictions",
             "/archives", "/reports", "/reports?by=region", "/reports?by=unit", "/dashboard",
             f"/reports/tasks?region={world.regions['湘潭市'].id}&as_of=2026-03-02&by=region&cell=total"
             f"&group=%5B%22%E9%9B%A8%E6%B9%96%E5%8C%BA%22%5D",
             f"/tasks/{ids['pending']}/edit", f"/tasks/{ids['pending']}/split",
             *(f"/tasks/{i}" for i in ids.values())]
    assert read_in_english(client, s, paths) == {}


def test_the_workbench_pages_read_in_english(english, client, world, s, ledger):
    english_client(client, "sup_xt")
    pending, assigned = ledger["pending"], ledger["assigned"]
    paths = ["/jobs", "/profile", "/filters", "/recheck", "/recheck/reopen-rates",
             f"/tasks/{ledger['closed'].id}/similar",
             f"/tasks/bulk?action=assign&task={pending.id}:{pending.version}",
             f"/tasks/bulk?action=reassign&task={assigned.id}:{assigned.version}"]
    assert read_in_english(client, s, paths) == {}


def test_the_main_pages_read_in_english_for_a_unit(english, client, world, s, ledger):
    english_client(client, "unit_yh")
    paths = ["/todo", "/tasks", "/messages", *(f"/tasks/{ledger[k].id}" for k in ("assigned", "rectifying"))]
    assert read_in_english(client, s, paths) == {}


def test_the_admin_pages_read_in_english(english, client, world, s, ledger):
    english_client(client, "admin_hn")
    paths = ["/admin/users", f"/admin/users/{world.user('sup_xt').id}", "/admin/units", "/admin/regions",
             "/admin/calendar", "/admin/calendar?year=2027", "/admin/settings", "/admin/escalation", "/admin/mail",
             "/import", "/admin/closure"]
    assert read_in_english(client, s, paths) == {}


def test_english_pages_write_dates_and_percentages_in_english(english, client, world, s, ledger):
    english_client(client, "sup_xt")
    html = client.get(f"/tasks/{ledger['rectifying'].id}").get_data(as_text=True)
    assert "Mar 2, 2026" in html and "Sep 30, 2026" in html and "2026-03-02 09:00" not in html
    assert "Under rectification" in html and "Confirm: Report progress" not in html  # a supervisor does not report
    report = client.get("/reports?as_of=2026-03-02").get_data(as_text=True)
    assert 'value="2026-03-02"' in report  # the date field keeps ISO
    assert "33.3%" in report and "Closure rate" in report  # 1 of the 3 assigned tasks is closed


def test_the_error_pages_and_refusals_read_in_english(english, client, world, s, ledger):
    english_client(client, "unit_yh")
    missing = client.get("/tasks/999999")
    assert missing.status_code == 404 and "The page does not exist" in missing.get_data(as_text=True)
    task = ledger["assigned"]
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    refused = client.post(f"/tasks/{task.id}/act/decline", data={
        "decline-csrf_token": csrf_token(html), "decline-version": str(task.version), "decline-reason": " "})
    assert refused.status_code == 400
    assert "This field is required" in refused.get_data(as_text=True)
    stale = client.post(f"/tasks/{task.id}/act/sign", data={
        "sign-csrf_token": csrf_token(html), "sign-version": "0"}, follow_redirects=True)
    assert "Someone else has changed this in the meantime" in stale.get_data(as_text=True)


def test_set_locale_is_an_operation_with_its_event_and_its_refusals(world, s):
    unit_yh = world.user("unit_yh")
    with pytest.raises(ActionError):
        set_locale(s, world.m["unit_yh"], NOW, unit_yh, "fr")
    with pytest.raises(ActionError):  # a unit cannot choose for somebody else
        set_locale(s, world.m["unit_xx"], NOW, unit_yh, "en")
    set_locale(s, world.m["admin_hn"], NOW, unit_yh, "en")  # an administrator of the subtree may
    set_locale(s, world.m["unit_yh"], NOW, unit_yh, "en")  # no change: no event
    events = s.scalars(select(Event).where(Event.action == "set_locale")).all()
    assert unit_yh.locale == "en" and len(events) == 1 and events[0].membership_id == world.m["admin_hn"].id
