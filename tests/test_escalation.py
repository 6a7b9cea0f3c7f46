"""The escalation scan (DESIGN §6): levels proposed or applied once per cycle, the lower ones implied,
one digest per recipient per scan through the outbox, reminders, the baseline of an imported task,
measures confirmed by hand, immediate notices, and scans run twice, dry or at the same moment.

A task assigned on 2026-03-02 with the deadline 2026-03-31 is 1 working day overdue on 1 April (函告),
10 on 15 April (通报), 20 on 29 April (督办), 40 on 29 May (挂牌督办) and 60 on 29 June (约谈).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.exc import IntegrityError

from tests.conftest import NOW, PASSWORD, fake_file
from tests.test_mail import Sink, free_port, start_server
from tracker import db as tracker_db
from tracker import escalation, notify, outbox
from tracker.accounts import NewUser, add_membership, create_user
from tracker.audit import ActionError
from tracker.models import (
    EscalationRecord,
    EscalationRule,
    Event,
    Notification,
    OutboxMail,
    ScanRun,
    Task,
    User,
)
from tracker.operations import perform
from tracker.timeutil import SHANGHAI

ROOT = Path(__file__).resolve().parent.parent
D = dt.date
DEADLINE = D(2026, 3, 31)
BASE_URL = "https://zhenggai.hn.example.cn"
DIGEST = "【整改督办】"


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI).astimezone(dt.UTC)


def run_scan(app, s, day: dt.date, *, force: bool = False, **kw) -> escalation.ScanSummary:
    """One scan of ``day`` as the scheduler runs it (in an app context), committed.

    ``force``: make every open task a candidate, so that only the records (not ``next_check_on``)
    can keep a level from being recorded twice."""
    if force:
        s.execute(update(Task).where(Task.state.not_in(["closed", "cancelled", "pending"])).values(next_check_on=day))
    with app.app_context():
        summary = escalation.scan(s, day, at(day), **kw)
    s.commit()
    s.expire_all()
    return summary


def rectifying(world, region="雨湖区", lead="雨湖区人民政府", lead_user="unit_yh", deadline=DEADLINE, **kw) -> Task:
    task = world.assigned(region=region, lead=lead, deadline=deadline, **kw)
    world.advance(task, "rectifying", lead_user=lead_user)
    world.s.commit()
    return task


def records(s, task: Task) -> dict[int, EscalationRecord]:
    rows = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == task.id)).all()
    assert len({(r.level, r.cycle_started_on) for r in rows}) == len(rows)
    return {r.level: r for r in rows}


def statuses(s, task: Task) -> dict[int, str]:
    return {level: r.status for level, r in sorted(records(s, task).items())}


def told(s, record: EscalationRecord) -> set[str]:
    return set(s.scalars(select(User.username).join(Notification, Notification.user_id == User.id)
                         .where(Notification.record_id == record.id)))


def digests(s) -> list[OutboxMail]:
    return list(s.scalars(select(OutboxMail).where(OutboxMail.subject.startswith(DIGEST)).order_by(OutboxMail.id)))


def digest_counts(s) -> Counter:
    return Counter(address for mail in digests(s) for address in mail.recipients)


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def no_email(s, username: str) -> None:
    s.execute(update(User).where(User.username == username).values(email=None))
    s.commit()


# --- the ladder in a scan --------------------------------------------------------------------------


@pytest.mark.parametrize(("region", "lead", "lead_user", "day", "top", "deciding", "recipients"), [
    ("雨湖区", "雨湖区人民政府", "unit_yh", D(2026, 4, 29), 4, "雨湖区", {"unit_yh", "sup_yh"}),
    # 湘乡市 has no supervisors of its own: the nearest going up are 湘潭市's.
    ("湘乡市", "湘乡市人民政府", "unit_xx", D(2026, 4, 29), 4, "湘潭市", {"unit_xx", "sup_xt"}),
    # 挂牌督办 and 约谈 are decided by the level above the task's region, told to the nearest as well.
    ("雨湖区", "雨湖区人民政府", "unit_yh", D(2026, 5, 29), 5, "湘潭市", {"unit_yh", "sup_yh", "sup_xt"}),
    ("雨湖区", "雨湖区人民政府", "unit_yh", D(2026, 6, 29), 6, "湘潭市", {"unit_yh", "sup_yh", "sup_xt"}),
])
def test_past_several_thresholds_at_once_only_the_highest_is_proposed_and_told(
        app, s, world, region, lead, lead_user, day, top, deciding, recipients):
    task = rectifying(world, region, lead, lead_user)
    version = task.version

    summary = run_scan(app, s, day)

    found = records(s, task)
    assert {level: r.status for level, r in found.items() if level >= 1} == {
        **{level: "implied" for level in range(1, top)}, top: "proposed"}
    proposed = found[top]
    assert proposed.deciding_region_id == world.regions[deciding].id
    assert (proposed.scan_date, proposed.cycle_started_on) == (day, NOW.date())
    assert proposed.reason == f"逾期{proposed.overdue_workdays}个工作日"
    assert told(s, proposed) == recipients
    for level in range(1, top):
        assert told(s, found[level]) == set()  # implied levels tell no one
    notes = s.scalars(select(Notification).where(Notification.kind == "escalation")).all()
    assert {n.record_id for n in notes} == {proposed.id} and len(notes) == len(recipients)
    assert escalation.open_proposals(s, world.regions[deciding]) == 1
    task = s.get(Task, task.id)
    assert (task.escalation_level, task.version) == (0, version)  # a proposal is not in force yet
    assert summary.levels == Counter({proposed_name(s, top): 1}) and summary.implied == top - 1
    assert set(digest_counts(s)) == {f"{u}@example.cn" for u in recipients}


def proposed_name(s, level: int) -> str:
    return s.get(EscalationRule, level).name


def test_warning_is_applied_by_the_scan_and_the_next_levels_proposed_one_by_one(app, s, world):
    task = rectifying(world)
    version = task.version

    run_scan(app, s, D(2026, 3, 23))  # 6 working days left: nothing yet
    assert statuses(s, task) == {}
    run_scan(app, s, D(2026, 3, 24))  # 5 working days left

    warning = records(s, task)[1]
    assert (warning.status, warning.reason) == ("applied", "距整改时限不超过5个工作日")
    assert told(s, warning) == {"unit_yh", "sup_yh"}
    task = s.get(Task, task.id)
    assert (task.escalation_level, task.version) == (1, version)  # set by the scan, not an edit

    run_scan(app, s, D(2026, 4, 1))
    run_scan(app, s, D(2026, 4, 15))

    found = records(s, task)
    assert {level: found[level].status for level in (1, 2, 3)} == {1: "applied", 2: "proposed", 3: "proposed"}
    assert (found[2].overdue_workdays, found[3].overdue_workdays) == (1, 10)
    assert told(s, found[2]) == told(s, found[3]) == {"unit_yh", "sup_yh"}
    assert s.get(Task, task.id).escalation_level == 1


def test_a_level_an_admin_set_to_apply_automatically_takes_effect_in_the_scan(app, s, world):
    s.execute(update(EscalationRule).where(EscalationRule.level == 2).values(mode="auto"))
    task = rectifying(world)
    run_scan(app, s, D(2026, 4, 1))
    assert statuses(s, task)[2] == "applied"
    assert s.get(Task, task.id).escalation_level == 2


def test_the_same_scan_twice_records_and_mails_nothing_new_nor_does_a_quiet_next_day(app, s, world):
    task = rectifying(world)
    first = run_scan(app, s, D(2026, 4, 15))
    assert first.mails == 2 and first.levels == Counter({"通报": 1})
    before = (statuses(s, task), count(s, Notification), count(s, OutboxMail))

    again = run_scan(app, s, D(2026, 4, 15), force=True)

    assert (again.levels, again.implied, again.reminders, again.notifications, again.mails) == (Counter(), 0, 0, 0, 0)
    assert (statuses(s, task), count(s, Notification), count(s, OutboxMail)) == before
    assert s.get(ScanRun, D(2026, 4, 15)).runs == 2

    next_day = run_scan(app, s, D(2026, 4, 16), force=True)  # 11 working days: no threshold, same period

    assert (next_day.mails, next_day.notifications) == (0, 0)
    assert (statuses(s, task), count(s, Notification), count(s, OutboxMail)) == before


def test_one_digest_per_recipient_per_scan_holds_all_their_items(app, s, world):
    app.config["BASE_URL"] = BASE_URL
    first = rectifying(world, title="双马填埋场渗滤液处理不到位")
    second = rectifying(world, title="雨湖区黑臭水体整治不到位")
    other = rectifying(world, "湘乡市", "湘乡市人民政府", "unit_xx", title="湘乡市工业园区污水直排")
    quiet = create_user(s, None, NOW, NewUser("unit_yh_liaison", "雨湖区联络员", PASSWORD, ""),
                        world.units["雨湖区人民政府"], "unit", hash_method="pbkdf2:sha256:1000")
    s.commit()

    summary = run_scan(app, s, D(2026, 4, 1))

    assert digest_counts(s) == Counter({"unit_yh@example.cn": 1, "sup_yh@example.cn": 1, "unit_xx@example.cn": 1,
                                        "sup_xt@example.cn": 1})
    assert summary.mails == 4
    mails = {m.recipients[0]: m for m in digests(s)}
    unit_mail, sup_mail = mails["unit_yh@example.cn"], mails["sup_yh@example.cn"]
    # 函告 for both tasks, and 催报 (nothing reported since 26 March) to the unit.
    assert unit_mail.subject == "【整改督办】2026-04-01 4项任务需关注（催报、函告）"
    assert sup_mail.subject == "【整改督办】2026-04-01 2项任务需关注（函告）"
    for task in (first, second):
        assert f"[函告] {task.code} {task.title}（雨湖区）" in unit_mail.text
        link = f"{BASE_URL}/tasks/{task.id}"
        assert link in unit_mail.text and f'href="{link}"' in unit_mail.html
        assert f"[函告]（请确认督办措施） {task.code} {task.title}（雨湖区）" in sup_mail.text  # the deciders
        assert f"[催报] {task.code}" in unit_mail.text and f"[催报] {task.code}" not in sup_mail.text
    assert "请确认督办措施" not in unit_mail.text  # the unit does not decide its own 函告
    assert "原因：逾期1个工作日；整改时限：2026-03-31，已逾期1个工作日" in unit_mail.text
    assert unit_mail.text.startswith("unit_yh：")
    assert other.title not in unit_mail.text and first.title not in mails["unit_xx@example.cn"].text
    # Someone without an address is told in the app only, and marked as told.
    notes = s.scalars(select(Notification).where(Notification.user_id == quiet.id)).all()
    assert len(notes) == 4 and all(n.notified_at is not None for n in notes)
    assert not any(None in m.recipients or "" in m.recipients for m in digests(s))
    assert s.scalar(select(func.count()).select_from(Notification).where(Notification.notified_at.is_(None))) == 0


def test_no_one_with_an_address_in_the_lead_unit_is_shown_as_unreachable(s, world):
    task = rectifying(world)
    province = world.regions["湖南省"]
    assert notify.unreachable_units(s, province) == []
    no_email(s, "unit_yh")
    assert notify.unreachable_units(s, province) == [world.units["雨湖区人民政府"]]
    assert notify.unreachable_units(s, world.regions["株洲市"]) == []
    perform(s, s.get(Task, task.id), "cancel", world.m["sup_xt"], NOW, reason="重复登记")
    assert notify.unreachable_units(s, province) == []  # no open task: nothing to reach


# --- cycles --------------------------------------------------------------------------------------


def test_an_approved_extension_starts_a_new_cycle_in_which_the_levels_come_again(app, s, world):
    task = rectifying(world)
    run_scan(app, s, D(2026, 3, 24))
    assert statuses(s, task) == {1: "applied"}
    perform(s, task, "request_extension", world.m["unit_yh"], at(D(2026, 3, 25)), reason="雨季施工受阻",
            new_deadline=D(2026, 6, 30))
    perform(s, task, "decide_extension", world.m["sup_xt"], at(D(2026, 3, 26)), decision="approve")
    s.commit()

    run_scan(app, s, D(2026, 6, 23))  # 5 working days before the new deadline
    run_scan(app, s, D(2026, 7, 1))

    rows = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == task.id, EscalationRecord.level >= 1)
                     .order_by(EscalationRecord.id)).all()
    assert [(r.level, r.cycle_started_on, r.status) for r in rows] == [
        (1, D(2026, 3, 2), "applied"), (1, D(2026, 3, 26), "applied"), (2, D(2026, 3, 26), "proposed")]
    assert told(s, rows[1]) == {"unit_yh", "sup_yh"}


def test_a_deadline_change_starts_a_new_cycle_but_within_a_cycle_a_level_is_recorded_once(app, s, world):
    task = rectifying(world)
    run_scan(app, s, D(2026, 4, 1))
    perform(s, task, "change_deadline", world.m["sup_xt"], at(D(2026, 4, 2)), reason="省里统一调整",
            deadline=D(2026, 4, 30))
    s.commit()

    run_scan(app, s, D(2026, 5, 6))  # the first working day after the 劳动节 holiday

    rows = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == task.id, EscalationRecord.level >= 1)
                     .order_by(EscalationRecord.id)).all()
    assert [(r.level, r.cycle_started_on, r.status) for r in rows] == [
        (1, D(2026, 3, 2), "implied"), (2, D(2026, 3, 2), "proposed"),
        (1, D(2026, 4, 2), "implied"), (2, D(2026, 4, 2), "proposed")]
    assert told(s, rows[3]) == {"unit_yh", "sup_yh"}

    total = count(s, EscalationRecord)
    s.add(EscalationRecord(task_id=task.id, level=2, cycle_started_on=D(2026, 4, 2), status="proposed"))
    with pytest.raises(IntegrityError):
        s.flush()
    s.rollback()
    assert count(s, EscalationRecord) == total


# --- measures confirmed by hand --------------------------------------------------------------------


def test_confirming_a_proposed_hangao_with_its_doc_no_puts_it_in_force_and_tells_the_unit(app, s, world):
    task = rectifying(world)
    run_scan(app, s, D(2026, 4, 1))
    task = s.get(Task, task.id)
    mails_before, version = count(s, OutboxMail), task.version
    day = D(2026, 4, 2)

    with pytest.raises(ActionError, match="^函告须填写文号$"):
        perform(s, task, "confirm_measure", world.m["sup_yh"], at(day), level=2, doc_no="  ")
    s.rollback()
    s.expire_all()
    assert statuses(s, task)[2] == "proposed" and s.get(Task, task.id).escalation_level == 0
    assert s.scalar(select(Event).where(Event.action == "confirm_measure")) is None
    assert count(s, OutboxMail) == mails_before

    perform(s, task, "confirm_measure", world.m["sup_yh"], at(day), level=2, doc_no=" 雨督函〔2026〕5号 ",
            note="限期十日内整改到位")
    s.commit()
    s.expire_all()

    record = records(s, task)[2]
    assert (record.status, record.doc_no, record.decided_on, record.membership_id) == (
        "confirmed", "雨督函〔2026〕5号", day, world.m["sup_yh"].id)
    task = s.get(Task, task.id)
    assert task.escalation_level == 2 and task.version > version  # an action, unlike the scan
    event = s.scalar(select(Event).where(Event.action == "confirm_measure"))
    assert (event.task_id, event.data["measure"], event.data["doc_no"]) == (task.id, "函告", "雨督函〔2026〕5号")
    assert escalation.open_proposals(s, world.regions["雨湖区"]) == 0
    notices = s.scalars(select(Notification).where(Notification.kind == "notice",
                                                   Notification.title.startswith("【督办措施】"))).all()
    assert [n.user_id for n in notices] == [world.user("unit_yh").id]
    assert "措施：函告；文号：雨督函〔2026〕5号" in notices[0].body
    [mail] = s.scalars(select(OutboxMail).where(OutboxMail.subject.startswith("【督办措施】"))).all()
    assert mail.recipients == ["unit_yh@example.cn"] and "雨督函〔2026〕5号" in mail.text

    with pytest.raises(ActionError, match="本轮已函告"):
        perform(s, task, "confirm_measure", world.m["sup_yh"], at(day), level=2, doc_no="雨督函〔2026〕6号")
    s.rollback()


def test_guapai_is_decided_by_the_level_above_the_tasks_region(app, s, world):
    task = rectifying(world)
    run_scan(app, s, D(2026, 5, 29))
    assert statuses(s, task)[5] == "proposed"
    task = s.get(Task, task.id)

    with pytest.raises(ActionError, match="^挂牌督办须由上一级决定$"):
        perform(s, task, "confirm_measure", world.m["sup_yh"], at(D(2026, 6, 1)), level=5, doc_no="雨督〔2026〕1号")
    s.rollback()
    s.expire_all()
    assert statuses(s, task)[5] == "proposed" and s.get(Task, task.id).escalation_level == 0

    perform(s, s.get(Task, task.id), "confirm_measure", world.m["sup_xt"], at(D(2026, 6, 1)), level=5,
            doc_no="潭督〔2026〕8号")
    s.commit()
    s.expire_all()
    assert statuses(s, task)[5] == "confirmed" and s.get(Task, task.id).escalation_level == 5
    assert escalation.open_proposals(s, world.regions["湘潭市"]) == 0


def test_a_measure_confirmed_by_hand_is_not_proposed_again_nor_anything_below_it(app, s, world):
    task = rectifying(world)
    perform(s, task, "confirm_measure", world.m["sup_xt"], at(D(2026, 3, 20)), level=4, doc_no="潭督〔2026〕2号")
    s.commit()

    run_scan(app, s, D(2026, 4, 1))
    run_scan(app, s, D(2026, 4, 29))

    assert {level: r.status for level, r in records(s, task).items() if level >= 1} == {
        1: "implied", 2: "implied", 3: "implied", 4: "confirmed"}
    assert s.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "escalation")) == 0

    run_scan(app, s, D(2026, 5, 29))
    assert statuses(s, task)[5] == "proposed"


def test_only_a_province_supervisor_restricts_a_region(s, world):
    county = world.regions["雨湖区"]
    for who in ("sup_xt", "admin_hn"):
        with pytest.raises(ActionError, match="区域限批只能由省级督办人员决定"):
            escalation.restrict_region(s, world.m[who], NOW, county, "湘环〔2026〕1号")
    with pytest.raises(ActionError, match="请填写文号"):
        escalation.restrict_region(s, world.m["sup_hn"], NOW, county, " ")
    with pytest.raises(ActionError, match="区域限批须针对市州或县市区"):
        escalation.restrict_region(s, world.m["sup_hn"], NOW, world.regions["湖南省"], "湘环〔2026〕1号")
    s.rollback()
    assert count(s, EscalationRecord) == 0

    record = escalation.restrict_region(s, world.m["sup_hn"], NOW, county, " 湘环〔2026〕1号 ", "黑臭水体反弹")
    s.commit()

    assert (record.task_id, record.region_id, record.level, record.status, record.doc_no, record.decided_on) == (
        None, county.id, 8, "confirmed", "湘环〔2026〕1号", NOW.date())
    event = s.scalar(select(Event).where(Event.action == "restrict_region"))
    assert (event.entity, event.entity_id, event.data["doc_no"]) == ("region", county.id, "湘环〔2026〕1号")
    task = rectifying(world)
    with pytest.raises(ActionError, match="请选择督办措施"):  # not a measure on a task
        perform(s, task, "confirm_measure", world.m["sup_hn"], NOW, level=8, doc_no="湘环〔2026〕2号")
    s.rollback()


# --- reminders ------------------------------------------------------------------------------------


def test_a_verifying_task_is_not_escalated_and_its_supervisors_are_reminded_once(app, s, world):
    task = world.advance(world.assigned(deadline=DEADLINE), "verifying")  # 申请销号 on 2 March
    s.commit()

    run_scan(app, s, D(2026, 3, 16), force=True)  # 10 working days: not more than 10 yet
    assert statuses(s, task) == {}
    run_scan(app, s, D(2026, 3, 17))

    reminder = records(s, task)[0]
    assert (reminder.status, reminder.cycle_started_on, reminder.reason) == (
        "applied", D(2026, 3, 2), "申请销号已11个工作日未验收")
    assert told(s, reminder) == {"sup_yh"}
    assert digest_counts(s) == Counter({"sup_yh@example.cn": 1})
    [mail] = digests(s)
    assert "[验收提醒]" in mail.text and "请确认" not in mail.text

    run_scan(app, s, D(2026, 3, 18), force=True)
    run_scan(app, s, D(2026, 6, 29), force=True)  # 60 working days past the deadline, still waiting for 验收

    assert statuses(s, task) == {0: "applied"}
    assert s.get(Task, task.id).escalation_level == 0
    assert digest_counts(s) == Counter({"sup_yh@example.cn": 1})


def test_cuibao_reminds_the_lead_unit_once_per_reporting_period(app, s, world):
    task = rectifying(world, deadline=D(2026, 12, 31))  # plan approved 2 March: reported this period

    run_scan(app, s, D(2026, 3, 25), force=True)
    assert statuses(s, task) == {}
    run_scan(app, s, D(2026, 3, 26))  # the period 26 March – 25 April begins

    reminder = records(s, task)[-1]
    assert (reminder.status, reminder.cycle_started_on, reminder.reason) == (
        "applied", D(2026, 3, 26), "本期未报送整改进展")
    assert told(s, reminder) == {"unit_yh"}
    assert digest_counts(s) == Counter({"unit_yh@example.cn": 1})

    run_scan(app, s, D(2026, 4, 10), force=True)
    assert digest_counts(s) == Counter({"unit_yh@example.cn": 1})

    run_scan(app, s, D(2026, 4, 27))  # the next period

    assert [r.cycle_started_on for r in s.scalars(select(EscalationRecord).order_by(EscalationRecord.id))] == [
        D(2026, 3, 26), D(2026, 4, 26)]
    assert digest_counts(s) == Counter({"unit_yh@example.cn": 2})


def test_baseline_records_an_imported_tasks_levels_without_telling_anyone(app, s, world):
    task = rectifying(world)
    mails = count(s, OutboxMail)

    assert escalation.baseline(s, task, D(2026, 4, 29)) == 5  # 预警 … 督办, and 催报 for this period
    s.commit()

    assert statuses(s, task) == {-1: "baseline", 1: "baseline", 2: "baseline", 3: "baseline", 4: "baseline"}
    assert s.scalar(select(func.count()).select_from(Notification).where(Notification.record_id.is_not(None))) == 0

    summary = run_scan(app, s, D(2026, 4, 29), force=True)

    assert (summary.levels, summary.mails) == (Counter(), 0) and count(s, OutboxMail) == mails
    assert escalation.baseline(s, task, D(2026, 4, 29)) == 0  # nothing twice

    run_scan(app, s, D(2026, 5, 29))  # from here on the ladder goes on as usual
    assert statuses(s, task)[5] == "proposed"
    assert digest_counts(s) == Counter({"unit_yh@example.cn": 1, "sup_yh@example.cn": 1, "sup_xt@example.cn": 1})


# --- immediate notices -----------------------------------------------------------------------------


def notices(s, title_prefix: str) -> dict[str, tuple[bool, list[str]]]:
    """username -> (marked as told, mail recipients of that user's notice mails)."""
    result = {}
    for note in s.scalars(select(Notification).where(Notification.kind == "notice",
                                                     Notification.title.startswith(title_prefix))):
        user = s.get(User, note.user_id)
        mails = s.scalars(select(OutboxMail).where(OutboxMail.subject.startswith(title_prefix))).all()
        result[user.username] = (note.notified_at is not None,
                                 [m.recipients[0] for m in mails if m.recipients == [user.email]])
    return result


def test_assignment_tells_the_lead_units_users_at_once_by_message_and_mail(s, world):
    no_email(s, "unit_xx")
    task = world.assigned(lead="雨湖区人民政府", participants=["湘乡市人民政府"])
    world.assigned(lead="湘乡市人民政府", title="湘乡市工业园区污水直排")
    s.commit()

    assert notices(s, "【交办】" + task.code + " 双马") == {"unit_yh": (True, ["unit_yh@example.cn"])}
    assert notices(s, "【交办】2026-0002") == {"unit_xx": (True, [])}  # no address: the 消息 alone
    [mail] = s.scalars(select(OutboxMail)).all()
    assert mail.subject == f"【交办】{task.code} 双马填埋场渗滤液处理不到位"
    assert "湘潭市突出环境问题整改办公室对整改任务" in mail.text and "办理了：交办" in mail.text
    assert mail.text.split("\n\n")[2].startswith(notify.DEFAULT_BASE_URL)


def test_applying_for_closure_tells_the_supervisors_and_never_the_actor(s, world):
    task = world.advance(world.assigned(), "rectifying")
    perform(s, task, "submit", world.m["unit_yh"], NOW, text="已完成整改", files=[fake_file()])
    s.commit()
    assert notices(s, "【申请销号】") == {"sup_yh": (True, ["sup_yh@example.cn"])}


def test_the_actor_is_not_told_of_their_own_action(s, world):
    """sup_yh also works for 雨湖区人民政府: assigning to that unit tells its other users only."""
    add_membership(s, None, NOW, world.user("sup_yh"), world.units["雨湖区人民政府"], "unit")
    world.assigned(actor="sup_yh")
    s.commit()
    assert set(notices(s, "【交办】")) == {"unit_yh"}


# --- dry runs, concurrency, delivery, the command line ----------------------------------------------


def test_a_dry_run_writes_nothing(app, s, world):
    task = rectifying(world)
    tables = (EscalationRecord, Notification, OutboxMail, ScanRun, Event)
    before = [count(s, t) for t in tables]
    values = s.execute(select(Task.next_check_on, Task.schedule_as_of, Task.version).where(Task.id == task.id)).one()

    with app.app_context():
        summary = escalation.scan(s, D(2026, 4, 29), at(D(2026, 4, 29)), dry_run=True)

    assert not s.new and not s.dirty and not s.deleted
    assert [count(s, t) for t in tables] == before  # the same session sees any flushed write
    assert s.execute(select(Task.next_check_on, Task.schedule_as_of, Task.version)
                     .where(Task.id == task.id)).one() == values
    assert summary.levels == Counter({"督办": 1}) and summary.candidates == 1 and summary.mails == 0
    assert summary.describe().startswith("（试运行，未写入）2026-04-29 扫描1项任务：督办1项")
    s.rollback()
    assert [count(s, t) for t in tables] == before


def test_a_real_smtp_server_gets_one_digest_per_recipient_and_nothing_on_a_rerun(app, s, world):
    sink, port = Sink(), free_port()
    controller = start_server(port, sink)
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_FROM="湖南省整改台账 <zhenggai@hn.example.cn>")
        rectifying(world)
        rectifying(world, title="雨湖区黑臭水体整治不到位")
        outbox.deliver_due(s, NOW, app.config)  # the 交办 and plan notices
        sink.received.clear()

        run_scan(app, s, D(2026, 4, 15))
        report = outbox.deliver_due(s, at(D(2026, 4, 15)), app.config)

        assert (report.sent, report.deferred, report.failed) == (2, 0, 0)
        got = {tuple(rcpt): msg for rcpt, msg, _raw in sink.received}
        assert set(got) == {("unit_yh@example.cn",), ("sup_yh@example.cn",)}
        subjects = {"unit_yh@example.cn": "【整改督办】2026-04-15 4项任务需关注（催报、通报）",
                    "sup_yh@example.cn": "【整改督办】2026-04-15 2项任务需关注（通报）"}
        for (address,), msg in got.items():
            assert (msg["To"], msg["Subject"]) == (address, subjects[address])
            assert "逾期10个工作日" in msg.get_body(("plain",)).get_content()

        run_scan(app, s, D(2026, 4, 15), force=True)
        again = outbox.deliver_due(s, at(D(2026, 4, 15), 10), app.config)
        assert again.sent == 0 and len(sink.received) == 2
    finally:
        controller.stop()


