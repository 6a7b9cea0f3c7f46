"""序时进度: where a task stands against its timetable as of a date (DESIGN §3 "as of", §5).

Pure: the history of a task (its events, as plain ``HistoryEvent`` values) is replayed up to a
date D into a ``Snapshot``; ``classify`` puts the snapshot in exactly one bucket — 已完成,
达到序时进度 or 滞后 (逾期 a marked subset). ``reporting_period`` gives the period that contains D;
``next_change`` the first later day the bucket can change with no new event.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tracker.i18n import N_
from tracker.workflow import State

ONE_DAY = dt.timedelta(days=1)
DEFAULT_TOLERANCE = 10  # percentage points a reported percent may lag the plan


class Bucket(enum.StrEnum):
    completed = "completed"  # 已完成: closed at the end of D
    on_schedule = "on_schedule"  # 达到序时进度
    behind = "behind"  # 滞后 (逾期 is a subset, flagged separately)


BUCKET_LABELS = {Bucket.completed: N_("已完成"), Bucket.on_schedule: N_("达到序时进度"), Bucket.behind: N_("滞后")}

# Actions whose events carry a new deadline in force (data["deadline"]).
DEADLINE_ACTIONS = frozenset({"assign", "change_deadline", "reopen", "import"})


@dataclass(frozen=True)
class HistoryEvent:
    """What the replay needs of one ``Event`` row."""

    action: str
    effective_on: dt.date
    to_state: str | None
    data: dict


@dataclass(frozen=True)
class MilestoneFact:
    due_on: dt.date
    planned_percent: int | None
    met_on: dt.date | None


@dataclass
class Snapshot:
    """A task as it stood at the end of day D."""

    as_of: dt.date
    state: str | None = None  # None: not yet registered by D
    assigned_on: dt.date | None = None  # 交办 in force
    deadline: dt.date | None = None
    long_term: bool = False  # 长期坚持 (with or without a date)
    closure_applied_on: dt.date | None = None
    latest_percent: int | None = None
    last_activity_on: dt.date | None = None  # the latest report or plan approval
    extended: bool = False  # an approved extension took effect by D
    milestones: list[MilestoneFact] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        """Counted at D: 交办 took effect by D, and not cancelled or merged by D (DESIGN §3)."""
        return self.assigned_on is not None and self.state not in (None, State.pending.value, State.cancelled.value)


def replay(events: Iterable[HistoryEvent], as_of: dt.date, milestones: Sequence[MilestoneFact] = ()) -> Snapshot:
    """The snapshot at the end of ``as_of`` from the events with ``effective_on`` ≤ as_of, in order."""
    snap = Snapshot(as_of=as_of, milestones=list(milestones))
    for event in events:
        if event.effective_on > as_of:
            continue
        _apply(snap, event)
    return snap


def _apply(snap: Snapshot, event: HistoryEvent) -> None:
    data = event.data or {}
    if event.to_state:
        snap.state = event.to_state
    if event.action in DEADLINE_ACTIONS and ("deadline" in data or "deadline_kind" in data):
        snap.deadline = _date(data.get("deadline"))
        snap.long_term = data.get("deadline_kind") in ("long_term", "date_and_long_term")
    handler = _HANDLERS.get(event.action)
    if handler:
        handler(snap, event, data)


def _on_assign(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    snap.assigned_on = _date(data.get("assigned_on")) or event.effective_on


def _on_decline(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    snap.assigned_on = None


def _on_report(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    snap.last_activity_on = event.effective_on
    if data.get("percent") is not None:
        snap.latest_percent = int(data["percent"])


def _on_approve_plan(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    snap.last_activity_on = event.effective_on


def _on_submit(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    # 申请销号 files a closure report at 100% (operations._h_submit sets Task.latest_percent = 100).
    snap.closure_applied_on = event.effective_on
    snap.last_activity_on = event.effective_on
    snap.latest_percent = 100


def _on_return(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    snap.closure_applied_on = None


def _on_reopen(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    snap.closure_applied_on = None
    snap.latest_percent = None


def _on_extension(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    if data.get("approved"):
        snap.deadline = _date(data.get("new_deadline"))
        snap.extended = True


def _on_import(snap: Snapshot, event: HistoryEvent, data: dict) -> None:
    if data.get("assigned_on"):
        snap.assigned_on = _date(data["assigned_on"])
    if data.get("percent") is not None:
        snap.latest_percent = int(data["percent"])
    if data.get("closure_applied_on"):
        snap.closure_applied_on = _date(data["closure_applied_on"])
    if data.get("extended"):
        snap.extended = True


_HANDLERS = {
    "assign": _on_assign,
    "decline": _on_decline,
    "report": _on_report,
    "approve_plan": _on_approve_plan,
    "submit": _on_submit,
    "return": _on_return,
    "reopen": _on_reopen,
    "decide_extension": _on_extension,
    "import": _on_import,
}
# Actions whose events the replay reads beyond their ``to_state``: any other event with no ``to_state``
# changes nothing in a snapshot.
REPLAYED_ACTIONS = frozenset(_HANDLERS) | DEADLINE_ACTIONS


def _date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


# --- classification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    bucket: Bucket
    overdue: bool = False
    reasons: tuple[str, ...] = ()  # why 滞后, in Chinese


def planned_percent_at(milestones: Sequence[MilestoneFact], day: dt.date) -> int | None:
    """The plan's percent at ``day``: that of the latest milestone due on or before it."""
    due = [m for m in milestones if m.planned_percent is not None and m.due_on <= day]
    return max(due, key=lambda m: m.due_on).planned_percent if due else None


