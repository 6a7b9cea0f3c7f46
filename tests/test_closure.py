"""Closure integrity (严防虚假整改、表面整改、假装整改): the channel checklists (销号标准) administrators keep,
their enforcement in the ``close`` action, and the evidence flags a verifier sees."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.conftest import NOW, csrf_token, fake_file, login
from tests.snapshot import refused_and_unchanged
from tests.test_demo import DEMO_NOW
from tracker import closure, demo
from tracker.models import ClosureCriterion, Event, Membership, Task, User
from tracker.operations import ActionError, perform
from tracker.workflow import State

CHANNEL = "省级生态环境保护督察"  # the channel of world.register's tasks


def criterion_events(s, criterion) -> list[Event]:
    return list(s.scalars(select(Event).where(Event.entity == "closure_criterion", Event.entity_id == criterion.id)
                          .order_by(Event.id)))


@pytest.fixture
def checklist(s, world):
    """The 省级督察 checklist: measures done, photos before and after, published without objection."""
    channel, admin = world.channels[CHANNEL], world.m["admin_hn"]
    items = [
        closure.add_criterion(s, admin, NOW, channel, "整改措施全部落实，达到整改目标"),
        closure.add_criterion(s, admin, NOW, channel, "整改前、整改后现场照片齐全", ["after", "before"]),
        closure.add_criterion(s, admin, NOW, channel, "整改情况已公示，无异议"),
    ]
    s.commit()
    return items


def verifying(world, title="双马填埋场渗滤液处理不到位", region="雨湖区", lead="雨湖区人民政府", lead_user="unit_yh",
              files=None) -> Task:
    task = world.assigned(title=title, region=region, lead=lead)
    files = files or [fake_file("before", "整改前调节池照片.jpg", b"before-" + title.encode()),
                      fake_file("after", "整改后调节池照片.jpg", b"after-" + title.encode())]
    return world.advance(task, "verifying", lead_user=lead_user, files=files)


# --- the checklist, kept by administrators ------------------------------------------------------------


def test_admin_adds_edits_reorders_and_stops_items_and_each_change_is_recorded(s, world, checklist):
    admin, first, photos, published = world.m["admin_hn"], *checklist
    assert [c.position for c in checklist] == [1, 2, 3]
    assert photos.required_kinds == ["before", "after"]  # kept in the order of EVIDENCE_KINDS
    closure.edit_criterion(s, admin, NOW, photos, "整改前、整改后现场照片齐全且同一角度",
                           ["before", "after", "monitoring"])
    closure.move_criterion(s, admin, NOW, published, -1)
    closure.set_criterion_active(s, admin, NOW, first, False)
    s.commit()
    channel_id = world.channels[CHANNEL].id
    assert [c.text for c in closure.criteria(s, channel_id)] == [
        "整改情况已公示，无异议", "整改前、整改后现场照片齐全且同一角度"]
    assert len(closure.criteria(s, channel_id, include_inactive=True)) == 3
    edited = criterion_events(s, photos)
    assert [e.action for e in edited] == ["create", "edit"]
    assert edited[-1].data["before"]["required_kinds"] == ["before", "after"]
    assert edited[-1].data["after"]["required_kinds"] == ["before", "after", "monitoring"]
    assert [e.action for e in criterion_events(s, first)] == ["create", "deactivate"]
    assert criterion_events(s, published)[-1].data["order"][1] == "整改情况已公示，无异议"
    assert all(e.membership_id == admin.id for e in edited)


@pytest.mark.parametrize(("who", "call", "message"), [
    ("admin_zz", lambda s, m, ch, items: closure.add_criterion(s, m, NOW, ch, "验收意见书"), "只有省级管理员"),
    ("sup_hn", lambda s, m, ch, items: closure.set_criterion_active(s, m, NOW, items[0], False), "只有省级管理员"),
    ("admin_hn", lambda s, m, ch, items: closure.add_criterion(s, m, NOW, ch, "  "), "请填写销号标准的内容"),
    ("admin_hn", lambda s, m, ch, items: closure.add_criterion(s, m, NOW, ch, "整改情况已公示，无异议"), "已有"),
    ("admin_hn", lambda s, m, ch, items: closure.add_criterion(s, m, NOW, ch, "航拍", ["aerial"]), "类型“aerial”无效"),
    ("admin_hn", lambda s, m, ch, items: closure.move_criterion(s, m, NOW, items[0], -1), "已在最前"),
    ("admin_hn", lambda s, m, ch, items: closure.move_criterion(s, m, NOW, items[2], 1), "已在最后"),
    ("admin_hn", lambda s, m, ch, items: closure.edit_criterion(s, m, NOW, items[0], "整改情况已公示，无异议"), "已有"),
])
def test_bad_checklist_changes_are_refused_and_change_nothing(s, world, checklist, who, call, message):
    before = [(c.text, c.position, c.active, list(c.required_kinds)) for c in checklist]
    events = s.scalars(select(Event.id).where(Event.entity == "closure_criterion")).all()
    with pytest.raises(ActionError, match=message):
        call(s, world.m[who], world.channels[CHANNEL], checklist)
    s.rollback()
    assert [(c.text, c.position, c.active, list(c.required_kinds)) for c in checklist] == before
    assert s.scalars(select(Event.id).where(Event.entity == "closure_criterion")).all() == events


# --- enforced by the close action ----------------------------------------------------------------------


def test_close_without_ticking_every_item_is_refused_naming_what_is_missing(s, world, checklist):
    task = verifying(world)
    refused_and_unchanged(s, task, "请逐项核对销号标准，尚未勾选：整改前、整改后现场照片齐全；整改情况已公示，无异议",
                          perform, s, task, "close", world.m["sup_hn"], NOW, opinion="同意销号",
                          checklist=[checklist[0].id])
    refused_and_unchanged(s, task, "尚未勾选：整改措施全部落实", perform, s, task, "close", world.m["sup_hn"], NOW,
                          opinion="同意销号")


def test_close_with_a_missing_evidence_kind_is_refused_even_when_everything_is_ticked(s, world, checklist):
    task = verifying(world, files=[fake_file("after", "整改后现场照片.jpg", b"after-only")])
    ids = [c.id for c in checklist]
    refused_and_unchanged(s, task, "佐证材料不齐，不能销号：“整改前、整改后现场照片齐全”缺少整改前材料",
                          perform, s, task, "close", world.m["sup_hn"], NOW, opinion="同意销号", checklist=ids)
    # The verifier's own upload in the close form counts.
    perform(s, task, "close", world.m["sup_hn"], NOW, opinion="同意销号", checklist=ids,
            files=[fake_file("before", "整改前现场照片（档案调取）.jpg", b"archive-before")])
    assert task.state == State.closed


def test_a_foreign_or_stopped_item_cannot_be_ticked(s, world, checklist):
    task = verifying(world)
    other = closure.add_criterion(s, world.m["admin_hn"], NOW, world.channels["信访件"], "信访人对整改结果满意")
    closure.set_criterion_active(s, world.m["admin_hn"], NOW, checklist[2], False)
    s.commit()
    refused_and_unchanged(s, task, "不属于该问题来源或已停用", perform, s, task, "close", world.m["sup_hn"], NOW,
                          opinion="同意", checklist=[checklist[0].id, checklist[1].id, other.id])
    refused_and_unchanged(s, task, "不属于该问题来源或已停用", perform, s, task, "close", world.m["sup_hn"], NOW,
                          opinion="同意", checklist=[c.id for c in checklist])
    # The stopped item is no longer asked for.
    perform(s, task, "close", world.m["sup_hn"], NOW, opinion="同意", checklist=[checklist[0].id, checklist[1].id])
    assert task.state == State.closed


def test_a_complete_close_records_the_checklist_and_the_flags_shown(s, world, checklist):
    first = verifying(world, title="涓水直排口污水直排")
    reused = fake_file("after", "整改后排口照片.jpg", b"after-" + "涓水直排口污水直排".encode())  # first's photo again
    second = verifying(world, title="湘乡皮革工业园废水超标", region="湘乡市", lead="湘乡市人民政府",
                       lead_user="unit_xx", files=[fake_file("before", "整改前照片.jpg", b"before-pige"), reused])
    s.commit()
    perform(s, second, "close", world.m["sup_hn"], NOW, opinion="同意销号", checklist=[str(c.id) for c in checklist])
    event = s.scalars(select(Event).where(Event.task_id == second.id).order_by(Event.id.desc())).first()
    assert event.action == "close"
    assert event.data["checklist"] == [{"id": c.id, "text": c.text} for c in checklist]
    assert event.data["flags"] == [f"整改后材料“整改后排口照片.jpg”与任务{first.code}“涓水直排口污水直排”的整改后材料"
                                   "“整改后调节池照片.jpg”完全相同（SHA-256一致）"]


def test_tasks_of_a_channel_without_a_checklist_close_as_before(s, world, checklist):
    task = world.assigned(channel=world.channels["信访件"])
    world.advance(task, "closed")
    assert task.state == State.closed
    assert closure.checklist_for(s, task) == []


# --- flags --------------------------------------------------------------------------------------------------


def test_duplicate_evidence_is_named_only_to_those_who_can_see_the_other_task(s, world):
    photo = b"the-same-photo"
    yuhu = verifying(world, files=[fake_file("after", "整改后现场照片.jpg", photo)])
    xiangxiang = verifying(world, title="湘乡皮革工业园废水超标", region="湘乡市", lead="湘乡市人民政府",
                           lead_user="unit_xx", files=[fake_file("after", "整改后厂区照片.jpg", photo)])
    s.commit()
    [seen] = closure.evidence_flags(s, world.m["sup_xt"], yuhu)
    assert (seen.kind, seen.other_task, seen.hidden, seen.other_name) == (
        "duplicate", xiangxiang, False, "整改后厂区照片.jpg")
    [hidden] = closure.evidence_flags(s, world.m["sup_yh"], yuhu)  # 雨湖区 cannot see 湘乡市
    assert (hidden.kind, hidden.other_task, hidden.hidden, hidden.other_name) == ("duplicate", None, True, "")
    assert "湘乡" not in hidden.message and "管辖范围以外" in hidden.message


def test_an_after_photo_equal_to_a_before_photo_is_flagged(s, world):
    same = b"unchanged-site"
    task = verifying(world, files=[fake_file("before", "整改前.jpg", same), fake_file("after", "整改后.jpg", same),
                                   fake_file("document", "验收报告.pdf", b"report")])
    s.commit()
    flags = closure.evidence_flags(s, world.m["sup_xt"], task)
    assert [(f.kind, f.evidence_name, f.other_name) for f in flags] == [("after_is_before", "整改后.jpg", "整改前.jpg")]
    assert closure.evidence_flags(s, world.m["sup_xt"], verifying(world, title="另一处排口")) == []


def test_checklist_for_says_which_kinds_are_missing(s, world, checklist):
    task = verifying(world, files=[fake_file("after", "整改后.jpg", b"a")])
    items = closure.checklist_for(s, task)
    assert [(i.text, i.missing_kinds) for i in items] == [
        ("整改措施全部落实，达到整改目标", []), ("整改前、整改后现场照片齐全", ["before"]),
        ("整改情况已公示，无异议", [])]
    assert [i.ready for i in closure.checklist_for(s, task, {"before"})] == [True, True, True]


# --- pages ----------------------------------------------------------------------------------------------------


def test_the_close_form_offers_the_checklist_with_the_flags_above_it(client, s, world, checklist):
    photo = b"reused-photo"
    verifying(world, title="涓水直排口污水直排", files=[fake_file("before", "前.jpg", b"b1"),
                                                     fake_file("after", "整改后排口照片.jpg", photo)])
    task = verifying(world, files=[fake_file("before", "前.jpg", b"b2"), fake_file("after", "整改后照片.jpg", photo)])
    s.commit()
    login(client, "sup_hn")
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "佐证材料存疑" in html and "涓水直排口污水直排" in html
    assert html.index("佐证材料存疑") < html.index('id="closure-checklist"')
    for c in checklist:
        assert f'name="close-checklist" value="{c.id}"' in html
    form = {"close-csrf_token": csrf_token(html), "close-version": str(task.version), "close-opinion": "同意",
            "close-closed_on": "2026-03-02", "close-verifier_unit_id": "0", "close-evidence_kind": "after",
            "close-checklist": [str(checklist[0].id)]}
    refused = client.post(f"/tasks/{task.id}/act/close", data=form)
    assert refused.status_code == 400
    assert "请逐项核对销号标准，尚未勾选" in refused.get_data(as_text=True)
    s.expire_all()
    assert s.get(Task, task.id).state == State.verifying
    form["close-checklist"] = [str(c.id) for c in checklist]
    assert client.post(f"/tasks/{task.id}/act/close", data=form).status_code == 302
    s.expire_all()
    assert s.get(Task, task.id).state == State.closed


def test_admins_keep_the_checklist_on_its_page(client, s, world, checklist):
    channel = world.channels[CHANNEL]
    login(client, "admin_hn")
    assert 'href="/admin/closure"' in client.get("/todo").get_data(as_text=True)  # in the admin menu
    html = client.get(f"/admin/closure?channel={channel.id}").get_data(as_text=True)
    assert "整改前、整改后现场照片齐全" in html and "添加销号标准" in html
    token = csrf_token(html)
    added = client.post(f"/admin/closure/{channel.id}", data={"csrf_token": token, "new-text": "验收意见书已出具",
                                                               "new-required_kinds": ["document"]})
    assert added.status_code == 302
    client.post(f"/admin/closure/criteria/{checklist[0].id}/active/0", data={"csrf_token": token})
    client.post(f"/admin/closure/criteria/{checklist[2].id}/move/up", data={"csrf_token": token})
    s.expire_all()
    assert [(c.text, c.required_kinds) for c in closure.criteria(s, channel.id)] == [
        ("整改情况已公示，无异议", []), ("整改前、整改后现场照片齐全", ["before", "after"]),
        ("验收意见书已出具", ["document"])]


def test_a_city_admin_reads_the_checklist_but_cannot_change_it(client, s, world, checklist):
    login(client, "admin_zz")
    html = client.get("/admin/closure").get_data(as_text=True)
    assert "由省级管理员维护" in html and "添加销号标准" not in html
    client.post(f"/admin/closure/criteria/{checklist[0].id}/active/0", data={"csrf_token": csrf_token(html)})
    s.expire_all()
    assert s.get(ClosureCriterion, checklist[0].id).active is True


@pytest.mark.parametrize("username", ["sup_hn", "unit_yh", "viewer_xt"])
def test_only_admins_open_the_checklist_page(client, world, username):
    login(client, username)
    assert client.get("/admin/closure").status_code == 403


def test_closed_on_is_still_checked_before_the_checklist(s, world, checklist):
    task = verifying(world)
    refused_and_unchanged(s, task, "销号日期不能晚于今天", perform, s, task, "close", world.m["sup_hn"], NOW,
                          opinion="同意", closed_on=dt.date(2026, 3, 3), checklist=[c.id for c in checklist])


# --- the demo -------------------------------------------------------------------------------------------------


def test_the_demo_closes_xinbi_only_through_its_checklist_with_the_reused_photo_flagged(client, s, app):
    from_demo = demo.load(s, DEMO_NOW, hash_method=app.config["PASSWORD_HASH_METHOD"],
                          upload_folder=app.config["UPLOAD_FOLDER"])
    s.commit()
    assert from_demo.startswith("已载入演示数据")
    xinbi = s.scalars(select(Task).where(Task.code == "XT-ZY2-XF-023")).one()
    zhongcai = s.scalars(select(Task).where(Task.code == "XT-ZY2-XF-017")).one()
    assert (xinbi.state, xinbi.channel.name) == (State.verifying, "中央生态环境保护督察")
    assert [i.ready for i in closure.checklist_for(s, xinbi)] == [True] * 4
    login(client, "sheng_duban", demo.DEMO_PASSWORD)
    html = client.get(f"/tasks/{xinbi.id}").get_data(as_text=True)
    assert "佐证材料存疑" in html and f"/tasks/{zhongcai.id}" in html
    assert html.count('name="close-checklist"') == 4
    juanshui = s.scalars(select(Task).where(Task.code == "CJ2019-XT-03")).one()
    verifier = s.scalars(select(Membership).join(User).where(User.username == "sheng_duban")).one()
    flags = closure.evidence_flags(s, verifier, juanshui)
    assert [f.kind for f in flags] == ["after_is_before"]