def test_the_scan_command_prints_a_chinese_summary_and_a_dry_run_says_so(app, s, world):
    app.config["BASE_URL"] = BASE_URL
    task = rectifying(world, deadline=D(2026, 9, 30))
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["escalation", "scan", "--date", "2026-10-20", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("（试运行，未写入）2026-10-20 扫描1项任务：通报1项")
    s.expire_all()
    assert statuses(s, task) == {} and digests(s) == []

    result = runner.invoke(args=["escalation", "scan", "--date", "2026-10-20"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("2026-10-20 扫描1项任务：通报1项；跨级记录2项，提醒1项，消息3条，邮件2封")
    s.expire_all()
    assert statuses(s, task) == {-1: "applied", 1: "implied", 2: "implied", 3: "proposed"}
    assert all(f"{BASE_URL}/tasks/{task.id}" in m.text for m in digests(s))

    bad = runner.invoke(args=["escalation", "scan", "--date", "2026-13-01"])
    assert bad.exit_code == 1 and "日期“2026-13-01”无效" in bad.output


@pytest.fixture
def postgres_only(app):
    if app.extensions["tracker.engine"].dialect.name != "postgresql":
        pytest.skip("two scan processes at once need PostgreSQL (SQLite is one writer by design)")


@pytest.mark.parametrize("earlier_runs", [0, 1], ids=["first-scan-of-the-date", "date-row-exists"])
def test_two_scan_processes_started_together_record_and_mail_each_level_once(app, s, world, database_url,
                                                                              postgres_only, tmp_path, earlier_runs):
    tasks = [rectifying(world), rectifying(world, title="雨湖区黑臭水体整治不到位"),
             rectifying(world, "湘乡市", "湘乡市人民政府", "unit_xx", title="湘乡市工业园区污水直排")]
    if earlier_runs:  # the row exists: the two queue on its lock (else on its primary key)
        s.add(ScanRun(scan_date=D(2026, 4, 15), runs=earlier_runs, summary={}))
    s.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "TRACKER_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "test-secret", "BASE_URL": BASE_URL}
    command = [sys.executable, "-m", "flask", "--app", "tracker", "escalation", "scan", "--date", "2026-04-15"]
    gate_engine = create_engine(database_url)
    gate = gate_engine.connect()
    gate.execute(text("LOCK TABLE scan_run IN ACCESS EXCLUSIVE MODE"))  # both block on their first query
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        waiting = 0
        deadline = time.monotonic() + 30
        while waiting < 2 and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.05)
            with gate_engine.connect() as probe:
                waiting = probe.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE '%scan_run%'"))
        assert waiting == 2, [p.communicate() for p in procs]
    finally:
        gate.rollback()  # both go at the same moment
        gate.close()
    outputs = [p.communicate(timeout=60) for p in procs]
    gate_engine.dispose()

    assert [p.returncode for p in procs] == [0, 0], outputs
    summaries = sorted(out.strip() for out, _err in outputs)
    assert summaries == ["2026-04-15 扫描0项任务：无新增督办等级；跨级记录0项，提醒0项，消息0条，邮件0封",
                         "2026-04-15 扫描3项任务：通报3项；跨级记录6项，提醒3项，消息9条，邮件4封"]
    s.expire_all()
    for task in tasks:
        assert statuses(s, task) == {-1: "applied", 1: "implied", 2: "implied", 3: "proposed"}
    assert digest_counts(s) == Counter({"unit_yh@example.cn": 1, "sup_yh@example.cn": 1, "unit_xx@example.cn": 1,
                                        "sup_xt@example.cn": 1})
    assert s.get(ScanRun, D(2026, 4, 15)).runs == earlier_runs + 2
    assert all(BASE_URL in m.text for m in digests(s))


def test_an_action_on_the_day_a_level_falls_due_does_not_hide_it_from_that_days_scan(app, s, world):
    task = rectifying(world)
    perform(s, task, "report", world.m["unit_yh"], at(D(2026, 4, 1), 8), text="渗滤液处理站主体完工", percent=60)
    s.commit()  # the refresh of that report moved 序时进度's next check past 1 April

    run_scan(app, s, D(2026, 4, 1))

    assert {level: status for level, status in statuses(s, task).items() if level >= 1} == {
        1: "implied", 2: "proposed"}
    assert digest_counts(s) == Counter({"unit_yh@example.cn": 1, "sup_yh@example.cn": 1})


def test_two_scans_of_a_date_at_once_queue_on_any_database(app, world, s):
    """Two threads scan the same date together (SQLite too): each level is recorded once."""
    task = world.assigned(now=NOW - dt.timedelta(days=90), deadline=dt.date(2026, 1, 30))
    s.commit()
    errors, day = [], dt.date(2026, 3, 2)

    def run():
        try:
            with app.app_context():
                session = tracker_db.session()
                escalation.scan(session, day, NOW)
                session.commit()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    levels = s.scalars(select(EscalationRecord.level).where(EscalationRecord.task_id == task.id)).all()
    assert sorted(levels) == sorted(set(levels)) and levels
    assert s.get(ScanRun, day).runs == 2


def test_a_dry_run_counts_what_the_real_scan_then_records(app, world, s):
    task = world.assigned(now=NOW - dt.timedelta(days=90), deadline=dt.date(2026, 1, 30))
    world.advance(task, "rectifying", now=NOW - dt.timedelta(days=90))
    s.commit()
    dry = escalation.scan(s, dt.date(2026, 3, 2), NOW, dry_run=True)
    s.rollback()
    real = escalation.scan(s, dt.date(2026, 3, 2), NOW)
    s.commit()
    assert (dry.levels, dry.implied, dry.reminders) == (real.levels, real.implied, real.reminders)
    assert real.implied > 0 and real.reminders > 0
