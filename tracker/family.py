"""举一反三: from one task, create linked tasks for similar problems elsewhere, and see the family.

``create_similar`` registers one task per region (and, when lead units are given, hands it out at once)
copying what applies from the source — channel, round, 问题类型, 所属问题, description, 问题领域,
整改目标, 整改措施 and the deadline text — and links each to the source (``TaskLink`` kind
``similar``). ``family_of`` is every task connected to a task by such links, in any direction and over
any number of steps, as far as the membership can see.

Like ``operations``: actor and now come in, every change writes an ``Event``, nothing commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tracker.audit import ActionError, record_event
from tracker.models import Membership, Task, TaskLink
from tracker.operations import TaskFields, link_tasks, perform, register_task
from tracker.permissions import can_edit, visible_tasks
from tracker.workflow import State

MAX_NEW = 20
# A family larger than this is cut off: links are made by hand, so it is never reached in practice.
MAX_FAMILY = 500


@dataclass
class SimilarSpec:
    """One task to create: where, optionally under what title, and — to hand it out at once — lead and
    participant units and a deadline (the source's deadline text when none is given)."""

    region_id: int
    title: str = ""
    leads: list[int] = field(default_factory=list)
    participants: list[int] = field(default_factory=list)
    deadline: dt.date | None = None
    deadline_text: str = ""


def _fields(source: Task, spec: SimilarSpec) -> TaskFields:
    return TaskFields(
        title=(spec.title or "").strip() or source.title,
        channel_id=source.channel_id, round_id=source.round_id, region_id=spec.region_id,
        kind=source.kind if source.kind != "交办信访件" else "其他",  # a 信访件 is the complainant's, not copied
        description=source.description, category=source.category,
        problem_title=source.problem.title if source.problem else "",
        target=source.target, measures=source.measures,
        remarks=f"举一反三：对照{source.code}“{source.title}”排查同类问题",
    )


def _assign(s: Session, task: Task, actor: Membership, now: dt.datetime, source: Task, spec: SimilarSpec) -> None:
    deadline_kind = source.deadline_kind if spec.deadline is None and not spec.deadline_text else "date"
    text = (spec.deadline_text or "").strip() or ("" if spec.deadline else source.deadline_text)
    if spec.deadline is None and not text:
        raise ActionError("请填写整改时限")
    perform(s, task, "assign", actor, now, leads=spec.leads, participants=spec.participants,
            deadline=spec.deadline, deadline_text=text, deadline_kind=deadline_kind)


def create_similar(s: Session, actor: Membership, now: dt.datetime, source: Task, specs: Sequence[SimilarSpec],
                   note: str = "") -> list[Task]:
    """举一反三: one linked task per spec; all or nothing (a refused row raises, naming the row)."""
    decision = can_edit(actor, source)
    if not decision:
        raise ActionError("只有督办人员可以举一反三派生任务" if source.state != State.cancelled.value
                          else decision.reason)
    if not specs:
        raise ActionError("请至少选择一个地区")
    if len(specs) > MAX_NEW:
        raise ActionError("一次最多派生{n}个任务", n=MAX_NEW)
    note = (note or "").strip() or f"举一反三：由{source.code}派生"
    created = []
    for i, spec in enumerate(specs, start=1):
        try:
            task = register_task(s, actor, now, _fields(source, spec))
            if spec.leads:
                _assign(s, task, actor, now, source, spec)
            link_tasks(s, source, task, actor, now, note)
        except ActionError as exc:
            raise ActionError("第{i}项：{reason}", i=i, reason=exc.msg) from None
        record_event(s, actor, now, "similar", task=task,
                     data={"source": source.code, "note": f"举一反三：由{source.code}“{source.title}”派生"})
        created.append(task)
    s.flush()
    return created


@dataclass
class Family:
    """The tasks linked as similar problems, those the membership can see, and how many it cannot."""

    members: list[Task]
    hidden: int

    def __bool__(self) -> bool:
        return len(self.members) + self.hidden > 1


def family_ids(s: Session, task: Task) -> set[int]:
    """Every task reachable from ``task`` over ``similar`` links (one query per step)."""
    ids, frontier = {task.id}, {task.id}
    while frontier and len(ids) < MAX_FAMILY:
        rows = s.execute(select(TaskLink.task_id, TaskLink.other_task_id).where(
            TaskLink.kind == "similar",
            or_(TaskLink.task_id.in_(frontier), TaskLink.other_task_id.in_(frontier)))).all()
        frontier = {i for row in rows for i in row} - ids
        ids |= frontier
    return ids


def family_of(s: Session, membership: Membership, task: Task) -> Family:
    """The family of ``task`` (itself included) as the membership may see it, ordered by code."""
    ids = family_ids(s, task)
    if len(ids) == 1:
        return Family([task], 0)
    members = list(s.scalars(visible_tasks(membership).where(Task.id.in_(ids)).order_by(Task.code, Task.id)))
    return Family(members, len(ids) - len(members))
