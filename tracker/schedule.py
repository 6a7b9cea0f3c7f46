"""序时进度 against the database: today's values kept on each task, and snapshots as of any date D
replayed from the events (DESIGN §3, §5). The rules themselves live in ``progress``."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, or_, select, union, update
from sqlalchemy.orm import Session, aliased, object_session, selectinload

from tracker import calendars
from tracker import settings as settings_module
from tracker.ladder import Facts, Rule, Thresholds
from tracker.ladder import next_check as ladder_next_check
from tracker.models import EscalationRule, Event, Milestone, Task
from tracker.progress import (
    REPLAYED_ACTIONS,
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
from tracker.workdays import WorkCalendar

ONE_DAY = dt.timedelta(days=1)
REFRESH_BATCH = 1000


def milestone_facts(milestones: Iterable[Milestone]) -> list[MilestoneFact]:
    return [MilestoneFact(m.due_on, m.planned_percent, m.met_on) for m in milestones]


def current_snapshot(task: Task, today: dt.date, milestones: list[MilestoneFact] | None = None) -> Snapshot:
    """Today's snapshot from the task's own columns (no replay). ``task`` may be a row of those columns,
    with its ``milestones`` given (the ledger export reads plain rows)."""
    activity = [d for d in (task.latest_report_on, task.plan_approved_on) if d is not None]
    return Snapshot(
        as_of=today, state=task.state, assigned_on=task.assigned_on, deadline=task.deadline,
        long_term=task.deadline_kind in ("long_term", "date_and_long_term"),
        closure_applied_on=task.closure_applied_on, latest_percent=task.latest_percent,
        last_activity_on=max(activity) if activity else None, extended=task.extension_count > 0,
        milestones=milestone_facts(task.milestones) if milestones is None else milestones,
    )


def is_split_parent(task: Task) -> bool:
    return bool(task.children)


@dataclass(frozen=True)
class TimeContext:
    """Everything the time rules need, loaded once per operation, scan or refresh."""

    settings: TimeSettings
    calendar: WorkCalendar
    rules: dict[int, Rule]
    thresholds: Thresholds


def load_rules(s: Session) -> dict[int, Rule]:
    return {r.level: Rule(r.level, r.name, r.threshold_workdays, r.mode, r.decided_above, r.province_only,
                          r.against_region) for r in s.scalars(select(EscalationRule))}


def load_context(s: Session, time_settings: TimeSettings | None = None) -> TimeContext:
    warning = settings_module.get(s, "escalation_warning")
    return TimeContext(time_settings or settings_module.time_settings(s), calendars.load(s), load_rules(s),
                       Thresholds(int(warning["unsigned"]), int(warning["no_plan"]), int(warning["verify_wait"])))


def _context(s: Session, ctx: TimeContext | TimeSettings | None) -> TimeContext:
    return ctx if isinstance(ctx, TimeContext) else load_context(s, ctx)


def ladder_facts(task: Task, behind: bool, not_reported: bool) -> Facts:
    return Facts(task.state, task.assigned_on, task.deadline, task.plan_submitted_on, task.plan_approved_on,
                 task.closure_applied_on, behind, not_reported)


def compute(task: Task, today: dt.date, ctx: TimeContext) -> dict:
    """Today's 序时进度, 逾期, 本期未报送 and the first later day they can change (``next_check_on``)."""
    snap = current_snapshot(task, today)
    start, due = reporting_period(ctx.settings.reporting, today)
    if not snap.counted or is_split_parent(task):
        return {"schedule": None, "overdue": False, "not_reported": False, "next_check_on": None,
                "schedule_as_of": today}
    result = classify(snap, start, ctx.settings.tolerance)
    return {"schedule": result.bucket.value, "overdue": result.overdue, "not_reported": is_unreported(snap, start),
            "next_check_on": next_change(snap, start, due + ONE_DAY), "schedule_as_of": today}


def escalation_check(task: Task, values: dict, today: dt.date, ctx: TimeContext) -> dt.date | None:
    """After a scan looked at the task: the next day a level may fall due or 序时进度 may change."""
    facts = ladder_facts(task, values["schedule"] == "behind", values["not_reported"])
    dates = [d for d in (values["next_check_on"],
                         ladder_next_check(ctx.calendar, facts, today, ctx.rules, ctx.thresholds)) if d]
    return min(dates) if dates else None


