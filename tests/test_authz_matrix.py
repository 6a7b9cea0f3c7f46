"""The authorization matrix (issue 9): every rule of the app's URL map — web pages and /api/v1 — asked by
every role and scope, and 信访人信息 looked for in every answer, export and mail.

``MATRIX`` is keyed by endpoint name. Each entry lists the cases of that endpoint: how to fill the URL's
parameters from the objects built once for this module (a 雨湖区 task of 湘潭市 with its lead unit 雨湖区人民政府
and participant 湘潭市生态环境局, its evidence, archives, jobs, filters, tokens, users, recheck samples …),
the request (GET, or POST with a valid CSRF token and a form that would succeed), and who may reach it.
A rule of the URL map without an entry fails ``test_every_route_and_method_has_a_matrix_entry`` by name.

Each case is asked by: anonymous, a unit of another county (湘乡市人民政府), the participant unit, the lead
unit, a supervisor of another city (株洲市), the viewer of 湘潭市, an admin of another city (株洲市), and the
legitimate supervisor (湘潭市突改办, the assigning level) and admin (湘潭市) — the positive controls, so each
case can fail. Expected: the allowed roles get the case's success status (and a data-changing POST by the
case's ``control`` role must change the data); anonymous is sent to the login page (web) or answered 401
(API); everyone else 403 or 404 (exactly 404 for an object outside their scope, so existence does not
leak) — or the case's stated refusal for a role that may use the page but not for this object — never a
500, and a refused POST changes nothing in the database or the file folders. Every answer is searched for
strings only certain roles may see (the tasks' titles, the complainant, another user's filters and tokens).
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import functools
import hashlib
import io
import json
import pickle
import urllib.parse
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from sqlalchemy import JSON, String, Text, select, update
from sqlalchemy.engine import Engine

from config import TestConfig
from tests.conftest import NOW, PASSWORD, _reset, build_world, csrf_token, login
from tracker import (
    archive,
    closure,
    create_app,
    escalation,
    jobs,
    outbox,
    recheck,
    saved_filters,
    settings,
    storage,
    tokens,
)
from tracker.accounts import NewUser, create_user
from tracker.forms import ACTION_FORMS
from tracker.models import (
    ApiToken,
    Base,
    Complainant,
    EscalationRule,
    Notification,
    OutboxMail,
    SavedFilter,
    Task,
    User,
)
from tracker.operations import perform
from tracker.timeutil import local_date, utcnow
from tracker.workflow import TRANSITIONS, Party

# --- what only some may see ----------------------------------------------------------------------------------

TITLE = "双马填埋场"  # in the title of every task built here: all lie in 雨湖区
COMPLAINANT = {"name": "易湘雨", "phone": "13973208817", "address": "雨湖区云塘街道枫林小区",
               "content": "填埋场夜间渗滤液外溢，气味刺鼻。"}
COMPLAINANT_MARKS = (COMPLAINANT["name"], COMPLAINANT["phone"], COMPLAINANT["address"])
FILTER = "雨湖矩阵筛选"  # sup_xt's saved filters
TOKEN = "雨湖矩阵令牌"  # sup_xt's API tokens
USER = "yh_user_"  # accounts of 雨湖区 that only admins of 湘潭市 (and the province) manage
RESTRICTED_XT = "湘政限批〔2026〕9号"  # 区域限批 against 湘潭市
RESTRICTED_ZZ = "株政限批〔2026〕4号"  # 区域限批 against 攸县 (株洲市)
NEW_PASSWORD = "Yuhu-Shuangma-2026-reset"

TODAY = local_date(utcnow())
LATER = TODAY + dt.timedelta(days=200)  # a deadline that stays ahead whenever the tests run
# The complainant's task is 20–40 working days overdue whenever the tests run: the scan proposes 督办, which
# the task's own region (雨湖区) decides — not yet 挂牌督办, which the level above would.
OVERDUE = TODAY - dt.timedelta(days=40)
CENTRAL = "中央生态环境保护督察"  # closing 省, 初验 市州
# A 1×1 PNG: evidence is a real image, whatever the upload checks look at.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
                        "rkJggg==")

# --- roles -------------------------------------------------------------------------------------------------------

ROLES = ("anon", "unit_xx", "unit_sthj", "unit_yh", "sup_zz", "viewer_xt", "admin_zz", "sup_xt", "admin_xt")
ROLE_NAMES = {
    "anon": "anonymous", "unit_xx": "unit of another county (湘乡市人民政府)",
    "unit_sthj": "participant unit (湘潭市生态环境局)", "unit_yh": "lead unit (雨湖区人民政府)",
    "sup_zz": "supervisor of another city (株洲市)", "viewer_xt": "viewer (湘潭市)",
    "admin_zz": "admin of another city (株洲市)", "sup_xt": "supervisor of the assigning level (湘潭市)",
    "admin_xt": "admin of 湘潭市", "admin_hn": "province admin", "sup_hn": "province supervisor",
    "sup_yh": "supervisor of 雨湖区",
}
ALL = frozenset(ROLES)
LOGGED_IN = ALL - {"anon"}
# Extra roles that ask only where a case names them (province-only pages), and in the sweep of every page.
EXTRA = ("admin_hn", "sup_hn", "sup_yh")
EVERYONE = ALL | set(EXTRA)
UNITS = frozenset({"unit_xx", "unit_sthj", "unit_yh"})
XT = frozenset({"viewer_xt", "sup_xt", "admin_xt"})  # subtree roles whose subtree holds 雨湖区
SUBTREE = XT | {"sup_zz", "admin_zz"}
SUPERVISORS = frozenset({"sup_xt", "sup_zz"})
ADMINS = frozenset({"admin_xt", "admin_zz"})
SCOPE_T = XT | {"unit_yh", "unit_sthj"}  # who sees an assigned task of 雨湖区 with those two units
OUT_T = LOGGED_IN - SCOPE_T  # … and who must be told it does not exist
OUT_XT = frozenset({"sup_zz", "admin_zz"})  # subtree roles elsewhere: 湘潭市's regions answer 404
# Roles that may be shown a string; everyone else must never be.
SEES_TASKS = SCOPE_T | {"admin_hn", "sup_hn", "sup_yh"}
# (A token's name is in the security log its owner's admins read.)
SENTINELS = {TITLE: SEES_TASKS, FILTER: {"sup_xt"}, TOKEN: {"sup_xt", "admin_xt", "admin_hn"},
             USER: {"admin_xt", "admin_hn"},
             RESTRICTED_XT: XT | {"admin_hn", "sup_hn", "sup_yh"}, RESTRICTED_ZZ: OUT_XT | {"admin_hn", "sup_hn"}}


# --- the objects the cases point at ------------------------------------------------------------------------------


@dataclass
class Objs:
    """Ids of what the cases point at, built once for the module."""

    engine: Engine
    unit: dict[str, int]
    region: dict[str, int]
    m: dict[str, int]  # username -> membership id
    round: int = 0
    T: int = 0  # the 交办信访件 of 雨湖区 with the complainant: assigned by 湘潭市, 整改中, overdue
    evidence: int = 0
    link_other: int = 0
    split_view: int = 0
    split: int = 0
    bulk_view: int = 0
    bulk: int = 0
    web: dict[str, int] = field(default_factory=dict)  # action -> task in the state it needs (web form)
    api: dict[str, int] = field(default_factory=dict)  # … (API endpoint)
    archive: int = 0  # 湘潭市's archived ledger
    job: int = 0  # sup_xt's finished ledger export
    filters: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    revoked_membership: int = 0
    role_membership: int = 0
    channel: int = 0  # the channel whose 销号标准 the cases edit (no task of the module uses it)
    criteria: list[int] = field(default_factory=list)
    mail: int = 0  # a failed mail
    sample: int = 0
    item: int = 0

    def version(self, task_id: int) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(Task.version).where(Task.id == task_id))

    def yuhu(self) -> int:
        return self.region["雨湖区"]


Data = Callable[[Objs, str], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    method: str
    url: Callable[[Objs], str]
    allow: frozenset[str]  # answered with ``ok``
    ok: tuple[int, ...] = (200,)
    data: Data | None = None  # form fields (web; the CSRF token is added) or JSON body (API)
    control: str | None = None  # whose request must change the data (asked last)
    refuse: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # roles refused otherwise; no change
    out: frozenset[str] = frozenset()  # roles that must get exactly 404 (the object is outside their scope)
    hidden: Callable[[Objs], Mapping[str, frozenset[str]]] | None = None  # case-specific SENTINELS
    shows: Callable[[Objs], Mapping[str, tuple[str, ...]]] | None = None  # what a role must be shown
    multipart: bool = False  # API: the body as multipart/form-data with a file
    fresh: bool = False  # ask from a client of its own (login, logout)
    then: Callable[[Any, str, Objs], str | None] | None = None  # a check after each request: a failure or None
    guard: Callable[[Objs, str], Any] | None = None  # what must not change when the role asks (others' rows)
    label: str = ""


def get(url, allow, **kw) -> Case:
    return Case("GET", url, frozenset(allow), **kw)


def post(url, allow, data=None, *, ok=(302,), method="POST", **kw) -> Case:
    return Case(method, url, frozenset(allow), ok=ok, data=data or (lambda o, r: {}), **kw)


def only(*roles: str, status: int) -> dict[str, tuple[int, ...]]:
    return {role: (status,) for role in roles}


# --- workflow actions: one task per action and boundary, in the state the action needs ------------------------

LEAD = frozenset({"unit_yh"})
SUPERVISOR = frozenset({"sup_xt"})
STATE_FOR = {
    "assign": "pending", "split": "pending", "decline": "assigned", "sign": "assigned", "reassign": "assigned",
    "cancel": "assigned", "merge": "assigned", "submit_plan": "signed", "approve_plan": "planned",
    "return_plan": "planned", "report": "rectifying", "submit": "rectifying", "request_extension": "rectifying",
    "change_deadline": "rectifying", "confirm_measure": "rectifying", "decide_extension": "extension",
    "pre_verify": "verifying_central", "return": "verifying", "close": "verifying", "reopen": "closed",
}
FILE_ACTIONS = ("report", "submit", "pre_verify", "close")


def parties_of(action: str) -> frozenset[str]:
    """The roles of this module that are a party the transition table allows."""
    roles = {Party.supervisor: {"sup_xt"}, Party.lead: {"unit_yh"}, Party.participant: {"unit_sthj"}}
    return frozenset().union(*(roles[p] for p in TRANSITIONS[action].parties))


def scope_of(action: str) -> frozenset[str]:
    return XT if STATE_FOR[action] == "pending" else SCOPE_T  # a task not yet assigned has no units


def action_fields(o: Objs, action: str) -> dict[str, Any]:
    """What a person would fill in for the action (typed as JSON wants it)."""
    yh, sthj = o.unit["雨湖区人民政府"], o.unit["湘潭市生态环境局"]
    later = LATER.isoformat()
    return {
        "assign": {"leads": [yh], "participants": [sthj], "deadline_kind": "date", "deadline": later},
        "split": {"children": [{"region_id": o.yuhu(), "title": "涓水直排口雨湖段截污", "leads": [yh],
                                "deadline": later},
                               {"region_id": o.yuhu(), "title": "涓水直排口沿线监测", "leads": [sthj],
                                "deadline": later}]},
        "decline": {"reason": "该问题属湘潭市生态环境局职责，请改派"},
        "sign": {},
        "submit_plan": {"target": "渗滤液达标排放", "measures": "新建渗滤液处理站，清运积存渗滤液",
                        "responsible_leader": "雨湖区副区长", "contact": "0731-58000000"},
        "approve_plan": {"opinion": "同意"},
        "return_plan": {"reason": "整改措施不具体"},
        "report": {"text": "渗滤液处理站主体完工", "percent": 60},
        "submit": {"text": "已完成整改，申请销号"},
        "pre_verify": {"opinion": "初验合格"},
        "return": {"reason": "现场仍有渗滤液外溢"},
        "close": {"opinion": "验收合格", "closed_on": TODAY.isoformat(), "closure_doc_no": "湘督销〔2026〕21号"},
        "reopen": {"reason": "回头看发现问题反弹", "deadline_kind": "date", "deadline": later},
        "reassign": {"leads": [sthj], "reason": "职责调整"},
        "cancel": {"reason": "重复登记"},
        "merge": {"merge_into": o.T, "reason": "同一信访事项"},
        "request_extension": {"new_deadline": (LATER + dt.timedelta(days=30)).isoformat(), "reason": "雨季施工受阻"},
        "decide_extension": {"decision": "approve", "note": ""},
        "change_deadline": {"reason": "调整时限", "deadline_kind": "date",
                            "deadline": (LATER + dt.timedelta(days=60)).isoformat()},
        "confirm_measure": {"level": 2, "doc_no": "湘督函〔2026〕15号", "note": "逾期未完成"},
    }[action]


def web_action_form(action: str) -> Data:
    def data(o: Objs, role: str) -> dict[str, Any]:
        fields = {**action_fields(o, action), "version": o.version(o.web[action])}
        if action in FILE_ACTIONS:
            fields.update(evidence_kind="after", files=png())
        if action == "close":
            fields["verifier_unit_id"] = 0
        return {f"{action}-{name}": value for name, value in fields.items()}
    return data


def api_action_body(action: str) -> Data:
    def data(o: Objs, role: str) -> dict[str, Any]:
        body = {**action_fields(o, action), "version": o.version(o.api[action])}
        if action in FILE_ACTIONS:
            body.update(evidence_kind="after", files=png())
        return body
    return data


def act_cases() -> list[Case]:
    """tasks.act: every action form, on its own task, by every role."""
    cases = []
    for action in ACTION_FORMS:
        allow, scope = parties_of(action), scope_of(action)
        cases.append(post(lambda o, a=action: f"/tasks/{o.web[a]}/act/{a}", allow, web_action_form(action),
                          control=sorted(allow)[-1], refuse=only(*(scope - allow), status=400),
                          out=LOGGED_IN - scope, label=action))
    return cases


def api_action_cases() -> dict[str, list[Case]]:
    """api.task_<action>: one endpoint per row of the transition table."""
    cases = {}
    for action in TRANSITIONS:
        if action == "register":
            continue
        allow, scope = parties_of(action), scope_of(action)
        slug = action.replace("_", "-")
        cases[f"api.task_{action}"] = [post(
            lambda o, a=action, p=slug: f"/api/v1/tasks/{o.api[a]}/actions/{p}", allow, api_action_body(action),
            ok=(200,), control=sorted(allow)[-1], refuse=only(*(scope - allow), status=403),
            out=LOGGED_IN - scope, multipart=action in FILE_ACTIONS)]
    return cases


def png() -> tuple[io.BytesIO, str]:
    return io.BytesIO(PNG), "渗滤液处理站现场照片.png"


# --- forms of the other pages ------------------------------------------------------------------------------------


def register_form(o: Objs, role: str) -> dict[str, Any]:
    return {"title": "涓水直排口污水溢流", "kind": "交办信访件", "category": "水", "channel_id": o.channel,
            "round_id": o.round, "region_id": o.yuhu(), "complainant_name": "匿名",
            "complainant_phone": "0731-00000000", "complainant_content": "雨天溢流"}


def edit_form(o: Objs, role: str) -> dict[str, Any]:
    with o.engine.connect() as conn:
        row = conn.execute(select(Task.__table__).where(Task.id == o.T)).mappings().one()
    names = ("code", "title", "kind", "category", "description", "responsible_leader", "contact", "target",
             "measures", "accountability")
    return {**{n: row[n] or "" for n in names}, "remarks": f"由{role}修改", "version": row["version"]}


def split_form(o: Objs, role: str) -> dict[str, Any]:
    yh, sthj = o.unit["雨湖区人民政府"], o.unit["湘潭市生态环境局"]
    return {"split-version": o.version(o.split), "c0-region_id": o.yuhu(), "c0-title": "涓水直排口截污",
            "c0-leads": [yh], "c0-deadline": LATER.isoformat(), "c1-region_id": o.yuhu(),
            "c1-title": "涓水直排口监测", "c1-leads": [sthj], "c1-deadline": LATER.isoformat()}


def similar_form(o: Objs, role: str) -> dict[str, Any]:
    return {"note": "举一反三", "r0-region_id": o.yuhu(), "r0-title": "雨湖区其他填埋场排查",
            "r0-leads": [o.unit["雨湖区人民政府"]], "r0-deadline": LATER.isoformat(), "r0-deadline_text": ""}


def bulk_url(task: str) -> Callable[[Objs], str]:
    return lambda o: f"/tasks/bulk?action=assign&task={getattr(o, task)}:{o.version(getattr(o, task))}"


def bulk_form(o: Objs, role: str) -> dict[str, Any]:
    return {"action": "assign", "task": f"{o.bulk}:{o.version(o.bulk)}", "bulk-leads": [o.unit["雨湖区人民政府"]],
            "bulk-deadline_kind": "date", "bulk-deadline": LATER.isoformat(), "bulk-deadline_text": ""}


def draw_form(o: Objs, role: str) -> dict[str, Any]:
    return {"size": 1, "channel_id": 0, "round_id": 0, "region_id": o.yuhu(), "unit_id": 0, "seed": "矩阵",
            "note": "回头看抽查"}


def record_form(o: Objs, role: str) -> dict[str, Any]:
    p = f"i{o.item}"
    return {f"{p}-result": "passed", f"{p}-note": "", f"{p}-deadline_kind": "date"}


def rules_form(o: Objs, role: str) -> dict[str, Any]:
    """Every rung as the page shows it (预警 has no mode to choose), 函告's threshold one day later."""
    with o.engine.connect() as conn:
        rules = conn.execute(select(EscalationRule.level, EscalationRule.threshold_workdays, EscalationRule.mode)
                             .where(EscalationRule.mode != "manual")).all()
    form = {}
    for level, threshold, mode in rules:
        form[f"r{level}-threshold"] = (threshold or 0) + (1 if level == 2 else 0)
        if level > 1:
            form[f"r{level}-mode"] = mode
    return form


