"""回头看: supervisors draw a random sample of closed tasks for re-inspection, record what they found,
and reopen (重新整改) the tasks that regressed (返黑返臭, 001 L237); reopen rates per lead unit.

- ``draw_sample``: a reproducible random sample of the closed tasks in the supervisor's scope,
  optionally narrowed by channel, round, region, lead unit and 销号日期; the seed is recorded, so the
  same seed over the same population draws the same tasks.
- ``record_result``: 通过 (passed) or 返黑返臭 (regressed); a regression reopens the task through
  ``operations.perform(..., "reopen", ...)`` with the reason and a new deadline.
- ``reopen_rates``: per lead unit, tasks closed at least once against tasks reopened at least once
  (from ``Task.reopen_count``), in one grouped query.

Like ``operations``: actor and now come in, every change writes an ``Event``, nothing commits.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from tracker.audit import ActionError, record_event
from tracker.i18n import N_
from tracker.models import (
    Channel,
    Membership,
    RecheckItem,
    RecheckSample,
    Region,
    Role,
    Round,
    Task,
    TaskUnit,
    Unit,
)
from tracker.operations import perform
from tracker.permissions import in_scope, in_subtree, region_prefix, visible_tasks
from tracker.queries import TaskFilter, filtered_tasks
from tracker.timeutil import local_date
from tracker.workflow import State

RESULTS = {"pending": N_("待复查"), "passed": N_("通过"), "regressed": N_("返黑返臭")}
MAX_SAMPLE = 200
REOPEN_REASON = "回头看抽查发现问题反弹（返黑返臭）："


@dataclass
class SampleCriteria:
    """What a sample is drawn from, besides the supervisor's scope (all optional)."""

    channel_id: int | None = None
    round_id: int | None = None
    region_id: int | None = None  # this region and its subtree
    unit_id: int | None = None  # lead unit
    closed_from: dt.date | None = None  # 销号日期 range
    closed_to: dt.date | None = None


def _require_supervisor(actor: Membership) -> None:
    if actor.role != Role.supervisor.value:
        raise ActionError("只有督办人员可以开展回头看抽查")


def population(s: Session, actor: Membership, criteria: SampleCriteria, region: Region) -> Select[tuple[int]]:
    """Ids of the closed tasks a sample may draw: in scope and in ``region``'s subtree, matching the
    criteria (the task list's own filters), not a split parent (its children are re-inspected), not
    waiting in another sample."""
    child = aliased(Task)
    pending = exists().where(RecheckItem.task_id == Task.id, RecheckItem.result == "pending")
    listed = TaskFilter(channel_id=criteria.channel_id, round_id=criteria.round_id, region_id=region.id,
                        lead_unit_id=criteria.unit_id, states=[State.closed.value],
                        closed_from=criteria.closed_from, closed_to=criteria.closed_to)
    query = filtered_tasks(s, actor, listed).where(~exists().where(child.parent_id == Task.id), ~pending)
    return query.with_only_columns(Task.id).order_by(Task.id)


def _region(s: Session, actor: Membership, criteria: SampleCriteria) -> Region:
    if not criteria.region_id:
        return actor.unit.region
    region = s.get(Region, criteria.region_id)
    if region is None or not in_subtree(actor, region):
        raise ActionError("所选地区不在您的管辖范围内")
    return region


def _describe(s: Session, criteria: SampleCriteria, region: Region) -> dict[str, Any]:
    """The criteria with names, as recorded on the sample and in its event."""
    names: dict[str, Any] = {"region": region.name}
    for key, model in (("channel", Channel), ("round", Round), ("unit", Unit)):
        value = getattr(criteria, f"{key}_id")
        if value:
            row = s.get(model, value)
            if row is None:
                raise ActionError("抽查条件中的问题来源、批次或单位不存在")
            names[key] = row.name
            names[f"{key}_id"] = value
    for key in ("closed_from", "closed_to"):
        if getattr(criteria, key):
            names[key] = getattr(criteria, key).isoformat()
    return names


def draw_sample(s: Session, actor: Membership, now: dt.datetime, size: int, criteria: SampleCriteria, *,
                seed: str = "", note: str = "") -> RecheckSample:
    """抽取回头看样本: ``size`` closed tasks at random (fewer when fewer qualify)."""
    _require_supervisor(actor)
    if not 1 <= int(size) <= MAX_SAMPLE:
        raise ActionError("抽取数量须在1到{n}之间", n=MAX_SAMPLE)
    if criteria.closed_from and criteria.closed_to and criteria.closed_from > criteria.closed_to:
        raise ActionError("销号日期范围的起点晚于终点")
    region = _region(s, actor, criteria)
    described = _describe(s, criteria, region)
    ids = list(s.scalars(population(s, actor, criteria, region)))
    if not ids:
        raise ActionError("没有符合条件的已销号任务可供抽查")
    seed = (seed or "").strip()[:64] or secrets.token_hex(8)
    chosen = sorted(random.Random(seed).sample(ids, min(int(size), len(ids))))
    sample = RecheckSample(region_id=region.id, membership_id=actor.id, drawn_on=local_date(now),
                           population=len(ids), size=len(chosen), criteria=described, seed=seed,
                           note=(note or "").strip(), created_at=now)
    sample.items = [RecheckItem(task_id=task_id, result="pending") for task_id in chosen]
    s.add(sample)
    s.flush()
    codes = list(s.scalars(select(Task.code).where(Task.id.in_(chosen)).order_by(Task.id)))
    record_event(s, actor, now, "recheck_draw", entity="recheck_sample", entity_id=sample.id,
                 data={**described, "seed": seed, "population": len(ids), "size": len(chosen), "tasks": codes,
                       "note": sample.note})
    return sample