def refresh(task: Task, today: dt.date, ctx: TimeContext | None = None, s: Session | None = None) -> None:
    """Keep today's values on a task an operation just changed (part of that change); the next scan
    looks at it again, since the change may start or end an escalation."""
    ctx = ctx if isinstance(ctx, TimeContext) else load_context(s or object_session(task), ctx)
    values = compute(task, today, ctx)
    for name, value in values.items():
        setattr(task, name, value)
    task.escalation_check_on = today if values["schedule"] is not None or task.state == "verifying" else None


def due_tasks(s: Session, today: dt.date, after_id: int, limit: int = REFRESH_BATCH, *,
              escalation: bool = False) -> list[Task]:
    """The next batch of tasks whose values may change by ``today`` (set-based, by ``next_check_on``;
    for the scan also by ``escalation_check_on``)."""
    options = [selectinload(Task.milestones), selectinload(Task.children)]
    due = Task.next_check_on <= today
    if escalation:  # the scan also reads each task's region and lead units (who is told): one query each
        options += [selectinload(Task.region), selectinload(Task.task_units)]
        # Two index ranges, not an OR: a planner walking the primary key to satisfy ORDER BY id reads the
        # whole table to find that nothing (or little) is due — the scan's usual day.
        due = Task.id.in_(union(select(Task.id).where(due, Task.id > after_id),
                                select(Task.id).where(Task.escalation_check_on <= today, Task.id > after_id)))
    return s.scalars(select(Task).where(due, Task.id > after_id).order_by(Task.id).limit(limit)
                     .options(*options)).all()


def write_values(s: Session, values: list[dict]) -> None:
    """Today's values by plain UPDATEs: a new day is not an edit and must not bump ``Task.version``
    (that would turn every form opened before the refresh into a conflict)."""
    if values:
        table = Task.__table__
        s.connection().execute(update(table).where(table.c.id == bindparam("task_id")), values)


def refresh_due(s: Session, today: dt.date, ctx: TimeContext | TimeSettings | None = None) -> int:
    """The daily refresh: only tasks whose values may have changed by today (``next_check_on``)."""
    ctx = _context(s, ctx)
    count, last_id = 0, 0
    while batch := due_tasks(s, today, last_id):
        write_values(s, [{"task_id": t.id, **compute(t, today, ctx)} for t in batch])
        for task in batch:
            s.expire(task)
        count += len(batch)
        last_id = batch[-1].id
    return count


def refresh_all(s: Session, today: dt.date, ctx: TimeContext | TimeSettings | None = None) -> int:
    """Recompute every open task (after the rules or the calendar change)."""
    table = Task.__table__
    s.execute(update(table).where(table.c.state.not_in(["closed", "cancelled"])).values(next_check_on=today))
    return refresh_due(s, today, ctx)


# --- as of a date ---------------------------------------------------------------------------------


def counted_candidates(as_of: dt.date):
    """Tasks that may count at ``as_of``: 交办 by then (or not yet re-assigned), not a split parent.

    ``Task.assigned_on`` is the latest 交办; a task declined (退办) after ``as_of`` and assigned again
    may have been assigned at ``as_of`` under an earlier 交办, so it stays a candidate for the replay."""
    child = aliased(Task)
    declined_later = exists().where(Event.task_id == Task.id, Event.action == "decline", Event.effective_on > as_of)
    return select(Task).where(
        or_(Task.assigned_on <= as_of, Task.assigned_on.is_(None), declined_later),
        ~exists().where(child.parent_id == Task.id),
    )


def snapshots_as_of(s: Session, tasks: Sequence[Task], as_of: dt.date,
                    milestones: dict[int, list[MilestoneFact]] | None = None) -> dict[int, Snapshot]:
    """Replay each task's events up to ``as_of`` (two queries, whatever the number of tasks; one when
    the caller has read the tasks' ``milestones`` already)."""
    ids = [t.id for t in tasks]
    events: dict[int, list[HistoryEvent]] = defaultdict(list)
    known = milestones is not None
    milestones = defaultdict(list, milestones or {})
    for chunk in _chunks(ids, 5000):
        rows = s.execute(
            select(Event.task_id, Event.action, Event.effective_on, Event.to_state, Event.data)
            .where(Event.task_id.in_(chunk), Event.effective_on <= as_of,
                   or_(Event.to_state.is_not(None), Event.action.in_(sorted(REPLAYED_ACTIONS))))
            .order_by(Event.task_id, Event.effective_on, Event.id)
        )
        for task_id, action, effective_on, to_state, data in rows:
            events[task_id].append(HistoryEvent(action, effective_on, to_state, data or {}))
        if not known:
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