def ledger_query(fmt: str) -> Callable[[Objs], str]:
    return lambda o: f"?region={o.yuhu()}&format={fmt}&month={TODAY:%Y-%m}"


# --- guards and checks after a request ---------------------------------------------------------------------------


def _user_id(o: Objs, role: str) -> int:
    if role == "anon":
        return 0
    with o.engine.connect() as conn:
        return conn.scalar(select(User.id).where(User.username == role))


def others_rows(model, *columns) -> Callable[[Objs, str], Any]:
    """The rows of ``model`` that belong to users other than the one asking."""
    def rows(o: Objs, role: str):
        with o.engine.connect() as conn:
            return conn.execute(select(*columns).where(model.user_id != _user_id(o, role))
                                .order_by(*columns)).all()
    return rows


def digest_of(o: Objs, *columns) -> str:
    with o.engine.connect() as conn:
        return repr(conn.execute(select(*columns).order_by(columns[0])).all())


def others_locale(o: Objs, role: str):
    with o.engine.connect() as conn:
        return conn.execute(select(User.id, User.locale).where(User.username != role).order_by(User.id)).all()


def still_themselves(client, role: str, o: Objs) -> str | None:
    """After trying to switch to sup_xt's membership, a user still acts as their own."""
    status = client.get(f"/tasks/{o.T}").status_code
    expected = 302 if role == "anon" else 200 if role in SCOPE_T else 404
    return None if status == expected else f"after the switch the task page answers {status}, not {expected}"