@dataclass
class RecheckResult:
    """What a supervisor found on re-inspection; a regression carries the new deadline for 重新整改."""

    result: str
    note: str = ""
    deadline: dt.date | None = None
    deadline_text: str = ""
    deadline_kind: str = "date"


def record_result(s: Session, actor: Membership, now: dt.datetime, item: RecheckItem,
                  found: RecheckResult) -> RecheckItem:
    """记录复查结果. 返黑返臭 reopens the task (重新整改) with the finding as the reason."""
    _require_supervisor(actor)
    task = item.task
    if not in_scope(actor, task):
        raise ActionError("该任务不在您的管辖范围内")
    if item.result != "pending":
        raise ActionError("该任务已记录复查结果")
    if found.result not in ("passed", "regressed"):
        raise ActionError("请选择复查结果")
    note = (found.note or "").strip()
    if found.result == "regressed":
        if not note:
            raise ActionError("请填写复查发现的问题")
        perform(s, task, "reopen", actor, now, reason=REOPEN_REASON + note, deadline=found.deadline,
                deadline_text=found.deadline_text, deadline_kind=found.deadline_kind or "date")
    item.result, item.note, item.checked_on, item.membership_id = found.result, note, local_date(now), actor.id
    record_event(s, actor, now, "recheck", task=task,
                 data={"sample_id": item.sample_id, "result": found.result, "note": note,
                       "text": f"回头看抽查：{RESULTS[found.result]}" + (f"。{note}" if note else "")})
    s.flush()
    return item


# --- reading --------------------------------------------------------------------------------------------


def samples_for(s: Session, membership: Membership) -> list[RecheckSample]:
    """Samples drawn in the membership's region subtree, newest first."""
    subtree = select(Region.id).where(Region.path.startswith(region_prefix(membership), autoescape=True))
    return list(s.scalars(select(RecheckSample).where(RecheckSample.region_id.in_(subtree))
                          .order_by(RecheckSample.id.desc())))


def sample_in_scope(s: Session, membership: Membership, sample_id: int) -> RecheckSample | None:
    sample = s.get(RecheckSample, sample_id)
    if sample is None or not in_subtree(membership, sample.region):
        return None
    return sample


def visible_items(s: Session, membership: Membership, sample: RecheckSample) -> list[RecheckItem]:
    """The sample's items whose task the membership can see."""
    visible = visible_tasks(membership).with_only_columns(Task.id)
    return list(s.scalars(select(RecheckItem).where(RecheckItem.sample_id == sample.id,
                                                    RecheckItem.task_id.in_(visible)).order_by(RecheckItem.id)))


@dataclass(frozen=True)
class ReopenRate:
    """One row of the reopen-rate table (重新整改率): ``closed`` tasks closed at least once, ``reopened``
    of them reopened at least once, ``reopens`` the times in all."""

    unit_id: int | None
    unit: str
    region: str
    closed: int
    reopened: int
    reopens: int

    @property
    def rate(self) -> float:
        return self.reopened / self.closed if self.closed else 0.0


def _closed_ever(s: Session, membership: Membership, channel_id: int | None, round_id: int | None):
    query = visible_tasks(membership).where(or_(Task.state == State.closed.value, Task.reopen_count > 0))
    if channel_id:
        query = query.where(Task.channel_id == channel_id)
    if round_id:
        query = query.where(Task.round_id == round_id)
    return query.with_only_columns(Task.id, Task.reopen_count).subquery()


def reopen_rates(s: Session, membership: Membership, *, channel_id: int | None = None,
                 round_id: int | None = None) -> tuple[list[ReopenRate], ReopenRate]:
    """Per lead unit within scope, and the total (each task once, however many leads it has)."""
    tasks = _closed_ever(s, membership, channel_id, round_id)
    reopened = func.coalesce(func.sum(case((tasks.c.reopen_count > 0, 1), else_=0)), 0)
    reopens = func.coalesce(func.sum(tasks.c.reopen_count), 0)
    rows = s.execute(
        select(Unit.id, Unit.name, Region.name, func.count(tasks.c.id), reopened, reopens)
        .select_from(tasks)
        .join(TaskUnit, and_(TaskUnit.task_id == tasks.c.id, TaskUnit.role == "lead"))
        .join(Unit, Unit.id == TaskUnit.unit_id)
        .join(Region, Region.id == Unit.region_id)
        .group_by(Unit.id, Unit.name, Region.name)
    ).all()
    result = [ReopenRate(*row) for row in rows]
    result.sort(key=lambda r: (-r.rate, -r.reopened, r.unit))
    total = s.execute(select(func.count(tasks.c.id), reopened, reopens).select_from(tasks)).one()
    return result, ReopenRate(None, "合计", "", *total)
