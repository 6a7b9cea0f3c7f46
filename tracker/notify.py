"""Who is told what (DESIGN §6 "Recipients"), in the app and by mail through the outbox.

Recipients: the lead units' users; the supervisors of the nearest region, going up from the task's
region, that has any; for measures decided above, the supervisors of the nearest region above
that. Everyone gets an in-app 消息; people with an address also get mail — one digest per scan,
or one mail per immediate notice — written in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from flask import current_app, has_app_context
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from tracker import messages, outbox
from tracker.models import Membership, Notification, Region, Role, Task, TaskUnit, Unit, User
from tracker.workflow import TRANSITIONS

DEFAULT_BASE_URL = "http://127.0.0.1:5000"


def base_url() -> str:
    """``BASE_URL`` for links in mail (the app's config; the default outside an app)."""
    return current_app.config.get("BASE_URL", DEFAULT_BASE_URL) if has_app_context() else DEFAULT_BASE_URL


def task_url(task: Task) -> str:
    return f"{base_url()}/tasks/{task.id}"


# --- recipients -----------------------------------------------------------------------------------


def _active_users(s: Session, condition) -> list[User]:
    query = (select(User).join(Membership, Membership.user_id == User.id).join(Unit, Unit.id == Membership.unit_id)
             .where(User.active.is_(True), Membership.active.is_(True), condition).distinct().order_by(User.id))
    return list(s.scalars(query))


def unit_users(s: Session, unit_ids: Iterable[int]) -> list[User]:
    ids = list(unit_ids)
    if not ids:
        return []
    return _active_users(s, Membership.unit_id.in_(ids) & (Membership.role == Role.unit.value))


def supervisors_of(s: Session, region: Region) -> list[User]:
    return _active_users(s, (Unit.region_id == region.id) & (Membership.role == Role.supervisor.value))


def region_users(s: Session, region: Region, roles: Iterable[str]) -> list[User]:
    """Active users holding one of ``roles`` in a unit of exactly this region."""
    return _active_users(s, (Unit.region_id == region.id) & Membership.role.in_(list(roles)))


def nearest_supervisors(s: Session, region: Region | None) -> tuple[Region | None, list[User]]:
    """The supervisors of the nearest region, going up from ``region``, that has any."""
    while region is not None:
        users = supervisors_of(s, region)
        if users:
            return region, users
        region = region.parent
    return None, []


def lead_unit_ids(task: Task) -> list[int]:
    return [tu.unit_id for tu in task.task_units if tu.role == "lead"]


# --- telling ---------------------------------------------------------------------------------------


def tell(s: Session, users: Iterable[User], *, kind: str, task: Task | None, title: str, body: str,
         now: dt.datetime, record_id: int | None = None, notified: bool = False) -> list[Notification]:
    """In-app 消息 for each user. Records are told about once, when the scan creates them (a unique
    constraint on (user, record) stands behind that)."""
    made = []
    for user in {u.id: u for u in users}.values():
        note = Notification(user_id=user.id, kind=kind, task_id=task.id if task else None, record_id=record_id,
                            title=title, body=body, created_at=now, notified_at=now if notified else None)
        s.add(note)
        made.append(note)
    s.flush()
    return made


# Immediate notices (DESIGN §6): who hears of which step.
NOTICE_TO_SUPERVISORS = frozenset({"decline", "submit_plan", "request_extension", "submit"})
NOTICE_TO_UNITS = frozenset({"assign", "reassign", "approve_plan", "return_plan", "decide_extension", "return",
                             "close", "confirm_measure"})


def notice(s: Session, task: Task, action: str, actor: Membership, now: dt.datetime, detail: str = "") -> int:
    """Tell the other side of one workflow step at once: 消息 for all, a mail to those with an address."""
    if action in NOTICE_TO_SUPERVISORS:
        _region, users = nearest_supervisors(s, task.region)
    elif action in NOTICE_TO_UNITS:
        users = unit_users(s, lead_unit_ids(task))
    else:
        return 0
    users = [u for u in users if u.id != actor.user_id]
    label = TRANSITIONS[action].label if action in TRANSITIONS else action
    note = messages.Notice(label, task.code, task.title, task.region.name, actor.unit.name, detail, task_url(task))
    tell(s, users, kind="notice", task=task, title=f"【{label}】{task.code} {task.title}", body=detail, now=now,
         notified=True)
    for user in users:
        if user.email:
            subject, text, html = messages.notice(user.display_name, note)
            outbox.enqueue(s, [user.email], subject, text, html, now=now)
    return len(users)


def send_digests(s: Session, now: dt.datetime, scan_date: dt.date, level_names: dict[int, str]) -> int:
    """One digest per recipient holding every escalation or reminder not yet notified to them; the
    notifications are marked in the same transaction that writes the mails. Returns mails queued."""
    pending = s.scalars(
        select(Notification).where(Notification.notified_at.is_(None), Notification.record_id.is_not(None))
        .order_by(Notification.user_id, Notification.id)
        .options(selectinload(Notification.task).selectinload(Task.region), selectinload(Notification.record))
    ).all()
    by_user: dict[int, list[Notification]] = defaultdict(list)
    for note in pending:
        by_user[note.user_id].append(note)
    mails = 0
    for user_id, notes in by_user.items():
        user = s.get(User, user_id)
        if user.email and user.active:
            deciding = {m.unit.region_id for m in user.memberships if m.active and m.role == Role.supervisor.value}
            items = [_item(n, level_names, deciding) for n in notes if n.task is not None]
            subject, text, html = messages.digest(user.display_name, items, scan_date)
            mails += outbox.enqueue(s, [user.email], subject, text, html, now=now) is not None
        for note in notes:
            note.notified_at = now
    s.flush()
    return mails


def _item(note: Notification, level_names: dict[int, str], deciding_regions: set[int]) -> messages.Item:
    """One digest line; "请确认" only for the supervisors who decide the proposed measure."""
    task, record = note.task, note.record
    return messages.Item(task.code, task.title, task.region.name, level_names.get(record.level, str(record.level)),
                         record.reason, task.deadline, record.overdue_workdays, task_url(task),
                         record.status == "proposed" and record.deciding_region_id in deciding_regions)


def unreachable_units(s: Session, region: Region) -> list[Unit]:
    """Lead units of open tasks in the region's subtree that no one can be mailed at."""
    reachable = exists().where(Membership.unit_id == Unit.id, Membership.active.is_(True),
                               Membership.user_id == User.id, User.active.is_(True), User.email.is_not(None),
                               User.email != "")
    leading = exists().where(TaskUnit.unit_id == Unit.id, TaskUnit.role == "lead", TaskUnit.task_id == Task.id,
                             Task.state.not_in(["closed", "cancelled", "pending"]))
    return list(s.scalars(select(Unit).join(Region, Region.id == Unit.region_id)
                          .where(Region.path.startswith(region.path, autoescape=True), leading, ~reachable)
                          .order_by(Region.path, Unit.name)))
