"""序时进度 over time, kept per task (DESIGN §3 "as of", §9): the spans over which a counted task's bucket,
逾期 and 延期 held (``task_period``, from ``progress.periods``), so that a report as of a past date is one
aggregate over the spans containing that date instead of a replay of every history.

A span list is a function of the task's events, its milestones and the time settings (reporting period,
tolerance). Triggers on ``event`` and ``milestone`` (migration 0013) append the task to ``period_stale``
in the writer's own transaction, whatever wrote (an operation, an import, a restore); a settings change
marks every task. A report replays the stale tasks itself and reads the spans of the others, so it is
exact at any moment; ``catch_up`` (the scheduler's ``period_catch_up``, ``tracker periods catch-up``)
recomputes the stale tasks' spans and takes them off the list."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Integer, and_, any_, cast, delete, func, insert, literal, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tracker.models import Event, Milestone, PeriodStale, Task, TaskPeriod
from tracker.progress import REPLAYED_ACTIONS, HistoryEvent, MilestoneFact, periods

if TYPE_CHECKING:
    from tracker.settings import TimeSettings

BATCH = 2000
TABLE_NAMES = frozenset({TaskPeriod.__tablename__, PeriodStale.__tablename__})
LOCK_KEY = 0x7E51_0D  # the advisory lock of one catch-up at a time (PostgreSQL)


def replayed_events():
    """The events a replay applies (others change nothing in a snapshot), in replay order per task."""
    return (select(Event.task_id, Event.action, Event.effective_on, Event.to_state, Event.data)
            .where(or_(Event.to_state.is_not(None), Event.action.in_(sorted(REPLAYED_ACTIONS))))
            .order_by(Event.task_id, Event.effective_on, Event.id))


def among(s: Session, column, ids: Iterable[int]):
    """``column IN ids`` for a batch's ids (``in_ids`` for this session's database)."""
    return in_ids(s.get_bind().dialect.name == "postgresql", column, ids)


def in_ids(postgresql: bool, column, ids: Iterable[int]):
    """``column IN ids``. On PostgreSQL one array parameter (``= ANY``): the driver parses a statement's
    placeholders in Python, and 2,000 of them per statement cost more than the query. Sent as the array's
    text, which the driver passes on as it is."""
    if postgresql:
        return column == any_(cast(literal("{" + ",".join(map(str, ids)) + "}"), ARRAY(Integer)))
    return column.in_(ids)


def histories(s: Session, ids: Sequence[int]) -> tuple[dict[int, list[HistoryEvent]], dict[int, list[MilestoneFact]]]:
    events: dict[int, list[HistoryEvent]] = defaultdict(list)
    rows = s.execute(replayed_events().where(among(s, Event.task_id, ids)))
    for task_id, action, effective_on, to_state, data in rows:
        events[task_id].append(HistoryEvent(action, effective_on, to_state, data or {}))
    milestones: dict[int, list[MilestoneFact]] = defaultdict(list)
    for task_id, due_on, planned, met_on in s.execute(
            select(Milestone.task_id, Milestone.due_on, Milestone.planned_percent, Milestone.met_on)
            .where(among(s, Milestone.task_id, ids)).order_by(Milestone.task_id, Milestone.id)):
        milestones[task_id].append(MilestoneFact(due_on, planned, met_on))
    return events, milestones


def write(s: Session, ids: Sequence[int], settings: TimeSettings) -> int:
    """Recompute the spans of tasks ``ids``; returns how many spans they have now."""
    events, milestones = histories(s, ids)
    rows = [{"task_id": task_id, "valid_from": p.start, "valid_to": p.end, "bucket": p.bucket.value,
             "overdue": p.overdue, "extended": p.extended}
            for task_id in ids
            for p in periods(events[task_id], milestones[task_id], settings.reporting, settings.tolerance)]
    s.execute(delete(TaskPeriod).where(among(s, TaskPeriod.task_id, ids)))
    if rows:
        s.execute(insert(TaskPeriod), rows)
    return len(rows)


def _lock(s: Session) -> None:
    """One catch-up at a time: two would write the same task's spans (PostgreSQL; SQLite has one writer)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def catch_up(s: Session, settings: TimeSettings, *, limit: int | None = None) -> int:
    """Recompute the spans of the stale tasks (at most ``limit`` of them) and take them off the list;
    tasks made stale again meanwhile (a later row of ``period_stale``) stay on it. Returns how many."""
    _lock(s)
    top = s.scalar(select(func.max(PeriodStale.id)))
    if top is None:
        return 0
    done, last = 0, 0
    while limit is None or done < limit:
        size = BATCH if limit is None else min(BATCH, limit - done)
        ids = s.scalars(select(PeriodStale.task_id).where(PeriodStale.id <= top, PeriodStale.task_id > last)
                        .group_by(PeriodStale.task_id).order_by(PeriodStale.task_id).limit(size)).all()
        if not ids:
            break
        write(s, ids, settings)
        s.execute(delete(PeriodStale).where(PeriodStale.id <= top, among(s, PeriodStale.task_id, ids)))
        done += len(ids)
        last = ids[-1]
    s.flush()
    return done


