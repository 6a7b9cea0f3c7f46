"""The demo data (``tracker.demo``): built through the operations from the reference data alone, every
workflow state, real evidence files, history for every task, the closing rule, idempotent."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from tests.conftest import NOW, login
from tracker import demo
from tracker.models import (
    Complainant,
    Event,
    Evidence,
    Membership,
    Region,
    Task,
    TaskLink,
    Unit,
    User,
)
from tracker.operations import ActionError
from tracker.timeutil import SHANGHAI
from tracker.workflow import State

# A fixed "today" after the whole script (which ends in November 2026).
DEMO_NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.fixture
def uploads(app):
    return app.config["UPLOAD_FOLDER"]


@pytest.fixture
def loaded(s, app, uploads):
    summary = demo.load(s, DEMO_NOW, hash_method=app.config["PASSWORD_HASH_METHOD"], upload_folder=uploads)
    s.commit()
    return summary


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def task(s, code: str) -> Task:
    return s.scalars(select(Task).where(Task.code == code)).one()


def aware(instant: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC."""
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def test_summary_and_every_state(s, loaded):
    assert loaded.startswith("已载入演示数据")
    assert count(s, Task) >= 30
    states = {t.state for t in s.scalars(select(Task))}
    assert states == {st.value for st in State}


def test_demo_content_follows_the_seeds(s, loaded):
    titles = " ".join(s.scalars(select(Task.title)))
    for name in ("双马填埋场", "涓水", "湘乡皮革工业园", "中材日新矿", "鑫碧", "昭山", "黑臭水体", "铁合金渣场",
                 "港口码头", "下塞湖", "大鲵", "绿心", "南尧村", "九丰洞", "清水塘"):
        assert name in titles, name
    regions = {r.name: r for r in s.scalars(select(Region))}
    assert regions["湘潭高新区"].is_zone and regions["湘潭经开区"].is_zone and not regions["雨湖区"].is_zone
    assert regions["浯口镇"].parent.name == "平江县" and regions["平江县"].parent.name == "岳阳市"
    development = s.scalars(select(Unit).where(Unit.name == "湖南省发展和改革委员会")).one()
    assert "省发展改革委" in [a.alias for a in development.aliases]
    provincial = s.scalars(select(Unit).join(Region).where(Region.level == 0, Unit.kind == "department")).all()
    assert len(provincial) == 17
    assert {u.kind for u in s.scalars(select(Unit))} == {"coordinating", "department", "government", "enterprise",
                                                          "third_party"}


def test_split_parent_has_three_children_in_three_cities(s, loaded):
    parent = task(s, "ZY1H-HN-03")
    assert parent.title == "长株潭“绿心”违规建设"
    assert len(parent.children) == 3
    assert sorted(c.region.name for c in parent.children) == sorted(["长沙市", "株洲市", "湘潭市"])
    assert parent.state == State.rectifying.value
    assert {c.state for c in parent.children} == {"rectifying", "verifying", "closed"}


def test_evidence_files_exist_with_matching_hash(s, loaded, uploads):
    evidence = s.scalars(select(Evidence)).all()
    assert len(evidence) >= 30
    assert {e.kind for e in evidence} == {"before", "after", "document", "monitoring"}
    for e in evidence:
        content = (uploads / e.stored_name).read_bytes()
        assert len(content) == e.size
        assert hashlib.sha256(content).hexdigest() == e.sha256
        assert content.startswith(b"\x89PNG" if e.content_type == "image/png" else b"%PDF-")
    for t in s.scalars(select(Task).where(Task.closure_applied_on.is_not(None))):
        assert t.evidence, t.code


def test_every_task_has_history_and_none_of_it_after_now(s, loaded):
    for t in s.scalars(select(Task)):
        actions = s.scalars(select(Event.action).where(Event.task_id == t.id).order_by(Event.id)).all()
        assert actions and actions[0] == "register", t.code
    assert aware(s.scalar(select(func.max(Event.recorded_at)))) <= DEMO_NOW
    # The histories are played in time order, so the event log reads chronologically.
    times = [aware(at) for at in s.scalars(select(Event.recorded_at).order_by(Event.id))]
    assert times == sorted(times)
    assert s.scalar(select(func.max(Event.effective_on))) <= DEMO_NOW.astimezone(SHANGHAI).date()
    assert s.scalar(select(func.count()).select_from(Event).where(Event.entity == "user")) == len(demo.USERS)


def test_closing_rule_and_four_eyes_hold(s, loaded):
    """中央 / 长江 tasks: the city does 初验, the province closes; nobody of a lead or participant unit."""
    checked = 0
    for t in s.scalars(select(Task).where(Task.state == "closed", ~Task.children.any())):
        close = s.scalars(select(Event).where(Event.task_id == t.id, Event.action == "close")).one()
        involved = {tu.unit_id for tu in t.task_units}
        assert not {m.unit_id for m in close.membership.user.memberships} & involved, t.code
        if t.channel.closing_level == 0:
            pre = s.scalars(select(Event).where(Event.task_id == t.id, Event.action == "pre_verify")).one()
            assert pre.membership.unit.region.level == 1
            assert close.membership.unit.region.level == 0
            checked += 1
    assert checked >= 5


