"""A scripted client walks a 中央生态环境保护督察 task from 登记/交办 to 销号 through the API alone: it looks
up every id through the API, follows the transition table (sign, plan, approval, progress with
evidence, 申请销号, 市州初验, 省级验收销号 with four-eyes), and retries calls with idempotency keys."""

from __future__ import annotations

import datetime as dt
import hashlib

from tests.test_api import LATER, api_for, problem
from tracker.timeutil import local_date, utcnow


def days_around(call):
    """The business dates an API call may have acted on (a run may straddle midnight in Shanghai)."""
    before = local_date(utcnow())
    result = call()
    return result, {before.isoformat(), local_date(utcnow()).isoformat()}


def one(api, path: str, **query) -> dict:
    items = api.get(path, query).get_json()["items"]
    assert len(items) == 1, items
    return items[0]


def test_a_client_walks_a_central_inspection_task_from_registration_to_closure(client, s, world):
    city, county, province = (api_for(client, s, world, name) for name in ("sup_xt", "unit_yh", "sup_hn"))
    assert city.get("/me").get_json()["membership"]["region"]["name"] == "湘潭市"
    channel = next(c for c in city.get("/channels").get_json()["items"] if c["name"] == "中央生态环境保护督察")
    round_ = next(r for r in city.get("/rounds").get_json()["items"] if r["name"] == "第一轮“回头看”")
    region = one(city, "/regions", q="雨湖区")
    lead = one(city, "/units", q="雨湖区人民政府")
    verifier = one(province, "/units", q="环境监测中心站")

    # 登记 and 交办 by the city; a retried registration with its key makes one task
    fields = {"title": "双马垃圾填埋场渗滤液直排", "channel_id": channel["id"], "round_id": round_["id"],
              "region_id": region["id"], "category": "固废", "description": "渗滤液经雨水沟直排涓水（001 L240）"}
    created = city.post("/tasks", fields, key="walk-register")
    again = city.post("/tasks", fields, key="walk-register")
    assert created.status_code == again.status_code == 201 and again.get_json()["id"] == created.get_json()["id"]
    task_id = created.get_json()["id"]
    assert city.get("/tasks", {"q": "双马垃圾填埋场"}).get_json()["total"] == 1
    assigned = city.act(task_id, "assign", leads=[lead["id"]], deadline=LATER.isoformat())
    assert assigned.get_json()["state"] == "assigned"
    assert "sign" in county.task(task_id)["available_actions"]

    # the county signs, plans, and the city approves the plan
    assert county.act(task_id, "sign").get_json()["state"] == "signed"
    planned = county.act(task_id, "submit_plan", target="渗滤液全部收集处理、达标排放",
                         measures="建设渗滤液处理站；雨污分流改造",
                         milestones=[{"due_on": (LATER - dt.timedelta(days=60)).isoformat(),
                                      "description": "完成雨污分流改造", "planned_percent": 50}])
    milestone = planned.get_json()["milestones"][0]
    problem(county.act(task_id, "approve_plan"), 403, "FORBIDDEN")
    assert city.act(task_id, "approve_plan", opinion="方案可行").get_json()["state"] == "rectifying"

    # progress with evidence, then 申请销号 with evidence
    photo = b"\xff\xd8\xff after-photo"
    reported, today = days_around(lambda: county.act(
        task_id, "report", text="雨污分流改造完成", percent=60, milestones_met=[milestone["id"]], evidence_kind="after",
        files=[("整改后现场照片.jpg", photo)]))
    assert reported.status_code == 200, reported.get_json()
    assert reported.get_json()["milestones"][0]["met_on"] in today
    submitted = county.act(task_id, "submit", text="渗滤液处理站已投运，出水达标", evidence_kind="monitoring",
                           files=[("出水监测报告.pdf", b"%PDF-1.4 monitoring")], key="walk-submit")
    assert submitted.get_json()["state"] == "verifying"

    # 中央 channel: 市州初验 first, then 省级验收销号; no one of the lead unit may close
    problem(county.act(task_id, "close", opinion="自己销号"), 403, "FORBIDDEN")
    early = problem(province.act(task_id, "close", opinion="未初验"), 422, "ACTION_REFUSED")
    assert early["detail"] == "该任务须先经初验"
    not_mine = problem(city.act(task_id, "close", opinion="越级销号"), 422, "ACTION_REFUSED")
    assert not_mine["detail"] == "该任务须由上级验收销号，您可以初验"
    assert city.act(task_id, "pre_verify", opinion="市级初验合格").get_json()["closure"]["pre_verified_on"]
    closed, today = days_around(lambda: province.act(
        task_id, "close", opinion="省级核查验收合格", closure_doc_no="湘督办〔2026〕8号",
        verifier_unit_id=verifier["id"], checklist=[]))
    assert closed.status_code == 200, closed.get_json()

    record = province.task(task_id)
    assert record["state"] == "closed" and record["closed_on"] in today
    assert record["closure"]["verifier_unit"]["name"] == "湖南省环境监测中心站"
    assert record["closure"]["doc_no"] == "湘督办〔2026〕8号"
    assert [e["action"] for e in record["events"]] == ["register", "assign", "sign", "submit_plan", "approve_plan",
                                                       "report", "submit", "pre_verify", "close"]
    kinds = {e["original_name"]: e for e in record["evidence"]}
    assert set(kinds) == {"整改后现场照片.jpg", "出水监测报告.pdf"}
    assert kinds["出水监测报告.pdf"]["kind"] == "monitoring"
    downloaded = county.get(kinds["整改后现场照片.jpg"]["download"].removeprefix("/api/v1"))
    assert hashlib.sha256(downloaded.data).hexdigest() == kinds["整改后现场照片.jpg"]["sha256"]
    assert city.get("/tasks", {"state": "closed", "region": region["id"]}).get_json()["total"] == 1
