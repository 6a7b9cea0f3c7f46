"""The web boundary: scope answers 404, CSRF, login throttling across processes, 信访人信息, the
version check, and the register / edit / split / admin pages."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from config import TestConfig
from tests.conftest import PASSWORD, csrf_token, login
from tracker import create_app
from tracker.accounts import add_membership
from tracker.models import Complainant, Event, Evidence, LoginAttempt, Task, User
from tracker.operations import perform


def page(client, url):
    response = client.get(url)
    return response, response.get_data(as_text=True)


def post_action(client, task, action, data, files=None):
    """Post one action form the way the browser does (prefixed fields, CSRF, version)."""
    _, html = page(client, f"/tasks/{task.id}")
    form = {f"{action}-csrf_token": csrf_token(html), f"{action}-version": str(task.version)}
    form.update({f"{action}-{k}": v for k, v in data.items()})
    for key, (name, content) in (files or {}).items():
        form[f"{action}-{key}"] = (io.BytesIO(content), name)
    return client.post(f"/tasks/{task.id}/act/{action}", data=form, content_type="multipart/form-data")


@pytest.fixture
def two_counties(world, s):
    """A task in 雨湖区 (湘潭) with a participant, and one in 攸县 (株洲)."""
    yuhu = world.assigned(participants=["湘潭市生态环境局"])
    youxian = world.assigned(title="清水塘老工业区遗留废渣", region="攸县", lead="攸县人民政府", actor="sup_zz")
    world.advance(youxian, "rectifying", lead_user="unit_yx", sup="sup_zz")
    s.commit()
    return yuhu, youxian


def test_a_county_unit_cannot_list_open_download_or_act_on_another_countys_task(client, world, s, two_counties, app):
    yuhu, youxian = two_counties
    perform(s, youxian, "report", world.m["unit_yx"], dt.datetime.now(dt.UTC), text="清运完成一半")
    s.commit()
    folder = app.config["UPLOAD_FOLDER"]
    folder.mkdir(parents=True, exist_ok=True)
    evidence = Evidence(task_id=youxian.id, kind="after", original_name="攸县照片.jpg", stored_name="a" * 32,
                        size=3, sha256="0" * 64, membership_id=world.m["unit_yx"].id)
    s.add(evidence)
    s.commit()
    (folder / evidence.stored_name).write_bytes(b"jpg")

    login(client, "unit_yh")
    _, listing = page(client, "/tasks")
    assert yuhu.title in listing and youxian.title not in listing
    assert client.get(f"/tasks/{youxian.id}").status_code == 404
    assert client.get(f"/evidence/{evidence.id}").status_code == 404
    assert client.get(f"/tasks/{youxian.id}/edit").status_code == 404
    _, own = page(client, f"/tasks/{yuhu.id}")
    response = client.post(f"/tasks/{youxian.id}/act/report", data={
        "report-csrf_token": csrf_token(own), "report-version": str(youxian.version), "report-text": "越权"})
    assert response.status_code == 404
    s.expire_all()
    assert s.scalar(select(func.count()).select_from(Event).where(Event.task_id == youxian.id,
                                                                  Event.action == "report")) == 1

    login(client, "unit_yx")
    download = client.get(f"/evidence/{evidence.id}")
    assert download.status_code == 200 and download.data == b"jpg"


def test_a_participant_sees_the_task_and_may_report_but_not_act_as_lead(client, world, s, two_counties):
    yuhu, _ = two_counties
    login(client, "unit_sthj")
    response, html = page(client, f"/tasks/{yuhu.id}")
    assert response.status_code == 200 and yuhu.title in html
    assert 'id="action-sign"' not in html
    refused = post_action(client, yuhu, "sign", {})
    assert refused.status_code == 400 and "您的身份不能签收" in refused.get_data(as_text=True)
    s.expire_all()
    assert s.get(Task, yuhu.id).state == "assigned"

    world.advance(s.get(Task, yuhu.id), "rectifying")
    s.commit()
    yuhu = s.get(Task, yuhu.id)
    _, html = page(client, f"/tasks/{yuhu.id}")
    assert 'id="action-report"' in html and 'id="action-submit"' not in html
    assert post_action(client, yuhu, "report", {"text": "配合开展水质监测", "percent": "40"}).status_code == 302
    s.expire_all()
    assert s.get(Task, yuhu.id).latest_percent == 40


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(client, world, s):
    task = world.assigned()
    s.commit()
    login(client, "unit_yh")
    response = client.post(f"/tasks/{task.id}/act/sign", data={"sign-version": str(task.version)})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)
    s.expire_all()
    assert s.get(Task, task.id).state == "assigned"


def test_a_stale_form_is_refused_with_the_conflict_message(client, world, s):
    task = world.assigned()
    s.commit()
    login(client, "unit_yh")
    _, html = page(client, f"/tasks/{task.id}")
    stale_version = task.version
    perform(s, task, "sign", world.m["unit_yh"], dt.datetime.now(dt.UTC))  # someone else, meanwhile
    s.commit()
    response = client.post(f"/tasks/{task.id}/act/submit_plan", data={
        "submit_plan-csrf_token": csrf_token(html), "submit_plan-version": str(stale_version),
        "submit_plan-target": "达标", "submit_plan-measures": "整治"})
    assert response.status_code == 409 and "已被他人修改，请刷新后重试" in response.get_data(as_text=True)
    s.expire_all()
    assert s.get(Task, task.id).plan_submitted_on is None


def test_login_throttling_holds_across_two_app_instances_sharing_one_database(app, world, database_url, tmp_path):
    other = create_app(TestConfig(database_url, str(tmp_path / "other")))
    first, second = app.test_client(), other.test_client()
    limit = app.config["LOGIN_MAX_FAILURES"]
    for i in range(limit):
        client = first if i % 2 == 0 else second
        assert login(client, "unit_yh", "wrong-password-1").status_code == 401
    refused = login(second, "unit_yh", PASSWORD)
    assert refused.status_code == 401
    assert "登录失败次数过多" in refused.get_data(as_text=True)
    assert login(first, "unit_yx").status_code == 302  # other accounts are not locked
    other.extensions["tracker.engine"].dispose()


def test_login_failure_and_success_are_recorded_and_next_never_leaves_the_site(client, world, s):
    assert login(client, "unit_yh", "wrong-password-1").status_code == 401
    page_ = client.get("/login?next=//evil.example/x")
    response = client.post("/login?next=//evil.example/x", data={
        "username": "unit_yh", "password": PASSWORD, "csrf_token": csrf_token(page_.get_data(as_text=True))})
    assert response.status_code == 302 and response.headers["Location"] == "/todo"
    attempts = s.execute(select(LoginAttempt.success).order_by(LoginAttempt.id)).scalars().all()
    assert attempts == [False, True]


def test_pages_carry_security_headers_and_a_session_cookie_with_flags(client, world):
    response = login(client, "unit_yh")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    headers = client.get("/todo").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_anonymous_users_are_sent_to_login(client, world):
    response = client.get("/tasks")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def _xinfang(world, s):
    task = world.register(title="居民投诉砂石场粉尘", kind="交办信访件", complainant={
        "name": "李某某", "phone": "13800000000", "address": "雨湖区长城乡", "content": "夜间粉尘扰民"})
    perform(s, task, "assign", world.m["sup_xt"], dt.datetime.now(dt.UTC), leads=[world.units["雨湖区人民政府"].id],
            deadline=dt.date(2026, 12, 31))
    s.commit()
    return task


@pytest.mark.parametrize("username, visible", [
    ("sup_xt", True), ("sup_hn", False), ("sup_yh", False), ("unit_yh", False), ("viewer_xt", False),
])
def test_complainant_details_show_only_to_supervisors_of_the_assigning_level(client, world, s, username, visible):
    task = _xinfang(world, s)
    assert s.get(Complainant, task.id) is not None
    login(client, username)
    response, html = page(client, f"/tasks/{task.id}")
    assert response.status_code == 200
    assert ("李某某" in html and "13800000000" in html) is visible
    assert "13800000000" not in page(client, "/tasks")[1]


def test_a_supervisor_registers_edits_and_splits_a_problem(client, world, s):
    login(client, "sup_hn")
    _, html = page(client, "/tasks/new")
    response = client.post("/tasks/new", data={
        "csrf_token": csrf_token(html), "channel_id": world.channels["中央生态环境保护督察"].id,
        "round_id": world.rounds["第一轮"].id, "region_id": world.regions["湖南省"].id, "kind": "反馈问题",
        "category": "生态", "title": "长株潭“绿心”地区违规建设项目", "code": "ZY-1-07",
        "problem_title": "长株潭“绿心”保护不力"})
    assert response.status_code == 302
    task = s.scalar(select(Task).where(Task.code == "ZY-1-07"))
    assert task.state == "pending" and task.problem.title == "长株潭“绿心”保护不力"

    _, html = page(client, f"/tasks/{task.id}/edit")
    response = client.post(f"/tasks/{task.id}/edit", data={
        "csrf_token": csrf_token(html), "version": task.version, "code": "ZY-1-07", "title": task.title,
        "kind": "反馈问题", "category": "生态", "remarks": "涉及长沙、株洲、湘潭三市"})
    assert response.status_code == 302
    s.expire_all()
    edit = s.scalar(select(Event).where(Event.task_id == task.id, Event.action == "edit"))
    assert edit.data["after"] == {"remarks": "涉及长沙、株洲、湘潭三市"}

    _, html = page(client, f"/tasks/{task.id}/split")
    rows = {}
    for i, (city, lead) in enumerate([("湘潭市", "湘潭市生态环境局"), ("株洲市", "株洲市生态环境保护督察整改办公室")]):
        rows.update({f"c{i}-region_id": world.regions[city].id, f"c{i}-leads": world.units[lead].id,
                     f"c{i}-deadline": "2026-12-31"})
    response = client.post(f"/tasks/{task.id}/split", data={
        "split-csrf_token": csrf_token(html), "split-version": s.get(Task, task.id).version, **rows})
    assert response.status_code == 302, response.get_data(as_text=True)
    s.expire_all()
    parent = s.get(Task, task.id)
    assert parent.state == "rectifying" and sorted(c.region.name for c in parent.children) == ["株洲市", "湘潭市"]
    assert all(c.state == "assigned" for c in parent.children)


def test_a_unit_cannot_open_the_register_page(client, world):
    login(client, "unit_yh")
    assert client.get("/tasks/new").status_code == 403


def test_bad_input_gets_a_chinese_message_and_changes_nothing(client, world, s):
    task = world.assigned()
    world.advance(task, "rectifying")
    s.commit()
    login(client, "unit_yh")
    response = post_action(client, task, "report", {"text": "", "percent": "150"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "此项必填" in html and "须在0到100之间" in html
    response = post_action(client, task, "submit", {"text": "整改完成，申请销号"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "申请销号须上传至少一份佐证材料" in html
    assert "整改完成，申请销号" in html  # what was typed is kept
    s.expire_all()
    assert s.get(Task, task.id).state == "rectifying" and not s.get(Task, task.id).reports


def test_evidence_upload_keeps_the_chinese_name_and_hash(client, world, s, app):
    task = world.assigned()
    world.advance(task, "rectifying")
    s.commit()
    login(client, "unit_yh")
    response = post_action(client, task, "report", {"text": "已清理", "evidence_kind": "before"},
                           files={"files": ("../../整改前 照片.jpg", b"\xff\xd8photo")})
    assert response.status_code == 302
    evidence = s.scalar(select(Evidence).where(Evidence.task_id == task.id))
    assert evidence.original_name == "整改前 照片.jpg" and evidence.kind == "before" and evidence.size == 7
    assert (app.config["UPLOAD_FOLDER"] / evidence.stored_name).read_bytes() == b"\xff\xd8photo"
    download = client.get(f"/evidence/{evidence.id}")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]


def test_admins_manage_users_only_within_their_subtree(client, world, s):
    login(client, "admin_zz")
    _, html = page(client, "/admin/users")
    assert "unit_yx" in html and "unit_yh" not in html
    assert client.get(f"/admin/users/{world.user('unit_yh').id}").status_code == 404
    response = client.post("/admin/users", data={
        "csrf_token": csrf_token(html), "username": "youxian_new", "display_name": "攸县新用户",
        "password": "Zhuzhou-2026-x", "unit_id": world.units["攸县人民政府"].id, "role": "unit"})
    assert response.status_code == 302
    assert s.scalar(select(User).where(User.username == "youxian_new")) is not None
    response = client.post("/admin/users", data={
        "csrf_token": csrf_token(html), "username": "xiangtan_new", "display_name": "越权",
        "password": "Zhuzhou-2026-x", "unit_id": world.units["雨湖区人民政府"].id, "role": "unit"})
    assert response.status_code == 400  # the unit is not a choice here: refused by the form
    assert s.scalar(select(User).where(User.username == "xiangtan_new")) is None


def test_deactivating_a_user_ends_their_session(client, world, s, app):
    login(client, "unit_yh")
    assert client.get("/todo").status_code == 200
    admin = app.test_client()
    login(admin, "admin_hn")
    _, html = page(admin, f"/admin/users/{world.user('unit_yh').id}")
    admin.post(f"/admin/users/{world.user('unit_yh').id}/active/0", data={"csrf_token": csrf_token(html)})
    response = client.get("/todo")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_user_with_two_memberships_switches_and_events_record_the_membership_used(client, world, s):
    user = world.user("sup_yh")
    as_unit = add_membership(s, None, dt.datetime.now(dt.UTC), user, world.units["雨湖区人民政府"], "unit")
    task = world.assigned()
    s.commit()
    login(client, "sup_yh")
    _, html = page(client, f"/tasks/{task.id}")
    assert 'id="action-sign"' not in html  # acting as supervisor
    client.post("/membership", data={"csrf_token": csrf_token(html), "membership_id": as_unit.id})
    assert post_action(client, task, "sign", {}).status_code == 302
    s.expire_all()
    sign = s.scalar(select(Event).where(Event.task_id == task.id, Event.action == "sign"))
    assert sign.membership_id == as_unit.id and sign.user_id == user.id


def test_the_task_page_says_why_an_expected_action_is_not_offered(client, world, s):
    task = world.assigned(channel=world.channels["中央生态环境保护督察"])
    world.advance(task, "verifying")
    s.commit()
    login(client, "sup_hn")
    _, html = page(client, f"/tasks/{task.id}")
    assert 'id="action-close"' not in html and "该任务须先经初验" in html
    login(client, "sup_xt")
    _, html = page(client, f"/tasks/{task.id}")
    assert 'id="action-pre_verify"' in html and 'id="action-close"' not in html


def test_a_supervisor_opens_a_pending_task_and_is_offered_assign_and_split(client, world, s):
    task = world.register()
    s.commit()
    login(client, "sup_xt")
    response, html = page(client, f"/tasks/{task.id}")
    assert response.status_code == 200
    assert 'id="action-assign"' in html and f"/tasks/{task.id}/split" in html