def is_overdue(snap: Snapshot) -> bool:
    """Past the deadline in force at D, unless 销号 was applied for on or before the deadline."""
    if snap.deadline is None or snap.as_of <= snap.deadline or snap.state == State.closed.value:
        return False
    waiting_in_time = snap.state == State.verifying.value and snap.closure_applied_on is not None \
        and snap.closure_applied_on <= snap.deadline
    return not waiting_in_time


def classify(snap: Snapshot, period_start: dt.date, tolerance: int = DEFAULT_TOLERANCE) -> Classification:
    """The one bucket of a counted task at D (DESIGN §5); ``period_start`` opens the reporting period."""
    if snap.state == State.closed.value:
        return Classification(Bucket.completed)
    reasons = []
    overdue = is_overdue(snap)
    if overdue:
        reasons.append(N_("逾期"))
    missed = [m for m in snap.milestones if m.due_on < snap.as_of and (m.met_on is None or m.met_on > snap.as_of)]
    if missed:
        reasons.append(N_("阶段目标未按期完成"))
    planned = planned_percent_at(snap.milestones, snap.as_of)
    if planned is not None and snap.latest_percent is not None and snap.latest_percent < planned - tolerance:
        reasons.append(N_("进度低于计划"))
    if snap.long_term and snap.deadline is None and is_unreported(snap, period_start):
        reasons.append(N_("本期未报送"))
    return Classification(Bucket.behind if reasons else Bucket.on_schedule, overdue, tuple(reasons))


def is_unreported(snap: Snapshot, period_start: dt.date) -> bool:
    """本期未报送: a task under way with no report (nor plan approval) since the period began."""
    if snap.state != State.rectifying.value:
        return False
    return snap.last_activity_on is None or snap.last_activity_on < period_start


def next_change(snap: Snapshot, period_start: dt.date, next_period_start: dt.date) -> dt.date | None:
    """The first day after D on which the bucket or flags can change without a new event."""
    if snap.state in (State.closed.value, State.cancelled.value, State.pending.value, None):
        return None
    candidates = [next_period_start]
    if snap.deadline is not None and snap.deadline >= snap.as_of:
        candidates.append(snap.deadline + ONE_DAY)
    for m in snap.milestones:
        unmet_at_d = m.met_on is None or m.met_on > snap.as_of
        if unmet_at_d and m.due_on >= snap.as_of:
            candidates.append(m.due_on + ONE_DAY)
        if m.met_on is not None and m.met_on > snap.as_of:
            candidates.append(m.met_on)  # reported met later: the miss ends that day
        if m.planned_percent is not None and m.due_on > snap.as_of:
            candidates.append(m.due_on)
    return min(candidates)