def test_overdue_reopened_merged_and_linked(s, loaded):
    today = DEMO_NOW.astimezone(SHANGHAI).date()
    overdue = s.scalars(select(Task).where(Task.state == "rectifying", Task.deadline < today)).all()
    assert len(overdue) >= 3
    reopened = s.scalars(select(Event).where(Event.action == "reopen")).one()
    assert s.get(Task, reopened.task_id).state == "rectifying"
    merged = s.scalars(select(Task).where(Task.merged_into_id.is_not(None))).one()
    assert merged.state == "cancelled" and merged.kind == "交办信访件"
    assert s.scalar(select(func.count()).select_from(TaskLink).where(TaskLink.kind == "similar")) >= 3
    complainant = s.get(Complainant, task(s, "XF-YH-0318").id)
    assert complainant.name and complainant.phone and complainant.content
    pre_verified = task(s, "XT-ZY2-XF-023")
    assert pre_verified.state == "verifying" and pre_verified.pre_verified_on is not None
    plan_waiting = task(s, "ZX-XT-05")
    assert plan_waiting.state == "signed" and plan_waiting.plan_submitted_on is not None


def test_logins(s, loaded):
    admin = s.scalars(select(User).where(User.username == "admin")).one()
    assert check_password_hash(admin.password_hash, demo.DEMO_PASSWORD)
    assert admin.memberships[0].role == "admin" and admin.memberships[0].unit.region.level == 0
    for username, label, unit_name in demo.DEMO_LOGINS:
        user = s.scalars(select(User).where(User.username == username)).one()
        assert unit_name in {m.unit.name for m in user.memberships}, username
        assert label
    assert s.scalar(select(func.count()).select_from(User).where(User.email.is_(None))) >= 1
    assert s.scalar(select(func.count()).select_from(Membership).where(
        Membership.user_id == select(User.id).where(User.username == "yuhu_duban").scalar_subquery())) == 2
    roles = {role for *_, memberships in demo.USERS for _, role in memberships}
    assert roles == {"admin", "supervisor", "unit", "viewer"}


def test_second_load_changes_nothing(s, app, loaded, uploads):
    before = (count(s, Task), count(s, Event), count(s, User), count(s, Evidence))
    files = sorted(p.name for p in uploads.iterdir())
    again = demo.load(s, DEMO_NOW, hash_method=app.config["PASSWORD_HASH_METHOD"], upload_folder=uploads)
    s.commit()
    assert again == demo.ALREADY_LOADED
    assert (count(s, Task), count(s, Event), count(s, User), count(s, Evidence)) == before
    assert sorted(p.name for p in uploads.iterdir()) == files


def test_an_earlier_now_moves_the_history_back(s, app, uploads):
    """With the tests' frozen 2026-03-02 nothing may lie in the future: the window moves a year back."""
    demo.load(s, NOW, hash_method=app.config["PASSWORD_HASH_METHOD"], upload_folder=uploads)
    s.commit()
    assert aware(s.scalar(select(func.max(Event.recorded_at)))) <= NOW
    assert {t.state for t in s.scalars(select(Task))} == {st.value for st in State}
    assert task(s, "CJ2019-XT-02").deadline_text == "2025年6月底前"


def test_a_refused_step_leaves_no_files_behind(s, app, uploads, monkeypatch):
    wushui = next(spec for spec in demo.TASKS if spec["key"] == "xinfang_wushui")
    # The lead unit may not close its own task (four-eyes): the load stops there.
    bad = {**wushui, "key": "bad", "code": "XF-YH-9999",
           "steps": [*wushui["steps"][:-1], ("2026-04-24", "lead", "close", {"opinion": "自己验收"})]}
    monkeypatch.setattr(demo, "TASKS", [*demo.TASKS, bad])
    with pytest.raises(ActionError):
        demo.load(s, DEMO_NOW, hash_method=app.config["PASSWORD_HASH_METHOD"], upload_folder=uploads)
    s.rollback()
    assert not uploads.exists() or not any(uploads.iterdir())
    assert count(s, Task) == 0


def test_upload_folder_is_required(s):
    with pytest.raises(ValueError):
        demo.load(s, DEMO_NOW)
    assert count(s, User) == 0


def test_demo_pages_render(client, loaded, s):
    login(client, "xiangtan_duban", demo.DEMO_PASSWORD)
    listing = client.get("/tasks")
    assert listing.status_code == 200
    assert "双马填埋场" in listing.get_data(as_text=True)
    shuangma = task(s, "CJ2019-XT-02")
    page = client.get(f"/tasks/{shuangma.id}")
    assert page.status_code == 200
    evidence = shuangma.evidence[0]
    download = client.get(f"/evidence/{evidence.id}")
    assert download.status_code == 200
    assert hashlib.sha256(download.data).hexdigest() == evidence.sha256
