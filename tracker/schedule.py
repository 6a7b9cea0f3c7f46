"""序时进度 against the database: today's values kept on each task, and snapshots as of any date D
replayed from the events (DESIGN §3, §5). The rules themselves live in ``progress``."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from tracker.models import Event, Milestone, Task
from tracker.progress import (
    Classification,
    HistoryEvent,
    MilestoneFact,
    Snapshot,
    classify,
    is_unreported,
    next_change,
    replay,
    reporting_period,
)
from tracker.settings import TimeSettings

ONE_DAY = dt.timedelta(days=1)
REFRESH_BATCH = 1000


def milestone_facts(milestones: Iterable[Milestone]) -> list[MilestoneFact]:
    return [MilestoneFact(m.due_on, m.planned_percent, m.met_on) for m in milestones]


def current_snapshot(task: Task, today: dt.date) -> Snapshot:
    """Today's snapshot from the task's own columns (no replay)."""
    activity = [d for d in (task.latest_report_on, task.plan_approved_on) if d is not None]
    return Snapshot(
        as_of=today, state=task.state, assigned_on=task.assigned_on, deadline=task.deadline,
        long_term=task.deadline_kind in ("long_term", "date_and_long_term"),
        closure_applied_on=task.closure_applied_on, latest_percent=task.latest_percent,
        last_activity_on=max(activity) if activity else None, extended=task.extension_count > 0,
        milestones=milestone_facts(task.milestones),
    )


def is_split_parent(task: Task) -> bool:
    return bool(task.children)


def compute(task: Task, today: dt.date, settings: TimeSettings) -> dict:
    """Today's 序时进度, 逾期, 本期未报送 and the next day they can change, as column values."""
    snap = current_snapshot(task, today)
    start, due = reporting_period(settings.reporting, today)
    if not snap.counted or is_split_parent(task):
        return {"schedule": None, "overdue": False, "not_reported": False, "next_check_on": None,
                "schedule_as_of": today}
    result = classify(snap, start, settings.tolerance)
    return {"schedule": result.bucket.value, "overdue": result.overdue,
            "not_reported": is_unreported(snap, start), "next_check_on": next_change(snap, start, due + ONE_DAY),
            "schedule_as_of": today}


def refresh(task: Task, today: dt.date, settings: TimeSettings) -> None:
    """Keep today's values on a task an operation just changed (part of that change)."""
    for name, value in compute(task, today, settings).items():
        setattr(task, name, value)


def refresh_due(s: Session, today: dt.date, settings: TimeSettings) -> int:
    """The daily refresh: only tasks whose values may have changed by today (``next_check_on``).

    Written with plain UPDATEs, not through the ORM: a new day is not an edit, so it must not bump
    ``Task.version`` (that would turn every form opened before the refresh into a conflict).
    """
    count, last_id = 0, 0
    table = Task.__table__
    while True:
        batch = s.scalars(
            select(Task).where(Task.next_check_on <= today, Task.id > last_id).order_by(Task.id)
            .limit(REFRESH_BATCH).options(selectinload(Task.milestones), selectinload(Task.children))
        ).all()
        if not batch:
            return count
        values = [{"task_id": t.id, **compute(t, today, settings)} for t in batch]
        s.connection().execute(
            update(table).where(table.c.id == bindparam("task_id")),
            [{k: v for k, v in row.items()} for row in values])
        for task in batch:
            s.expire(task)
        count += len(batch)
        last_id = batch[-1].id


def refresh_all(s: Session, today: dt.date, settings: TimeSettings) -> int:
    """Recompute every open task (after the rules or the calendar change)."""
    s.execute(update(Task.__table__).where(Task.__table__.c.next_check_on.is_not(None)).values(next_check_on=today))
    return refresh_due(s, today, settings)


# --- as of a date ---------------------------------------------------------------------------------


def counted_candidates(as_of: dt.date):
    """Tasks that may count at ``as_of``: 交办 by then (or not yet re-assigned), not a split parent."""
    child = aliased(Task)
    return select(Task).where(
        or_(Task.assigned_on <= as_of, Task.assigned_on.is_(None)),
        ~exists().where(child.parent_id == Task.id),
    )


def snapshots_as_of(s: Session, tasks: Sequence[Task], as_of: dt.date) -> dict[int, Snapshot]:
    """Replay each task's events up to ``as_of`` (two queries, whatever the number of tasks)."""
    ids = [t.id for t in tasks]
    events: dict[int, list[HistoryEvent]] = defaultdict(list)
    milestones: dict[int, list[MilestoneFact]] = defaultdict(list)
    for chunk in _chunks(ids, 5000):
        rows = s.execute(
            select(Event.task_id, Event.action, Event.effective_on, Event.to_state, Event.data)
            .where(Event.task_id.in_(chunk), Event.effective_on <= as_of)
            .order_by(Event.task_id, Event.effective_on, Event.id)
        )
        for task_id, action, effective_on, to_state, data in rows:
            events[task_id].append(HistoryEvent(action, effective_on, to_state, data or {}))
        for m in s.scalars(select(Milestone).where(Milestone.task_id.in_(chunk))):
            milestones[m.task_id].append(MilestoneFact(m.due_on, m.planned_percent, m.met_on))
    return {tid: replay(events[tid], as_of, milestones[tid]) for tid in ids}


def classify_as_of(snapshots: dict[int, Snapshot], as_of: dt.date, settings: TimeSettings
                   ) -> dict[int, Classification]:
    """The bucket of every counted task at ``as_of``; tasks not counted are left out."""
    start, _due = reporting_period(settings.reporting, as_of)
    return {tid: classify(snap, start, settings.tolerance) for tid, snap in snapshots.items() if snap.counted}


def _chunks(items: Sequence[int], size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]