def mark_all(s: Session | Connection) -> None:
    """Every task's spans are out of date (the reporting period or the tolerance changed)."""
    s.execute(insert(PeriodStale).from_select(["task_id"], select(Task.id)))


def forget(s: Session | Connection) -> None:
    """Drop every span and mark every task stale: after a restore (the spans are not backed up); the
    scheduler computes them again while reports replay what is not caught up."""
    s.execute(delete(PeriodStale))
    s.execute(delete(TaskPeriod))
    mark_all(s)


def rebuild(s: Session, settings: TimeSettings) -> int:
    """Every task's spans afresh (after a bulk load made without triggers, a restore)."""
    _lock(s)
    s.execute(delete(PeriodStale))
    s.execute(delete(TaskPeriod))
    count, last = 0, 0
    while ids := s.scalars(select(Task.id).where(Task.id > last).order_by(Task.id).limit(BATCH)).all():
        write(s, ids, settings)
        count += len(ids)
        last = ids[-1]
    s.flush()
    return count


def stale_count(s: Session) -> int:
    return s.scalar(select(func.count(func.distinct(PeriodStale.task_id)))) or 0


def holding(as_of: dt.date):
    """The join condition of a task's span that contains ``as_of``."""
    return and_(TaskPeriod.task_id == Task.id, TaskPeriod.valid_from <= as_of,
                or_(TaskPeriod.valid_to.is_(None), TaskPeriod.valid_to > as_of))


def differences(s: Session, settings: TimeSettings, ids: Sequence[int] | None = None) -> list[int]:
    """Tasks (not stale) whose kept spans differ from a fresh computation: empty when right."""
    stale = set(s.scalars(select(PeriodStale.task_id)))
    query = select(Task.id).order_by(Task.id)
    ids = [i for i in (ids if ids is not None else s.scalars(query)) if i not in stale]
    wrong = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        events, milestones = histories(s, chunk)
        kept: dict[int, list[tuple]] = defaultdict(list)
        for row in s.execute(select(TaskPeriod.task_id, TaskPeriod.valid_from, TaskPeriod.valid_to, TaskPeriod.bucket,
                                    TaskPeriod.overdue, TaskPeriod.extended)
                             .where(among(s, TaskPeriod.task_id, chunk)).order_by(TaskPeriod.task_id,
                                                                                  TaskPeriod.valid_from)):
            kept[row[0]].append(tuple(row[1:]))
        for task_id in chunk:
            fresh = [(p.start, p.end, p.bucket.value, p.overdue, p.extended) for p in
                     periods(events[task_id], milestones[task_id], settings.reporting, settings.tolerance)]
            if fresh != kept[task_id]:
                wrong.append(task_id)
    return wrong