# --- over time -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Days ``start`` … ``end`` − 1 (``end`` None: every day from ``start`` on) over which a counted
    task's bucket, 逾期 and 延期 stayed the same."""

    start: dt.date
    end: dt.date | None
    bucket: Bucket
    overdue: bool
    extended: bool


def periods(events: Sequence[HistoryEvent], milestones: Sequence[MilestoneFact], rule: ReportingRule,
            tolerance: int = DEFAULT_TOLERANCE) -> list[Period]:
    """What ``classify(replay(events, D, milestones), period start of D)`` gives for every date D, as
    spans: one pass over the events (in replay order), stepping from each day to the next on which an
    event takes effect or ``next_change`` says the facts may change. Days on which the task is not
    counted have no span. With no event ahead the facts settle (a deadline or milestone passes once; a
    period with no report stays unreported), so the last span is open."""
    ordered = sorted(events, key=lambda e: e.effective_on)  # stable: events of a day keep their order
    if not ordered:
        return []
    snap = Snapshot(as_of=ordered[0].effective_on, milestones=list(milestones))
    steps: list[tuple[dt.date, tuple | None]] = []
    day: dt.date | None = ordered[0].effective_on
    i = 0
    while day is not None:
        while i < len(ordered) and ordered[i].effective_on <= day:
            _apply(snap, ordered[i])
            i += 1
        snap.as_of = day
        facts, change = None, None
        if snap.counted:
            start, due = reporting_period(rule, day)
            result = classify(snap, start, tolerance)
            facts = (result.bucket, result.overdue, snap.extended)
            change = _next_change_in_time(snap, start, due)
        if not steps or steps[-1][1] != facts:
            steps.append((day, facts))
        ahead = ordered[i].effective_on if i < len(ordered) else None
        day = min((d for d in (ahead, change) if d is not None), default=None)
    return [Period(start, steps[k + 1][0] if k + 1 < len(steps) else None, *facts)
            for k, (start, facts) in enumerate(steps) if facts is not None]


def _next_change_in_time(snap: Snapshot, period_start: dt.date, period_due: dt.date) -> dt.date | None:
    """``next_change`` without the next period's start where a new period cannot change the facts: only
    a long-term task with no date under way, not yet unreported, can become 本期未报送 by a new period."""
    period_matters = snap.long_term and snap.deadline is None and snap.state == State.rectifying.value \
        and not is_unreported(snap, period_start)
    change = next_change(snap, period_start, period_due + ONE_DAY if period_matters else dt.date.max)
    return None if change == dt.date.max else change


# --- reporting periods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportingRule:
    """Admin-set reporting period: ``every`` month or quarter, due on ``due_day`` (e.g. the 25th)."""

    every: str = "month"
    due_day: int = 25

    def months(self) -> int:
        return 3 if self.every == "quarter" else 1


def _due_date(year: int, month: int, due_day: int) -> dt.date:
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - ONE_DAY).day
    return dt.date(year, month, min(due_day, last))


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def reporting_period(rule: ReportingRule, day: dt.date) -> tuple[dt.date, dt.date]:
    """(first day, due day) of the period containing ``day``: it runs from the day after the
    previous due date to its own due date."""
    step = rule.months()
    year, month = day.year, day.month
    if step == 3:
        month = ((month - 1) // 3) * 3 + 3  # the quarter's last month
    due = _due_date(year, month, rule.due_day)
    if day > due:
        year, month = _add_months(year, month, step)
        due = _due_date(year, month, rule.due_day)
    prev_year, prev_month = _add_months(year, month, -step)
    return _due_date(prev_year, prev_month, rule.due_day) + ONE_DAY, due


def last_due_period(rule: ReportingRule, day: dt.date) -> tuple[dt.date, dt.date]:
    """The latest period whose due date is on or before ``day``: what a month-end ledger asks about
    (on 31 October, with reports due on the 25th, the period 26 September – 25 October)."""
    start, due = reporting_period(rule, day)
    return (start, due) if due <= day else reporting_period(rule, start - ONE_DAY)
