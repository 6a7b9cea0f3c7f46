"""The JSON API: Bearer tokens only (throttled), problem+json errors, scope (404), the version check,
idempotency keys, 信访人信息, four-eyes, the list with its cursor, reports, ledgers, archives and
escalation records — all through HTTP, on the real app and database.

``Api`` and ``api_for`` are used by the other API test files too.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema_rs
import pytest
import requests
from schemathesis.specs.openapi.definitions import OPENAPI_31
from sqlalchemy import func, select

from tests.browser import LiveServer
from tests.conftest import NOW, login
from tracker import archive, escalation, reports, schedule, settings, tokens
from tracker.accounts import add_membership, set_user_active
from tracker.audit import CONFLICT_MESSAGE
from tracker.models import Complainant, EscalationRecord, Event, IdempotencyRecord, LoginAttempt, Task
from tracker.operations import perform
from tracker.timeutil import SHANGHAI, local_date, utcnow
from tracker.workflow import TRANSITIONS, State

PREFIX = "/api/v1"
TODAY = local_date(utcnow())
LATER = TODAY + dt.timedelta(days=200)  # a deadline that stays in the future whenever the tests run
PROBLEM = "application/problem+json"


class Api:
    """A client of the API holding one token, as another system would."""

    def __init__(self, client, secret: str):
        self.client, self.secret = client, secret

    def headers(self, extra: dict | None = None) -> dict:
        return {"Authorization": f"Bearer {self.secret}", **(extra or {})}

    def get(self, path: str, query=None, headers: dict | None = None):
        return self.client.get(PREFIX + path, query_string=query, headers=self.headers(headers))

    def post(self, path: str, body=None, *, key: str | None = None, files=None, method: str = "POST"):
        headers = self.headers({"Idempotency-Key": key} if key else None)
        if files is not None:
            data = {k: (v if isinstance(v, list) else str(v)) for k, v in (body or {}).items()}
            data["files"] = [(io.BytesIO(content), name) for name, content in files]
            return self.client.open(PREFIX + path, method=method, data=data, headers=headers,
                                    content_type="multipart/form-data")
        return self.client.open(PREFIX + path, method=method, json=body, headers=headers)

    def task(self, task_id: int) -> dict:
        response = self.get(f"/tasks/{task_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def act(self, task_id: int, action: str, *, files=None, key: str | None = None, **fields):
        """Take an action on the task as read now (its version from the API itself)."""
        if "version" not in fields:
            fields["version"] = self.task(task_id)["version"]
        return self.post(f"/tasks/{task_id}/actions/{action.replace('_', '-')}", fields, files=files, key=key)


def api_for(client, s, world, username: str) -> Api:
    m = world.m[username]
    made = tokens.create_token(s, m, NOW, m.user, m, f"{username}的测试令牌")
    s.commit()
    return Api(client, made.secret)


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["code"] == code and body["detail"] and body["title"]
    return body


def rectifying(world, lead_user="unit_yh", **kw) -> Task:
    task = world.assigned(deadline=LATER, **kw)
    world.advance(task, "rectifying", lead_user=lead_user)
    world.s.commit()
    return task


@pytest.fixture
def two_counties(world, s):
    """A task in 雨湖区 (湘潭) and one in 攸县 (株洲), both 整改中."""
    yuhu = world.assigned(deadline=LATER, participants=["湘潭市生态环境局"])
    world.advance(yuhu, "rectifying")
    youxian = world.assigned(title="清水塘老工业区遗留废渣", region="攸县", lead="攸县人民政府", actor="sup_zz",
                             deadline=LATER)
    world.advance(youxian, "rectifying", lead_user="unit_yx", sup="sup_zz")
    s.commit()
    return yuhu, youxian


# --- authentication --------------------------------------------------------------------------------------


def test_without_a_bearer_token_every_endpoint_answers_401_and_a_session_cookie_is_not_enough(client, world):
    response = client.get(PREFIX + "/tasks")
    body = problem(response, 401, "UNAUTHORIZED")
    assert "Bearer" in body["detail"] and response.headers["WWW-Authenticate"].startswith("Bearer")
    login(client, "sup_xt")
    assert client.get("/todo").status_code == 200  # logged in on the web …
    problem(client.get(PREFIX + "/tasks"), 401, "UNAUTHORIZED")  # … but the API reads no cookies
    problem(client.post(PREFIX + "/tasks", json={"title": "x"}), 401, "UNAUTHORIZED")  # nor asks for CSRF


def test_bad_tokens_answer_401_and_repeated_failures_from_one_address_429(app, client, s, world):
    app.config["API_MAX_FAILURES"] = 3
    good = api_for(client, s, world, "sup_xt")
    for _ in range(20):  # a missing header is not a token check: never throttled
        client.get(PREFIX + "/me")
    for _ in range(3):
        problem(Api(client, "zg_not-a-real-token").get("/me"), 401, "UNAUTHORIZED")
    throttled = good.get("/me")
    body = problem(throttled, 429, "TOO_MANY_REQUESTS")
    assert "分钟后再试" in body["detail"] and int(throttled.headers["Retry-After"]) > 0
    other = client.get(PREFIX + "/me", headers=good.headers(), environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert other.status_code == 200


def test_a_token_of_a_deactivated_user_or_a_revoked_token_fails(client, s, world):
    api = api_for(client, s, world, "unit_yh")
    assert api.get("/me").status_code == 200
    set_user_active(s, None, NOW, world.user("unit_yh"), False)
    s.commit()
    problem(api.get("/me"), 401, "UNAUTHORIZED")
    assert s.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == tokens.FAILED_TOKEN_USERNAME)) == 1


def test_me_names_the_membership_the_token_acts_as(client, s, world):
    body = api_for(client, s, world, "sup_xt").get("/me").get_json()
    assert body["username"] == "sup_xt" and body["membership"]["role"] == "supervisor"
    assert body["membership"]["unit"]["name"] == "湘潭市突出环境问题整改办公室"
    assert body["membership"]["region"]["name"] == "湘潭市"
    assert body["token"]["created_at"].endswith("+08:00") and body["token"]["prefix"].startswith("zg_")


# --- the document and the error format -----------------------------------------------------------------


def test_the_openapi_document_is_public_and_lists_every_action_of_the_transition_table(client):
    response = client.get(PREFIX + "/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1") and doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    posts = {path for path, ops in doc["paths"].items() if "post" in ops}
    for action in TRANSITIONS:
        path = PREFIX + "/tasks" if action == "register" else f"{PREFIX}/tasks/{{task_id}}/actions/" + action.replace(
            "_", "-")
        assert path in posts, action
        op = doc["paths"][path]["post"]
        assert TRANSITIONS[action].label in op["summary"] and any(ch.isascii() and ch.isalpha() for ch in op["summary"])
        assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    report = doc["paths"][PREFIX + "/tasks/{task_id}/actions/report"]["post"]["requestBody"]["content"]
    assert set(report) == {"application/json", "multipart/form-data"}
    assert report["multipart/form-data"]["schema"]["properties"]["files"]["items"]["format"] == "binary"
    close = doc["components"]["schemas"]["CloseIn"]["properties"]
    assert "checklist" in close and "version" in doc["components"]["schemas"]["CloseIn"]["required"]
    assert list(jsonschema_rs.Draft202012Validator(OPENAPI_31).iter_errors(doc)) == []
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)


def test_every_api_route_is_in_the_document_and_nothing_else(app, client):
    doc = client.get(PREFIX + "/openapi.json").get_json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    routed = {(method, re.sub(r"<(\w+)>", r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("api.") and rule.endpoint not in ("api.openapi", "api.unknown",
                                                                            "api.unknown_root")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented


def test_unknown_paths_and_methods_are_problems_too(client, s, world):
    api = api_for(client, s, world, "sup_xt")
    problem(api.get("/no-such-thing"), 404, "NOT_FOUND")
    wrong = api.post("/tasks/1", {}, method="DELETE")
    problem(wrong, 405, "METHOD_NOT_ALLOWED")
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "PATCH"}
    problem(api.get("/tasks/abc"), 404, "NOT_FOUND")
    problem(api.get("/tasks/99999999999"), 404, "NOT_FOUND")


def test_validation_errors_name_each_field_in_chinese(client, s, world, two_counties):
    yuhu, _ = two_counties
    api = api_for(client, s, world, "unit_yh")
    body = problem(api.post(f"/tasks/{yuhu.id}/actions/report", {"percent": 150, "colour": "red"}),
                   422, "VALIDATION_ERROR")
    errors = {e["field"]: e["message"] for e in body["errors"]}
    assert errors == {"body.version": "此项必填", "body.text": "此项必填", "body.percent": "须不大于100",
                      "body.colour": "不允许的字段"}
    problem(api.get("/tasks", {"deadline_from": "2026-13-01"}), 422, "VALIDATION_ERROR")
    bad_json = client.post(f"{PREFIX}/tasks/{yuhu.id}/actions/sign", data="{", headers=api.headers(),
                           content_type="application/json")
    problem(bad_json, 400, "BAD_REQUEST")
    as_form = client.post(f"{PREFIX}/tasks/{yuhu.id}/actions/sign", data={"version": "1"}, headers=api.headers())
    problem(as_form, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_refused_action_says_why_in_chinese_and_changes_nothing(client, s, world, two_counties):
    yuhu, _ = two_counties
    version = yuhu.version
    body = problem(api_for(client, s, world, "unit_yh").act(yuhu.id, "sign"), 422, "ACTION_REFUSED")
    assert body["detail"] == "当前状态为“整改中”，不能签收"
    s.expire_all()
    assert s.get(Task, yuhu.id).version == version


def test_an_action_the_membership_never_takes_is_403(client, s, world, two_counties):
    yuhu, _ = two_counties
    problem(api_for(client, s, world, "viewer_xt").act(yuhu.id, "cancel", reason="查阅身份试图作废"), 403, "FORBIDDEN")
    problem(api_for(client, s, world, "unit_yh").act(yuhu.id, "cancel", reason="责任单位试图作废"), 403, "FORBIDDEN")
    problem(api_for(client, s, world, "unit_yh").post("/tasks", {"title": "x", "channel_id": 1, "round_id": 1,
                                                                 "region_id": 1}), 403, "FORBIDDEN")


# --- scope: out of scope is 404 everywhere ---------------------------------------------------------------


def test_a_county_unit_cannot_list_read_act_on_or_download_from_another_countys_task(app, client, s, world,
                                                                                      two_counties):
    yuhu, youxian = two_counties
    perform(s, youxian, "report", world.m["unit_yx"], utcnow(), text="清运完成一半")
    s.commit()
    yx = api_for(client, s, world, "unit_yx")
    uploaded = yx.act(youxian.id, "report", text="附现场照片", files=[("攸县现场.jpg", b"jpeg")])
    assert uploaded.status_code == 200, uploaded.get_json()
    evidence_id = uploaded.get_json()["evidence"][0]["id"]

    yh = api_for(client, s, world, "unit_yh")
    listed = yh.get("/tasks").get_json()
    assert [t["id"] for t in listed["items"]] == [yuhu.id] and listed["total"] == 1
    problem(yh.get(f"/tasks/{youxian.id}"), 404, "NOT_FOUND")
    problem(yh.get(f"/tasks/{youxian.id}/reports"), 404, "NOT_FOUND")
    problem(yh.get(f"/tasks/{youxian.id}/escalations"), 404, "NOT_FOUND")
    problem(yh.act(youxian.id, "report", version=1, text="越权报送"), 404, "NOT_FOUND")
    problem(yh.get(f"/evidence/{evidence_id}/file"), 404, "NOT_FOUND")
    assert yx.get(f"/evidence/{evidence_id}/file").data == b"jpeg"
    # a city supervisor sees its own city only; the province sees both
    problem(api_for(client, s, world, "sup_zz").get(f"/tasks/{yuhu.id}"), 404, "NOT_FOUND")
    assert api_for(client, s, world, "sup_hn").get("/tasks").get_json()["total"] == 2
    # a participant reads the whole task
    assert api_for(client, s, world, "unit_sthj").get(f"/tasks/{yuhu.id}").status_code == 200


# --- the version check and idempotency -------------------------------------------------------------------


def test_a_stale_version_is_409_with_the_conflict_message_and_changes_nothing(client, s, world, two_counties):
    yuhu, _ = two_counties
    api = api_for(client, s, world, "unit_yh")
    old = api.task(yuhu.id)["version"]
    assert api.act(yuhu.id, "report", version=old, text="第一次报送").status_code == 200
    body = problem(api.act(yuhu.id, "report", version=old, text="用旧版本再报"), 409, "VERSION_CONFLICT")
    assert body["detail"] == CONFLICT_MESSAGE
    assert [r["text"] for r in api.task(yuhu.id)["reports"]] == ["第一次报送"]


def test_a_retried_post_with_the_same_idempotency_key_acts_once(client, s, world, two_counties):
    yuhu, _ = two_counties
    api = api_for(client, s, world, "unit_yh")
    version = api.task(yuhu.id)["version"]
    body = {"version": version, "text": "截污管网完成80%", "percent": 80}
    first = api.post(f"/tasks/{yuhu.id}/actions/report", body, key="report-2026-11-001")
    again = api.post(f"/tasks/{yuhu.id}/actions/report", body, key="report-2026-11-001")
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.get_json() == first.get_json()
    assert s.scalar(select(func.count()).select_from(Event).where(Event.task_id == yuhu.id,
                                                                  Event.action == "report")) == 1
    other = api.post(f"/tasks/{yuhu.id}/actions/report", {**body, "text": "另一次报送"}, key="report-2026-11-001")
    problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    # without a key, the same body is a new call: a stale version now
    problem(api.post(f"/tasks/{yuhu.id}/actions/report", body), 409, "VERSION_CONFLICT")
    problem(api.post(f"/tasks/{yuhu.id}/actions/report", body, key="含中文的键"), 422, "VALIDATION_ERROR")


def test_a_multipart_retry_with_the_same_key_stores_the_files_once(app, client, s, world, two_counties):
    yuhu, _ = two_counties
    api = api_for(client, s, world, "unit_yh")
    body = {"version": api.task(yuhu.id)["version"], "text": "附整改后照片", "evidence_kind": "after"}
    files = [("整改后.jpg", b"after-photo")]
    first = api.post(f"/tasks/{yuhu.id}/actions/report", body, files=files, key="upload-1")
    again = api.post(f"/tasks/{yuhu.id}/actions/report", body, files=files, key="upload-1")
    assert first.status_code == again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    evidence = api.task(yuhu.id)["evidence"]
    assert [(e["original_name"], e["kind"], e["size"]) for e in evidence] == [("整改后.jpg", "after", 11)]
    assert len(list(Path(app.config["UPLOAD_FOLDER"]).iterdir())) == 1  # the retry's copy was discarded
    assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_a_refused_upload_leaves_no_file_behind(app, client, s, world, two_counties):
    yuhu, _ = two_counties
    api = api_for(client, s, world, "unit_yh")
    refused = api.act(yuhu.id, "report", version=0, text="旧版本", files=[("照片.jpg", b"x")])
    problem(refused, 409, "VERSION_CONFLICT")
    folder = Path(app.config["UPLOAD_FOLDER"])
    assert not folder.exists() or list(folder.iterdir()) == []
    app.config["MAX_CONTENT_LENGTH"] = 1024
    problem(api.act(yuhu.id, "report", text="太大", files=[("大文件.pdf", b"x" * 4096)]), 413, "PAYLOAD_TOO_LARGE")


# --- 信访人信息 and four-eyes ----------------------------------------------------------------------------


def test_complainant_details_are_taken_by_the_api_but_never_returned(client, s, world):
    """DESIGN §3: 信访人信息 is never in the API — not even for the assigning level, who read it on the page."""
    xt = api_for(client, s, world, "sup_xt")
    channel = world.channels["省级生态环境保护督察"].id
    created = xt.post("/tasks", {
        "title": "湘江雨湖段夜间偷排", "kind": "交办信访件", "channel_id": channel,
        "round_id": world.rounds["第一轮"].id, "region_id": world.regions["雨湖区"].id,
        "complainant": {"name": "张某某", "phone": "13800000000", "address": "雨湖区某小区", "content": "夜间异味"}})
    assert created.status_code == 201, created.get_json()
    task = created.get_json()
    assert "complainant" not in task and "张某某" not in created.get_data(as_text=True) and task["state"] == "pending"
    assigned = xt.act(task["id"], "assign", leads=[world.units["雨湖区人民政府"].id], deadline=LATER.isoformat())
    assert assigned.status_code == 200 and assigned.get_json()["state"] == "assigned"
    for username in ("sup_xt", "unit_yh", "sup_hn", "sup_yh", "viewer_xt"):
        api = api_for(client, s, world, username)
        for response in (api.get(f"/tasks/{task['id']}"), api.get("/tasks")):
            text = response.get_data(as_text=True)
            assert response.status_code == 200 and "张某某" not in text and "13800000000" not in text, username
    assert "张某某" not in xt.get("/tasks").get_data(as_text=True)  # lists never carry it
    assert s.get(Complainant, task["id"]).name == "张某某"


def test_four_eyes_no_one_of_the_lead_unit_may_verify_or_close_through_the_api(client, s, world):
    task = world.advance(world.assigned(deadline=LATER), "verifying")
    s.commit()
    add_membership(s, None, NOW, world.user("sup_hn"), world.units["雨湖区人民政府"], "unit")
    s.commit()
    body = problem(api_for(client, s, world, "sup_hn").act(task.id, "close", opinion="自己验收自己"),
                   422, "ACTION_REFUSED")
    assert body["detail"] == "申请销号人及责任单位人员不能验收销号本任务"
    closed = api_for(client, s, world, "sup_xt").act(task.id, "close", opinion="现场核查合格")
    assert closed.status_code == 200 and closed.get_json()["state"] == "closed"
    assert closed.get_json()["closure"]["verifier_unit"]["name"] == "湘潭市突出环境问题整改办公室"


# --- reading: the ledger record, the list, escalations ---------------------------------------------------


def test_the_detail_carries_the_whole_record_with_shanghai_times(client, s, world, two_counties):
    yuhu, _ = two_counties
    api = api_for(client, s, world, "unit_yh")
    api.act(yuhu.id, "report", text="渗滤液处理站主体完工", percent=60, files=[("监测报告.pdf", b"%PDF-1.4")],
            evidence_kind="monitoring")
    body = api.task(yuhu.id)
    assert body["state"] == "rectifying" and body["state_label"] == "整改中"
    assert body["lead_units"] == [{"id": world.units["雨湖区人民政府"].id, "name": "雨湖区人民政府"}]
    assert body["participant_units"][0]["name"] == "湘潭市生态环境局"
    assert body["deadline"] == LATER.isoformat() and body["latest_percent"] == 60
    assert body["updated_at"].endswith("+08:00")
    assert [e["action"] for e in body["events"]] == ["register", "assign", "sign", "submit_plan", "approve_plan",
                                                     "report"]
    assert all(e["recorded_at"].endswith("+08:00") for e in body["events"])
    report = body["reports"][0]
    assert report["text"] == "渗滤液处理站主体完工" and report["unit"] == "雨湖区人民政府"
    evidence = body["evidence"][0]
    assert evidence["kind_label"] == "监测报告" and evidence["id"] in report["evidence_ids"]
    assert evidence["download"] == f"{PREFIX}/evidence/{evidence['id']}/file"
    assert set(body["available_actions"]) == {"report", "submit", "request_extension"}
    assert body["timing"]["workdays_left"] > 0
    assert api.get(f"/tasks/{yuhu.id}/reports").get_json()["items"][0]["percent"] == 60


def test_the_list_filters_sorts_and_pages_by_cursor(client, s, world):
    for i in range(5):
        world.assigned(title=f"涓水直排口{i}", deadline=LATER - dt.timedelta(days=i))
    world.assigned(title="湘乡皮革工业园", region="湘乡市", lead="湘乡市人民政府", deadline=LATER)
    s.commit()
    api = api_for(client, s, world, "sup_xt")
    seen, cursor = [], None
    while True:
        page = api.get("/tasks", {"region": world.regions["雨湖区"].id, "limit": 2,
                                  **({"cursor": cursor} if cursor else {})}).get_json()
        seen += [t["title"] for t in page["items"]]
        assert page["total"] == 5 and page["by_state"] == {"assigned": 5}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"涓水直排口{i}" for i in (4, 3, 2, 1, 0)]  # nearest deadline first
    assert [t["title"] for t in api.get("/tasks", {"q": "皮革"}).get_json()["items"]] == ["湘乡皮革工业园"]
    states = api.get("/tasks", [("state", "assigned"), ("state", "closed")]).get_json()
    assert states["total"] == 6
    city = world.regions["湘潭市"].id
    assert api.get("/tasks", {"region": city}).get_json()["total"] == 6
    assert api.get("/tasks", {"region": city, "subtree": "false"}).get_json()["total"] == 0
    by_lead = api.get("/tasks", {"lead_unit": world.units["湘乡市人民政府"].id}).get_json()
    assert [t["title"] for t in by_lead["items"]] == ["湘乡皮革工业园"]
    problem(api.get("/tasks", {"cursor": "bm90LWEtY3Vyc29y"}), 422, "VALIDATION_ERROR")
    problem(api.get("/tasks", {"sort": "title"}), 422, "VALIDATION_ERROR")


def test_overdue_tasks_of_one_county_as_docs_api_md_shows(app, client, s, world):
    then = utcnow() - dt.timedelta(days=120)
    late = world.assigned(title="双马填埋场渗滤液", deadline=local_date(then) + dt.timedelta(days=30), now=then)
    world.assigned(title="浏阳河支流", deadline=LATER, now=then)
    world.assigned(title="湘乡逾期问题", region="湘乡市", lead="湘乡市人民政府",
                   deadline=local_date(then) + dt.timedelta(days=30), now=then)
    s.commit()
    schedule.refresh_all(s, TODAY, settings.time_settings(s))
    s.commit()
    api = api_for(client, s, world, "sup_xt")
    yuhu = api.get("/regions", {"q": "雨湖区"}).get_json()["items"][0]["id"]
    listed = api.get("/tasks", {"region": yuhu, "schedule": "overdue"}).get_json()
    assert [t["id"] for t in listed["items"]] == [late.id] and listed["items"][0]["overdue"] is True


def test_escalation_records_and_open_proposals_and_confirming_one(app, client, s, world):
    task = world.assigned(deadline=dt.date(2026, 3, 31))
    world.advance(task, "rectifying")
    s.commit()
    day = dt.date(2026, 4, 29)
    with app.app_context():
        escalation.scan(s, day, dt.datetime(2026, 4, 29, 8, 30, tzinfo=SHANGHAI).astimezone(dt.UTC))
    s.commit()
    yh = api_for(client, s, world, "sup_yh")
    body = yh.get(f"/tasks/{task.id}/escalations").get_json()
    proposed = body["open_proposals"]
    assert len(proposed) == 1 and proposed[0]["measure"] == "督办" and proposed[0]["may_decide"] is True
    assert [r["status"] for r in body["records"] if r["level"] == 4] == ["proposed"]
    mine = yh.get("/proposals").get_json()["items"]
    assert [(p["task"]["id"], p["record"]["level"]) for p in mine] == [(task.id, 4)]
    assert api_for(client, s, world, "sup_xt").get("/proposals").get_json()["items"] == []
    confirmed = yh.act(task.id, "confirm_measure", level=4, doc_no="雨突改办〔2026〕12号")
    assert confirmed.status_code == 200 and confirmed.get_json()["escalation_level"] == 4
    assert yh.get("/proposals").get_json()["items"] == []
    record = s.scalar(select(EscalationRecord).where(EscalationRecord.task_id == task.id, EscalationRecord.level == 4))
    s.refresh(record)
    assert (record.status, record.doc_no) == ("confirmed", "雨突改办〔2026〕12号")


def test_reference_lists_follow_the_membership(client, s, world):
    xt = api_for(client, s, world, "sup_xt").get("/regions").get_json()["items"]
    assert {r["name"] for r in xt} == {"湘潭市", "雨湖区", "湘乡市", "湘潭高新区"}
    channels = api_for(client, s, world, "unit_yh").get("/channels").get_json()["items"]
    central = next(c for c in channels if c["name"] == "中央生态环境保护督察")
    assert (central["closing_level"], central["pre_verify_level"]) == (0, 1) and "中央环保督察" in central["aliases"]
    units = api_for(client, s, world, "unit_yh").get("/units", {"q": "省督察办"}).get_json()["items"]
    assert [u["name"] for u in units] == ["湖南省生态环境保护督察工作领导小组办公室"]
    rounds = api_for(client, s, world, "unit_yh").get("/rounds").get_json()["items"]
    assert "第一轮“回头看”" in [r["name"] for r in rounds]


# --- the §5 report, the monthly ledger and the archives --------------------------------------------------


def test_the_report_has_the_shape_of_the_cli_json(app, client, s, world, two_counties):
    api = api_for(client, s, world, "sup_hn")
    body = api.get("/report", {"by": "region", "as_of": TODAY.isoformat()}).get_json()
    built = reports.build(s, world.regions["湖南省"], TODAY, "region", settings.time_settings(s))
    assert body["rows"] == [row.as_json() for row in built.rows]
    assert body["total"]["total"] == 2 and body["region"]["name"] == "湖南省" and body["by"] == "region"
    cli = app.test_cli_runner().invoke(args=["report", "--as-of", TODAY.isoformat(), "--by", "region", "--json"])
    assert json.loads(cli.output) == body["rows"]
    problem(api_for(client, s, world, "unit_yh").get("/report"), 403, "FORBIDDEN")
    problem(api_for(client, s, world, "sup_xt").get("/report", {"region": world.regions["攸县"].id}),
            404, "NOT_FOUND")


def test_the_monthly_ledger_downloads_as_xlsx_or_csv_and_is_logged(client, s, world, two_counties):
    api = api_for(client, s, world, "sup_xt")
    xlsx = api.get("/ledger")
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet") and xlsx.data[:2] == b"PK"
    csv = api.get("/ledger", {"format": "csv", "month": TODAY.strftime("%Y-%m")})
    text = csv.data.decode("utf-8-sig")
    assert csv.mimetype == "text/csv" and "双马填埋场渗滤液处理不到位" in text and "清水塘" not in text
    exports = s.scalars(select(Event).where(Event.action == "export", Event.entity == "ledger")).all()
    assert [e.data["format"] for e in exports] == ["xlsx", "csv"] and exports[0].data["via"] == "api"
    problem(api.get("/ledger", {"month": "2099-01"}), 422, "VALIDATION_ERROR")
    problem(api_for(client, s, world, "unit_yh").get("/ledger"), 403, "FORBIDDEN")


def test_archives_are_listed_and_served_within_scope(app, client, s, world, two_counties):
    now = dt.datetime(2026, 10, 8, 7, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    archive.archive_month(s, "2026-09", now, Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                          base_url="https://zg.example.cn")
    s.commit()
    xt = api_for(client, s, world, "sup_xt")
    items = xt.get("/archives").get_json()["items"]
    assert sorted(a["region"]["name"] for a in items) == ["湘潭市", "雨湖区"]
    first = items[0]
    download = xt.get(first["download"].removeprefix(PREFIX))
    assert download.status_code == 200 and download.data[:2] == b"PK"
    assert [a["month"] for a in xt.get("/archives", {"month": "2026-08"}).get_json()["items"]] == []
    zhuzhou = api_for(client, s, world, "sup_hn").get("/archives", {"month": "2026-09"}).get_json()["items"]
    other = next(a for a in zhuzhou if a["region"]["name"] == "株洲市")
    problem(xt.get(f"/archives/{other['id']}/file"), 404, "NOT_FOUND")
    assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "download")) == 1


# --- registering, editing, splitting ----------------------------------------------------------------------


def test_register_edit_and_split_through_the_api(client, s, world):
    xt = api_for(client, s, world, "sup_xt")
    channel = world.channels["省级生态环境保护督察"].id
    created = xt.post("/tasks", {"title": "长株潭“绿心”违规项目", "channel_id": channel,
                                 "round_id": world.rounds["第二轮"].id, "region_id": world.regions["湘潭市"].id,
                                 "category": "生态", "problem_title": "长株潭“绿心”保护不力"})
    task = created.get_json()
    assert created.status_code == 201 and task["problem"]["name"] == "长株潭“绿心”保护不力"
    edited = xt.post(f"/tasks/{task['id']}", {"version": task["version"], "remarks": "省督察组点名"}, method="PATCH")
    assert edited.status_code == 200 and edited.get_json()["remarks"] == "省督察组点名"
    problem(xt.post(f"/tasks/{task['id']}", {"version": task["version"], "remarks": "旧版本"}, method="PATCH"),
            409, "VERSION_CONFLICT")
    problem(api_for(client, s, world, "viewer_xt").post(f"/tasks/{task['id']}", {"version": 0, "remarks": "x"},
                                                        method="PATCH"), 403, "FORBIDDEN")
    split = xt.act(task["id"], "split", children=[
        {"region_id": world.regions["雨湖区"].id, "leads": [world.units["雨湖区人民政府"].id],
         "deadline": LATER.isoformat()},
        {"region_id": world.regions["湘乡市"].id, "leads": [world.units["湘乡市人民政府"].id],
         "deadline_text": "2027年6月底前"}])
    assert split.status_code == 200, split.get_json()
    children = split.get_json()["children"]
    assert [(c["region"]["name"], c["state"]) for c in children] == [("雨湖区", "assigned"), ("湘乡市", "assigned")]
    assert children[1]["deadline"] == "2027-06-30"
    # a lead unit sees its own child only, and the parent not at all
    yh = api_for(client, s, world, "unit_yh")
    assert [t["id"] for t in yh.get("/tasks").get_json()["items"]] == [children[0]["id"]]
    assert yh.task(children[0]["id"])["parent"] is None
    assert xt.task(children[0]["id"])["parent"]["id"] == task["id"]


def test_the_state_never_changes_but_through_the_transition_table(client, s, world, two_counties):
    """Every action endpoint goes through ``perform``: the event it writes names the action and states."""
    yuhu, _ = two_counties
    xt = api_for(client, s, world, "sup_xt")
    xt.act(yuhu.id, "change_deadline", reason="汛期施工受阻", deadline=(LATER + dt.timedelta(days=30)).isoformat())
    xt.act(yuhu.id, "cancel", reason="与另一问题重复")
    s.expire_all()
    rows = s.scalars(select(Event).where(Event.task_id == yuhu.id).order_by(Event.id)).all()
    assert [(e.action, e.from_state, e.to_state) for e in rows[-2:]] == [
        ("change_deadline", "rectifying", "rectifying"), ("cancel", "rectifying", "cancelled")]
    assert s.get(Task, yuhu.id).state == State.cancelled


def test_concurrent_calls_with_one_idempotency_key_act_once_and_all_answer_alike(app, s, world, two_counties):
    """Four copies of one call at the same moment: one acts; the others lose the version check or the key's
    unique row and replay its answer."""
    if app.extensions["tracker.engine"].dialect.name != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite is one writer by design)")
    yuhu, _ = two_counties
    api = api_for(app.test_client(), s, world, "unit_yh")
    body = {"version": api.task(yuhu.id)["version"], "text": "雨污分流完成", "percent": 70}
    barrier = threading.Barrier(4)
    with LiveServer(app) as server:
        def call(_):
            barrier.wait()
            return requests.post(f"{server.url}{PREFIX}/tasks/{yuhu.id}/actions/report", json=body, timeout=60,
                                 headers=api.headers({"Idempotency-Key": "concurrent-1"}))

        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(call, range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in responses) == ["", "true", "true", "true"]
    assert len({r.content for r in responses}) == 1
    assert s.scalar(select(func.count()).select_from(Event).where(Event.task_id == yuhu.id,
                                                                  Event.action == "report")) == 1