def logged_out(client, role: str, o: Objs) -> str | None:
    response = client.get("/todo")
    if response.status_code == 302 and "/login" in response.headers.get("Location", ""):
        return None
    return f"still logged in after logging out (/todo answered {response.status_code})"


# --- the matrix -------------------------------------------------------------------------------------------------


def _matrix() -> dict[str, list[Case]]:
    yuhu = lambda o: f"?region={o.yuhu()}"  # noqa: E731
    task_json = lambda o: {"sup_xt": (TITLE,), "unit_sthj": (TITLE,)}  # noqa: E731
    api_methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    matrix: dict[str, list[Case]] = {
        # --- public ---
        "static": [get(lambda o: "/static/app.css", ALL)],
        "health.healthz": [get(lambda o: "/healthz", ALL)],
        "auth.login": [get(lambda o: "/login", ALL),
                       post(lambda o: "/login", ALL, lambda o, r: {"username": "unit_xx" if r == "anon" else r,
                                                                   "password": PASSWORD}, fresh=True)],
        "auth.logout": [post(lambda o: "/logout", ALL, fresh=True, then=logged_out)],
        "locale.switch": [post(lambda o: "/locale", ALL, lambda o, r: {"locale": "zh_Hans_CN", "next": "/todo"},
                               guard=others_locale)],
        "api.openapi": [get(lambda o: "/api/v1/openapi.json", ALL)],
        "api.unknown_root": [Case(m, lambda o: "/api/v1/", ALL, ok=(404,)) for m in api_methods],
        "api.unknown": [Case(m, lambda o: "/api/v1/nothing-here", ALL, ok=(404,)) for m in api_methods],
        # --- everyone logged in, their own things ---
        "tasks.index": [get(lambda o: "/", LOGGED_IN, ok=(302,))],
        "tasks.todo": [get(lambda o: "/todo", LOGGED_IN, shows=lambda o: {"unit_yh": (TITLE,)})],
        "tasks.task_list": [get(lambda o: "/tasks?sort=deadline", LOGGED_IN,
                                shows=lambda o: {"unit_yh": (TITLE,), "viewer_xt": (TITLE,), "sup_xt": (FILTER,)})],
        "lists.export_csv": [get(lambda o: "/tasks/export.csv?sort=deadline", LOGGED_IN,
                                 shows=lambda o: {"unit_sthj": (TITLE,), "sup_xt": (TITLE,)})],
        "messages.index": [get(lambda o: "/messages", LOGGED_IN, shows=lambda o: {"unit_yh": (TITLE,)})],
        "messages.mark_read": [post(lambda o: "/messages/read", LOGGED_IN, control="sup_xt",
                                    guard=others_rows(Notification, Notification.id, Notification.read_at))],
        "lists.filters": [get(lambda o: "/filters", LOGGED_IN, shows=lambda o: {"sup_xt": (FILTER,)})],
        "lists.save_filter": [post(lambda o: "/filters", LOGGED_IN, lambda o, r: {"name": "本周逾期",
                                                                                 "query": "schedule=overdue"},
                                   control="sup_xt", guard=others_rows(SavedFilter, SavedFilter.id,
                                                                       SavedFilter.name))],
        "lists.rename_filter": [post(lambda o: f"/filters/{o.filters['rename']}/rename", {"sup_xt"},
                                     lambda o, r: {"name": "雨湖区逾期任务"}, control="sup_xt",
                                     out=LOGGED_IN - {"sup_xt"})],
        "lists.delete_filter": [post(lambda o: f"/filters/{o.filters['delete']}/delete", {"sup_xt"},
                                     lambda o, r: {"next": "filters"}, control="sup_xt", out=LOGGED_IN - {"sup_xt"})],
        "profile.index": [get(lambda o: "/profile", LOGGED_IN, shows=lambda o: {"sup_xt": (TOKEN,)})],
        "profile.create_token": [
            post(lambda o: "/profile/tokens", LOGGED_IN, lambda o, r: {"name": "省级平台对接",
                                                                       "membership_id": o.m.get(r, 0)},
                 ok=(200,), control="sup_xt", guard=others_rows(ApiToken, ApiToken.id, ApiToken.revoked_at),
                 label="own membership"),
            post(lambda o: "/profile/tokens", {"sup_xt"}, lambda o, r: {"name": "越权令牌",
                                                                        "membership_id": o.m["sup_xt"]},
                 ok=(200,), control="sup_xt", refuse=only(*(LOGGED_IN - {"sup_xt"}), status=400),
                 label="another user's membership")],
        "profile.change_password": [
            get(lambda o: "/profile/password", LOGGED_IN),
            post(lambda o: "/profile/password", LOGGED_IN, lambda o, r: {
                "current": "not-the-password-1", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, ok=(400,),
                guard=lambda o, r: digest_of(o, User.id, User.password_hash, User.session_generation),
                label="wrong current password")],
        "profile.revoke_token": [post(lambda o: f"/profile/tokens/{o.tokens['revoke']}/revoke", {"sup_xt"},
                                      control="sup_xt", out=LOGGED_IN - {"sup_xt"})],
        "auth.switch_membership": [post(lambda o: "/membership", {"sup_xt"},
                                        lambda o, r: {"membership_id": o.m["sup_xt"]},
                                        refuse=only(*(LOGGED_IN - {"sup_xt"}), status=302), then=still_themselves)],
        "lists.unit_search": [
            get(lambda o: "/units/search?q=" + urllib.parse.quote("雨湖"), LOGGED_IN,
                hidden=lambda o: {"雨湖区人民政府": SEES_TASKS}, shows=lambda o: {"sup_xt": ("雨湖区人民政府",)}),
            get(lambda o: "/units/search?anywhere=1&q=" + urllib.parse.quote("雨湖"), LOGGED_IN,
                hidden=lambda o: {"雨湖区人民政府": SEES_TASKS | SUPERVISORS},
                shows=lambda o: {"sup_zz": ("雨湖区人民政府",)}, label="anywhere")],
        "jobs.index": [get(lambda o: "/jobs", LOGGED_IN, hidden=lambda o: {f'"/jobs/{o.job}"': {"sup_xt"}},
                           shows=lambda o: {"sup_xt": (f'"/jobs/{o.job}"',)})],
        "jobs.detail": [get(lambda o: f"/jobs/{o.job}", {"sup_xt"}, out=LOGGED_IN - {"sup_xt"})],
        "jobs.status": [get(lambda o: f"/jobs/{o.job}/status", {"sup_xt"}, out=LOGGED_IN - {"sup_xt"})],
        "jobs.download": [get(lambda o: f"/jobs/{o.job}/download", {"sup_xt"}, out=LOGGED_IN - {"sup_xt"},
                              shows=lambda o: {"sup_xt": (TITLE,)})],
        # --- tasks ---
        "tasks.detail": [get(lambda o: f"/tasks/{o.T}", SCOPE_T, out=OUT_T,
                             shows=lambda o: {**task_json(o), "viewer_xt": (TITLE,)})],
        "tasks.act": act_cases(),
        "tasks.edit": [get(lambda o: f"/tasks/{o.T}/edit", {"sup_xt"}, out=OUT_T),
                       post(lambda o: f"/tasks/{o.T}/edit", {"sup_xt"}, edit_form, control="sup_xt", out=OUT_T)],
        "tasks.link": [post(lambda o: f"/tasks/{o.T}/link", {"sup_xt"},
                            lambda o, r: {"other_id": o.link_other, "note": "同一填埋场"}, control="sup_xt",
                            refuse=only(*(SCOPE_T - {"sup_xt"}), status=302), out=OUT_T)],
        "tasks.split": [get(lambda o: f"/tasks/{o.split_view}/split", {"sup_xt"}, out=LOGGED_IN - XT),
                        post(lambda o: f"/tasks/{o.split}/split?rows=2", {"sup_xt"}, split_form, control="sup_xt",
                             out=LOGGED_IN - XT)],
        "tasks.register": [get(lambda o: "/tasks/new", SUPERVISORS),
                           post(lambda o: "/tasks/new", {"sup_xt"}, register_form, control="sup_xt",
                                refuse=only("sup_zz", status=400))],
        "tasks.download": [get(lambda o: f"/evidence/{o.evidence}", SCOPE_T, out=OUT_T)],
        "closure.similar": [get(lambda o: f"/tasks/{o.T}/similar", {"sup_xt"}, out=OUT_T),
                            post(lambda o: f"/tasks/{o.T}/similar?rows=1", {"sup_xt"}, similar_form,
                                 control="sup_xt", out=OUT_T)],
        "lists.bulk_action": [get(bulk_url("bulk_view"), {"sup_xt"}, refuse=only("sup_zz", status=200)),
                              post(lambda o: "/tasks/bulk", {"sup_xt"}, bulk_form, control="sup_xt",
                                   refuse=only("sup_zz", status=400))],
        # --- region-wide pages ---
        "dashboard.index": [get(lambda o: "/dashboard", SUBTREE, refuse=only(*UNITS, status=302)),
                            get(lambda o: f"/dashboard{yuhu(o)}", XT, refuse=only(*UNITS, status=302),
                                out=OUT_XT, label="雨湖区")],
        "reports.index": [get(lambda o: f"/reports{yuhu(o)}", XT, out=OUT_XT)],
        "reports.tasks": [get(lambda o: f"/reports/tasks{yuhu(o)}&cell=total&group="
                                        + urllib.parse.quote(json.dumps(["合计"])), XT, out=OUT_XT,
                              shows=lambda o: {"sup_xt": (TITLE,)})],
        "reports.ledger_download": [
            get(lambda o: "/reports/ledger" + ledger_query("xlsx")(o), XT, out=OUT_XT,
                shows=lambda o: {"viewer_xt": (TITLE,)}),
            post(lambda o: "/reports/ledger", XT, lambda o, r: {"region": o.yuhu(), "format": "csv"}, ok=(200,),
                 out=OUT_XT, shows=lambda o: {"admin_xt": (TITLE,)})],
        "archives.index": [get(lambda o: "/archives", SUBTREE,
                               hidden=lambda o: {f'/archives/{o.archive}"': XT | {"admin_hn", "sup_hn"}},
                               shows=lambda o: {"sup_xt": (f'/archives/{o.archive}"',)})],
        "archives.download": [get(lambda o: f"/archives/{o.archive}", XT, out=OUT_XT,
                                  shows=lambda o: {"viewer_xt": (TITLE,)})],
        "closure.samples": [get(lambda o: "/recheck", SUBTREE,
                                hidden=lambda o: {f'/recheck/{o.sample}"': XT | {"admin_hn", "sup_hn", "sup_yh"}},
                                shows=lambda o: {"sup_xt": (f'/recheck/{o.sample}"',)}),
                            post(lambda o: "/recheck", {"sup_xt"}, draw_form, control="sup_xt",
                                 refuse=only("sup_zz", status=400))],
        "closure.sample": [get(lambda o: f"/recheck/{o.sample}", XT, out=OUT_XT, shows=lambda o: {"sup_xt": (TITLE,)})],
        "closure.record": [post(lambda o: f"/recheck/items/{o.item}", {"sup_xt"}, record_form, control="sup_xt",
                                out=frozenset({"sup_zz"}))],
        "closure.reopen_rates": [get(lambda o: "/recheck/reopen-rates", SUBTREE,
                                     hidden=lambda o: {"雨湖区人民政府": EVERYONE - OUT_XT},
                                     shows=lambda o: {"sup_xt": ("雨湖区人民政府",)})],
        "messages.restrictions": [
            get(lambda o: "/restrictions", LOGGED_IN - UNITS,
                shows=lambda o: {"sup_xt": (RESTRICTED_XT,), "sup_zz": (RESTRICTED_ZZ,)}),
            post(lambda o: "/restrictions", {"sup_hn"}, lambda o, r: {
                "region_id": o.region["湘乡市"], "doc_no": "湘政限批〔2026〕12号", "note": "涟水河湘乡段水质反弹"},
                control="sup_hn")],
        "intake.upload": [get(lambda o: "/import", SUPERVISORS | ADMINS),
                          post(lambda o: "/import", SUPERVISORS | ADMINS,
                               lambda o, r: {"file": (io.BytesIO(workbook()), "雨湖区整改台账.xlsx"), "dry_run": "y"},
                               control="sup_xt")],
        # --- administration ---
        "admin.users": [get(lambda o: "/admin/users", ADMINS, shows=lambda o: {"admin_xt": (USER,)}),
                        post(lambda o: "/admin/users", {"admin_xt"}, lambda o, r: {
                            "username": "xt_created", "display_name": "雨湖区新用户", "password": NEW_PASSWORD,
                            "unit_id": o.unit["雨湖区人民政府"], "role": "unit"}, control="admin_xt",
                            refuse=only("admin_zz", status=400))],
        "admin.user": [get(lambda o: f"/admin/users/{o.users['member']}", {"admin_xt"}, out=frozenset({"admin_zz"})),
                       post(lambda o: f"/admin/users/{o.users['member']}", {"admin_xt"}, lambda o, r: {
                           "m-unit_id": o.unit["湘潭市生态环境局"], "m-role": "viewer"}, control="admin_xt",
                           out=frozenset({"admin_zz"}))],
        "admin.set_role": [post(lambda o: f"/admin/memberships/{o.role_membership}/role", {"admin_xt"},
                                lambda o, r: {"r-role": "viewer"}, control="admin_xt", out=frozenset({"admin_zz"}))],
        "security_log.index": [get(lambda o: "/admin/security-log", ADMINS,
                                   hidden=lambda o: {"unit_yh": EVERYONE - {"admin_zz"}},
                                   shows=lambda o: {"admin_xt": ("unit_yh",)})],
        "admin.reset_password": [post(lambda o: f"/admin/users/{o.users['password']}/password", {"admin_xt"},
                                      lambda o, r: {"p-password": NEW_PASSWORD}, control="admin_xt",
                                      out=frozenset({"admin_zz"}))],
        "admin.set_active": [post(lambda o: f"/admin/users/{o.users['active']}/active/0", {"admin_xt"},
                                  control="admin_xt", out=frozenset({"admin_zz"}))],
        "admin.revoke": [post(lambda o: f"/admin/memberships/{o.revoked_membership}/end", {"admin_xt"},
                              control="admin_xt", out=frozenset({"admin_zz"}))],
        "admin.units": [get(lambda o: "/admin/units", ADMINS,
                            hidden=lambda o: {"雨湖区人民政府": EVERYONE - {"admin_zz"}}),
                        post(lambda o: "/admin/units", {"admin_xt"}, lambda o, r: {
                            "name": "雨湖区水利局", "region_id": o.yuhu(), "kind": "department", "aliases": ""},
                            control="admin_xt", refuse=only("admin_zz", status=400))],
        "admin.regions": [get(lambda o: "/admin/regions", ADMINS, hidden=lambda o: {"雨湖区": EVERYONE - {"admin_zz"}}),
                          post(lambda o: "/admin/regions", {"admin_xt"}, lambda o, r: {
                              "name": "姜畲镇", "parent_id": o.yuhu()}, control="admin_xt",
                              refuse=only("admin_zz", status=400))],
        "admin.calendar": [get(lambda o: "/admin/calendar?year=2026", ADMINS),
                           post(lambda o: "/admin/calendar", {"admin_hn"}, lambda o, r: {
                               "d-day": "2031-05-01", "d-kind": "holiday", "d-name": "劳动节"}, control="admin_hn")],
        "admin.calendar_import": [post(lambda o: "/admin/calendar/import", {"admin_hn"}, lambda o, r: {
            "u-file": (io.BytesIO("2033-01-01,0,元旦\n2033-01-02,0,元旦\n".encode()), "2033.csv"),
            "u-source": "国办发明电〔2032〕7号"}, control="admin_hn")],
        "admin.calendar_confirm": [post(lambda o: "/admin/calendar/2032/confirm/1", {"admin_hn"}, control="admin_hn")],
        "admin.time_settings": [get(lambda o: "/admin/settings", ADMINS),
                                post(lambda o: "/admin/settings", {"admin_hn"}, lambda o, r: {
                                    "every": "month", "due_day": 20, "tolerance": 5, "immediate_workdays": 5},
                                    control="admin_hn")],
        "admin.escalation_rules": [get(lambda o: "/admin/escalation", ADMINS),
                                   post(lambda o: "/admin/escalation", {"admin_hn"}, rules_form, control="admin_hn")],
        "admin.mail": [get(lambda o: "/admin/mail", {"admin_hn"})],
        "admin.mail_retry": [post(lambda o: f"/admin/mail/{o.mail}/retry", {"admin_hn"}, control="admin_hn")],
        "closure.checklists": [get(lambda o: "/admin/closure", ADMINS)],
        "closure.add_criterion": [post(lambda o: f"/admin/closure/{o.channel}", {"admin_hn"}, lambda o, r: {
            "new-text": "验收意见书已出具", "new-required_kinds": ["document"]}, control="admin_hn")],
        "closure.edit_criterion": [post(lambda o: f"/admin/closure/criteria/{o.criteria[0]}", {"admin_hn"},
                                        lambda o, r: {f"c{o.criteria[0]}-text": "整改前、整改后现场照片齐全且可比对"},
                                        control="admin_hn")],
        "closure.set_active": [post(lambda o: f"/admin/closure/criteria/{o.criteria[1]}/active/0", {"admin_hn"},
                                    control="admin_hn")],
        "closure.move": [post(lambda o: f"/admin/closure/criteria/{o.criteria[0]}/move/down", {"admin_hn"},
                              control="admin_hn")],
        # --- the API ---
        "api.me": [get(lambda o: "/api/v1/me", LOGGED_IN)],
        "api.list_channels": [get(lambda o: "/api/v1/channels", LOGGED_IN)],
        "api.list_rounds": [get(lambda o: "/api/v1/rounds", LOGGED_IN)],
        "api.list_units": [get(lambda o: "/api/v1/units", LOGGED_IN)],
        "api.list_regions": [get(lambda o: "/api/v1/regions", LOGGED_IN,
                                 hidden=lambda o: {'"雨湖区"': SEES_TASKS},
                                 shows=lambda o: {"unit_yh": ('"雨湖区"',)})],
        "api.list_tasks": [get(lambda o: "/api/v1/tasks", LOGGED_IN, shows=lambda o: {"unit_yh": (TITLE,)})],
        # 函告 … 督办 are decided by the task's own region (雨湖区): its supervisor sees the proposal.
        "api.list_proposals": [get(lambda o: "/api/v1/proposals", LOGGED_IN | {"sup_yh"},
                                   shows=lambda o: {"sup_yh": (TITLE,)})],
        "api.get_task": [get(lambda o: f"/api/v1/tasks/{o.T}", SCOPE_T, out=OUT_T, shows=task_json)],
        "api.edit_task": [post(lambda o: f"/api/v1/tasks/{o.T}", {"sup_xt"}, lambda o, r: {
            "version": o.version(o.T), "remarks": f"由{r}经接口修改"}, method="PATCH", ok=(200,), control="sup_xt",
            refuse=only(*(SCOPE_T - {"sup_xt"}), status=403), out=OUT_T)],
        "api.list_reports": [get(lambda o: f"/api/v1/tasks/{o.T}/reports", SCOPE_T, out=OUT_T)],
        "api.task_escalations": [get(lambda o: f"/api/v1/tasks/{o.T}/escalations", SCOPE_T, out=OUT_T)],
        "api.download_evidence": [get(lambda o: f"/api/v1/evidence/{o.evidence}/file", SCOPE_T, out=OUT_T)],
        "api.register_task": [post(lambda o: "/api/v1/tasks", {"sup_xt"}, lambda o, r: {
            "title": "涓水直排口污水溢流", "channel_id": o.channel, "round_id": o.round,
            "region_id": o.yuhu()}, ok=(201,), control="sup_xt", refuse=only("sup_zz", status=422))],
        "api.schedule_report": [get(lambda o: f"/api/v1/report{yuhu(o)}", XT, out=OUT_XT)],
        "api.export_ledger": [get(lambda o, f=fmt: "/api/v1/ledger" + ledger_query(f)(o), XT, out=OUT_XT,
                                  shows=lambda o: {"sup_xt": (TITLE,)}, label=fmt) for fmt in ("xlsx", "csv")],
        "api.list_archives": [get(lambda o: "/api/v1/archives", SUBTREE,
                                  hidden=lambda o: {f"/archives/{o.archive}/file": XT | {"admin_hn", "sup_hn"}},
                                  shows=lambda o: {"sup_xt": (f"/archives/{o.archive}/file",)})],
        "api.download_archive": [get(lambda o: f"/api/v1/archives/{o.archive}/file", XT, out=OUT_XT)],
        **api_action_cases(),
    }
    return matrix


MATRIX = _matrix()
CASES = {f"{endpoint} {case.method}" + (f" {case.label}" if case.label else ""): (endpoint, case)
         for endpoint, cases in MATRIX.items() for case in cases}
assert len(CASES) == sum(len(cases) for cases in MATRIX.values()), "two cases of one endpoint share a label"


def workbook() -> bytes:
    """A small real .xlsx (the import job, not the upload, reads it)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("整改台账")
    for col, name in enumerate(["问题编号", "问题名称", "问题来源", "批次", "所在地区", "牵头单位", "整改时限"]):
        sheet.write(0, col, name)
    sheet.write_row(1, 0, ["YH-2026-01", "涓水直排口污水溢流", "省级生态环境保护督察", "第一轮", "雨湖区",
                           "雨湖区人民政府", "2027年6月底前"])
    book.close()
    return buffer.getvalue()


# --- building the module's world, once ---------------------------------------------------------------------------


def _task(w, tag: str, state: str, **kw) -> Task:
    """A task of 雨湖区 (lead 雨湖区人民政府, participant 湘潭市生态环境局) brought to ``state``."""
    title = f"{TITLE}渗滤液处理不到位（{tag}）"
    if state == "pending":
        return w.register(title=title)
    channel = w.channels[CENTRAL] if state == "verifying_central" else None
    task = w.assigned(title=title, participants=("湘潭市生态环境局",), deadline=LATER, channel=channel, **kw)
    lead = w.m["unit_yh"]
    if state in ("signed", "planned"):
        w.advance(task, "signed")
    if state == "planned":
        perform(w.s, task, "submit_plan", lead, NOW, target="渗滤液达标排放", measures="建设处理站")
    if state in ("rectifying", "extension"):
        w.advance(task, "rectifying")
    if state == "extension":
        perform(w.s, task, "request_extension", lead, NOW, new_deadline=LATER + dt.timedelta(days=20),
                reason="雨季施工受阻")
    if state in ("verifying", "verifying_central", "closed"):
        w.advance(task, "closed" if state == "closed" else "verifying", sup="sup_xt")
    assert task.state == {"planned": "signed", "extension": "rectifying", "verifying_central": "verifying"}.get(
        state, state), (tag, task.state)
    return task


def _complainant_task(app, w) -> tuple[Task, int]:
    """T: a 交办信访件 registered and assigned by 湘潭市, 整改中, with a progress report and its photo on disk,
    and a deadline already passed (so the scan proposes a measure and mails about it)."""
    task = w.register(title=f"{TITLE}渗滤液处理不到位（信访件）", kind="交办信访件", complainant=COMPLAINANT,
                      description="群众反映填埋场渗滤液外溢。")
    perform(w.s, task, "assign", w.m["sup_xt"], NOW, leads=[w.units["雨湖区人民政府"].id],
            participants=[w.units["湘潭市生态环境局"].id], deadline=OVERDUE)
    w.advance(task, "rectifying")
    photo = storage.store(app.config["UPLOAD_FOLDER"], io.BytesIO(PNG), kind="after",
                          filename="渗滤液处理站现场照片.png", content_type="image/png")
    perform(w.s, task, "report", w.m["unit_yh"], NOW, text="渗滤液处理站已开工", percent=30, files=[photo])
    w.s.flush()
    return task, task.evidence[0].id


def _people(s, w, o: Objs) -> None:
    """admin_xt (湘潭市's admin), the accounts the admin cases change, and API tokens."""
    xt_office, yh_gov = w.units["湘潭市突出环境问题整改办公室"], w.units["雨湖区人民政府"]
    w.m["admin_xt"] = create_user(s, None, NOW, NewUser("admin_xt", "admin_xt", PASSWORD, "admin_xt@example.cn"),
                                  xt_office, "admin", hash_method="pbkdf2:sha256:1000").memberships[0]
    for key in ("member", "password", "active", "revoke", "role"):
        user = create_user(s, None, NOW, NewUser(f"{USER}{key}", f"{USER}{key}", PASSWORD), yh_gov, "unit",
                           hash_method="pbkdf2:sha256:1000")
        o.users[key] = user.id
    o.revoked_membership = user_memberships(s, o.users["revoke"])
    o.role_membership = user_memberships(s, o.users["role"])
    o.m = {name: m.id for name, m in w.m.items()}


def user_memberships(s, user_id: int) -> int:
    return s.get(User, user_id).memberships[0].id


def _tokens(s, w, o: Objs, now) -> dict[str, str]:
    secrets = {}
    for name in (*ROLES[1:], *EXTRA):
        m = w.m[name]
        secrets[name] = tokens.create_token(s, m, now, m.user, m, f"{name}的矩阵测试令牌").secret
    sup = w.m["sup_xt"]
    for key in ("revoke", "keep"):
        tokens.create_token(s, sup, now, sup.user, sup, f"{TOKEN}{key}")
        o.tokens[key] = s.scalar(select(ApiToken.id).where(ApiToken.name == f"{TOKEN}{key}"))
    return secrets


def _workbench(app, s, w, o: Objs, now) -> None:
    """Scan, archive, a finished job, filters, 销号标准, a failed mail, a 回头看 sample, 区域限批."""
    sup_xt = w.m["sup_xt"]
    escalation.scan(s, TODAY, now)
    archive.archive_month(s, archive.previous_month(TODAY), now, app.config["LEDGER_FOLDER"],
                          settings.time_settings(s), base_url="http://localhost")
    o.archive = next(a.id for a in s.scalars(select(archive.LedgerArchive)) if a.region.name == "湘潭市")
    job = jobs.submit(s, sup_xt, now, jobs.LEDGER_EXPORT, {"region_id": o.yuhu(), "month": f"{TODAY:%Y-%m}",
                                                           "format": "xlsx"})
    o.job = job.id
    for key in ("rename", "delete", "keep"):
        o.filters[key] = saved_filters.save_filter(s, sup_xt, now, f"{FILTER}{key}", "state=rectifying").id
    channel = w.channels["省级河湖长巡查"]
    o.channel = channel.id
    o.criteria = [closure.add_criterion(s, None, now, channel, text, kinds).id
                  for text, kinds in (("整改前、整改后现场照片齐全", ["before", "after"]), ("整改情况已公示", []))]
    sample = recheck.draw_sample(s, sup_xt, now, 1, recheck.SampleCriteria(region_id=o.yuhu()), seed="matrix")
    o.sample, o.item = sample.id, sample.items[0].id
    escalation.restrict_region(s, w.m["sup_hn"], now, w.regions["湘潭市"], RESTRICTED_XT, "湘江湘潭段黑臭水体反弹")
    escalation.restrict_region(s, w.m["sup_hn"], now, w.regions["攸县"], RESTRICTED_ZZ, "洣水攸县段水质反弹")
    s.flush()
    o.mail = s.scalar(select(OutboxMail.id).order_by(OutboxMail.id).limit(1))
    s.execute(update(OutboxMail).where(OutboxMail.id == o.mail).values(status="failed", attempts=8,
                                                                        last_error="550 mailbox unavailable"))


def build(app, s) -> tuple[Objs, dict[str, str]]:
    w = build_world(s)
    now = utcnow()
    o = Objs(engine=app.extensions["tracker.engine"], unit={n: u.id for n, u in w.units.items()},
             region={n: r.id for n, r in w.regions.items()}, m={}, round=w.rounds["第一轮"].id)
    _people(s, w, o)
    task, o.evidence = _complainant_task(app, w)
    o.T = task.id
    o.link_other = _task(w, "关联", "assigned").id
    o.split_view, o.split = (_task(w, f"分解{i}", "pending").id for i in (1, 2))
    o.bulk_view, o.bulk = (_task(w, f"批量{i}", "pending").id for i in (1, 2))
    for action, state in STATE_FOR.items():
        if action in ACTION_FORMS:
            o.web[action] = _task(w, f"网页·{action}", state).id
        o.api[action] = _task(w, f"接口·{action}", state).id
    for i in (1, 2):
        _task(w, f"已销号{i}", "closed")
    secrets = _tokens(s, w, o, now)
    _workbench(app, s, w, o, now)
    s.commit()
    jobs.run_pending(app)
    return o, secrets


# --- asking --------------------------------------------------------------------------------------------------


@dataclass
class Matrix:
    app: Any
    o: Objs
    secrets: dict[str, str]
    clients: dict[str, Any] = field(default_factory=dict)
    tokens_csrf: dict[str, str] = field(default_factory=dict)

    def client(self, role: str):
        if role not in self.clients:
            self.clients[role], self.tokens_csrf[role] = self.new_client(role)
        return self.clients[role], self.tokens_csrf[role]

    def new_client(self, role: str):
        client = self.app.test_client()
        if role != "anon":
            response = login(client, role)
            assert response.status_code == 302, f"{role} could not log in"
        page = client.get("/login" if role == "anon" else "/profile").get_data(as_text=True)
        return client, csrf_token(page)


@pytest.fixture(scope="module")
def mx(database_url, reference_rows, tmp_path_factory):
    app = create_app(TestConfig(database_url, str(tmp_path_factory.mktemp("authz") / "instance")))
    engine = app.extensions["tracker.engine"]
    s = app.extensions["tracker.sessionmaker"]()
    try:
        o, secrets = build(app, s)
        s.close()
        yield Matrix(app, o, secrets)
    finally:
        s.close()
        _reset(engine, reference_rows)
        engine.dispose()


def _web_form(data: dict[str, Any], token: str) -> dict[str, Any]:
    """Form fields as a browser sends them, with the CSRF token under every prefix used."""
    form: dict[str, Any] = {"csrf_token": token}
    for name, value in data.items():
        if "-" in name:
            form[f"{name.split('-')[0]}-csrf_token"] = token
        form[name] = value if isinstance(value, tuple) else [str(v) for v in value] if isinstance(value, list) \
            else str(value)
    return form


def ask(mx: Matrix, case: Case, role: str, url: str):
    """One request of ``case`` as ``role``: the client and form a browser or an API client would send."""
    client, token = mx.new_client(role) if case.fresh else mx.client(role)
    data = case.data(mx.o, role) if case.data else None
    if not url.startswith("/api/"):
        if case.method == "GET":
            return client.get(url), client
        return client.open(url, method=case.method, data=_web_form(data or {}, token)), client
    headers = {"Authorization": f"Bearer {mx.secrets[role]}"} if role in mx.secrets else {}
    if data is None:
        return client.open(url, method=case.method, headers=headers), client
    if case.multipart:
        form = {k: v if isinstance(v, tuple) else [str(x) for x in v] if isinstance(v, list) else str(v)
                for k, v in data.items()}
        return client.open(url, method=case.method, data=form, headers=headers,
                           content_type="multipart/form-data"), client
    return client.open(url, method=case.method, json=data, headers=headers), client


def body_text(response) -> str:
    """The answer as text; an .xlsx (a zip) as the text of every part of it."""
    raw = response.get_data()
    response.close()
    if response.is_json:  # as a reader sees it, whether or not the encoder escaped non-ASCII text
        return json.dumps(json.loads(raw), ensure_ascii=False)
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as book:
            return "\n".join(book.read(name).decode("utf-8", "replace") for name in book.namelist())
    return raw.decode("utf-8", "replace")


# Written by any request, or on purpose for refused ones (throttling, the security log): not "data".
VOLATILE_TABLES = {"login_attempt", "security_log"}


def digest(mx: Matrix) -> dict[str, str]:
    """A fingerprint of every table (volatile ones aside) and of the folders files are written to. Read
    through the driver's own cursor: thousands of rows, hundreds of times, must stay cheap."""
    found = {}
    raw = mx.o.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, sql in _digest_queries(mx.o.engine):
            cursor.execute(sql)
            found[table] = hashlib.sha256(pickle.dumps(cursor.fetchall())).hexdigest()
        raw.rollback()
    finally:
        raw.close()
    for key in ("UPLOAD_FOLDER", "JOBS_FOLDER", "LEDGER_FOLDER"):
        folder = Path(mx.app.config[key])
        found[key] = repr(sorted(str(p) for p in folder.rglob("*"))) if folder.exists() else ""
    return found


@functools.cache
def _digest_queries(engine: Engine) -> list[tuple[str, str]]:
    queries = []
    for table in Base.metadata.sorted_tables:
        if table.name in VOLATILE_TABLES:
            continue
        columns = [c for c in table.c if not (c.name.startswith("last_") and c.name.endswith("_at"))]
        statement = select(*columns).order_by(*table.primary_key.columns)
        queries.append((table.name, str(statement.compile(dialect=engine.dialect))))
    return queries


def expected(case: Case, role: str, api: bool) -> tuple[str, tuple[int, ...]]:
    if role in case.allow:
        return "allowed", case.ok
    if role == "anon":
        return "anonymous", (401,) if api else (302,)
    if role in case.refuse:
        return "refused", case.refuse[role]
    if role in case.out:
        return "out of scope", (404,)
    return "denied", (403, 404)


def order(case: Case) -> list[str]:
    """Every role of the matrix and any extra one the case allows; the control role last."""
    extra = [r for r in EXTRA if r in case.allow]
    return [r for r in (*ROLES, *extra) if r != case.control] + ([case.control] if case.control else [])


def leaks(case: Case, role: str, text: str, response, o: Objs) -> list[str]:
    """Strings in the answer that ``role`` may not be shown."""
    rules = dict(SENTINELS)
    if case.hidden:
        rules.update(case.hidden(o))
    found = [s for s, allowed in rules.items() if role not in allowed and s in text]
    download = "attachment" in response.headers.get("Content-Disposition", "")
    if role != "sup_xt" or download or response.mimetype in ("application/json", "application/problem+json"):
        # 信访人信息: the task page and record of the assigning level only; never a download or the API
        found += [s for s in COMPLAINANT_MARKS if s in text]
    return found


def check(mx: Matrix, endpoint: str, case: Case, role: str, url: str,
          last: dict[str, str] | None) -> tuple[list[str], dict[str, str] | None]:
    """Ask once; what is wrong (each naming the route, the role and what happened), and the fingerprint of
    the data afterwards when it was taken (the next role's "before")."""
    api = url.startswith("/api/")
    kind, statuses = expected(case, role, api)
    changes = case.method != "GET" and (kind != "allowed" or role == case.control)
    before = (last or digest(mx)) if changes else None
    guarded = case.guard(mx.o, role) if case.guard else None
    response, client = ask(mx, case, role, url)
    text = body_text(response)
    where = f"{endpoint} {case.method} {url} as {role} ({ROLE_NAMES[role]}, {kind})"
    problems = []
    if response.status_code not in statuses:
        problems.append(f"{where}: answered {response.status_code}, expected {statuses}: {text[:300]!r}")
    if kind == "anonymous" and not api and "/login" not in response.headers.get("Location", ""):
        problems.append(f"{where}: not sent to the login page")
    if api and kind != "allowed" and response.mimetype != "application/problem+json":
        problems.append(f"{where}: a refusal that is not problem+json ({response.mimetype})")
    problems += [f"{where}: the answer shows {s!r}" for s in leaks(case, role, text, response, mx.o)]
    shown = case.shows(mx.o).get(role, ()) if case.shows else ()
    problems += [f"{where}: the answer does not show {s!r} (positive control)" for s in shown if s not in text]
    after = None
    if before is not None:
        after = digest(mx)
        changed = sorted(k for k in before if before[k] != after.get(k))
        if kind != "allowed" and changed:
            problems.append(f"{where}: a refused request changed {changed}")
        if role == case.control and not changed:
            problems.append(f"{where}: the allowed request changed nothing (positive control)")
    if case.guard and case.guard(mx.o, role) != guarded:
        problems.append(f"{where}: changed what belongs to other users")
    if case.then and (failure := case.then(client, role, mx.o)):
        problems.append(f"{where}: {failure}")
    return problems, after


# --- the tests ---------------------------------------------------------------------------------------------------


def test_every_route_and_method_has_a_matrix_entry(mx):
    """A route added to the app without a matrix entry fails here, by name (and a stale entry too)."""
    routes = {(rule.endpoint, method) for rule in mx.app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    covered = {(endpoint, case.method) for endpoint, case in CASES.values()}
    missing = sorted(routes - covered)
    assert not missing, ("routes without an entry in tests/test_authz_matrix.py MATRIX (say who may reach them): "
                         + ", ".join(f"{endpoint} {method}" for endpoint, method in missing))
    stale = sorted(covered - routes)
    assert not stale, "MATRIX entries for routes the app no longer has: " + ", ".join(map(" ".join, stale))


# POST routes whose allowed request changes no data of the application: the session only (login, logout, the
# membership one acts through, the language — others' rows are guarded), a download, or refused for everyone.
NO_CONTROL = {"auth.login", "auth.logout", "auth.switch_membership", "locale.switch", "reports.ledger_download",
              "profile.change_password", "api.unknown_root", "api.unknown"}


def test_every_case_has_a_positive_control():
    """Each case has a role it must let through; each data-changing one a role whose request must change
    the data; every role it names exists."""
    known = EVERYONE
    for name, (endpoint, case) in CASES.items():
        assert case.allow, f"{name}: nobody is allowed, so the case cannot fail"
        named = case.allow | set(case.refuse) | case.out | ({case.control} if case.control else set())
        assert named <= known, f"{name}: unknown roles {named - known}"
        assert case.control is None or case.control in case.allow, f"{name}: the control role is not allowed"
        if case.method != "GET" and case.control is None:
            assert endpoint in NO_CONTROL, f"{name}: a POST with no role whose request must change the data"


@pytest.mark.parametrize("name", list(CASES))
def test_route(mx, name):
    endpoint, case = CASES[name]
    url = case.url(mx.o)
    path, _sep, _query = url.partition("?")
    matched, _args = mx.app.url_map.bind("localhost").match(path, method=case.method)
    assert matched == endpoint, f"{name}: {url} is routed to {matched}, not {endpoint}"
    problems, last = [], None
    for role in order(case):
        found, last = check(mx, endpoint, case, role, url, last)
        problems += found
    assert not problems, "\n".join(problems)


def test_the_province_and_county_supervisors_and_the_province_admin_see_no_more_than_theirs(mx):
    """Every GET case once more as the roles in scope that are not the assigning level (省 and 雨湖区
    supervisors, the province admin): never a 500, never the complainant, nothing of another's."""
    problems = []
    for name, (_endpoint, case) in CASES.items():
        if case.method != "GET":
            continue
        url = case.url(mx.o)
        for role in EXTRA:
            response, _client = ask(mx, case, role, url)
            text = body_text(response)
            if response.status_code >= 500:
                problems.append(f"{name} {url} as {role}: answered {response.status_code}")
            problems += [f"{name} {url} as {role}: the answer shows {s!r}"
                         for s in leaks(case, role, text, response, mx.o)]
    assert not problems, "\n".join(problems)


def test_a_region_restriction_reaches_only_the_regions_it_concerns(mx):
    """Regression: /restrictions listed every 区域限批 of the province to everyone who may open it (株洲市's
    supervisor read the one against 湘潭市). Now: one's own region, the regions below it and those above it."""
    seen = {}
    for role in ("sup_yh", "sup_xt", "viewer_xt", "sup_zz", "admin_zz", "sup_hn"):
        client, _token = mx.client(role)
        response = client.get("/restrictions")
        assert response.status_code == 200, role
        text = response.get_data(as_text=True)
        seen[role] = {doc for doc in (RESTRICTED_XT, RESTRICTED_ZZ) if doc in text}
    assert seen["sup_yh"] == seen["sup_xt"] == seen["viewer_xt"] == {RESTRICTED_XT}  # 雨湖区 lies in 湘潭市
    assert seen["sup_zz"] == seen["admin_zz"] == {RESTRICTED_ZZ}  # 攸县 lies in 株洲市
    assert seen["sup_hn"] == {RESTRICTED_XT, RESTRICTED_ZZ}


def _marks(text: str) -> list[str]:
    return [mark for mark in COMPLAINANT_MARKS if mark in text]


def _file_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as book:
            return "\n".join(book.read(name).decode("utf-8", "replace") for name in book.namelist())
    return raw.decode("utf-8", "replace")


def _mail_text(path: Path) -> str:
    """A delivered mail as its reader gets it: headers, every part decoded, attached workbooks unzipped."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    texts = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if not payload:
            continue
        if payload[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(payload)) as book:
                texts += [book.read(name).decode("utf-8", "replace") for name in book.namelist()]
        else:
            texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(texts)


def test_the_complainant_is_in_no_export_file_mail_or_other_table(mx):
    """信访人信息 is shown to the supervisors of the assigning level on the task's page and record only
    (checked in the matrix, with the positive control there): the exports they download, every archived
    and exported file on disk, every mail as delivered and every other table of the database never hold it."""
    o, xt = mx.o, mx.o.region["湘潭市"]
    client, _token = mx.client("sup_xt")
    bearer = {"Authorization": f"Bearer {mx.secrets['sup_xt']}"}
    downloads = [f"/reports/ledger?region={xt}&format=xlsx", f"/reports/ledger?region={xt}&format=csv",
                 f"/api/v1/ledger?region={xt}&format=xlsx", f"/api/v1/ledger?region={xt}&format=csv",
                 "/tasks/export.csv?sort=deadline", "/tasks/export.csv?q=" + urllib.parse.quote("信访件"),
                 f"/jobs/{o.job}/download", f"/archives/{o.archive}", "/api/v1/tasks?limit=200"]
    for url in downloads:
        response = client.get(url, headers=bearer if url.startswith("/api/") else None)
        assert response.status_code == 200, url
        text = body_text(response)
        assert TITLE in text and "信访件" in text, f"{url}: the export does not hold the task (positive control)"
        assert not _marks(text), f"{url}: the export holds the complainant {_marks(text)}"
    files = [p for key in ("LEDGER_FOLDER", "JOBS_FOLDER") for p in Path(mx.app.config[key]).rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert not _marks(_file_text(path)), f"{path} holds the complainant"
    s = mx.app.extensions["tracker.sessionmaker"]()
    try:
        outbox.deliver_due(s, utcnow(), mx.app.config)
        s.commit()
    finally:
        s.close()
    mails = [_mail_text(p) for p in Path(mx.app.config["MAIL_FOLDER"]).rglob("*") if p.is_file()]
    assert any(TITLE in mail and "信访件" in mail for mail in mails), "no mail about the task (positive control)"
    leaked = [mail[:200] for mail in mails if _marks(mail)]
    assert not leaked, f"mails hold the complainant: {leaked}"
    assert not _tables_holding_the_complainant(o.engine)


def _tables_holding_the_complainant(engine: Engine) -> list[str]:
    """Every text column of every table but ``complainant`` itself (events, notifications, mails, jobs …)."""
    found = []
    with engine.connect() as conn:
        assert conn.scalar(select(Complainant.name)) == COMPLAINANT["name"]  # it is there to be found
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, String | Text | JSON)]
            if table.name == Complainant.__tablename__ or not columns:
                continue
            for row in conn.execute(select(*columns)):
                text = " ".join(json.dumps(v, ensure_ascii=False, default=str) for v in row)
                found += [f"{table.name}: {mark}" for mark in _marks(text)]
    return found
