"""Read-side queries for pages: the filtered, keyset-paginated task list, 待办 and form choices.

Every task query starts from ``permissions.visible_tasks``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, Select, exists, func, literal_column, or_, select, tuple_
from sqlalchemy.orm import Session, joinedload, load_only, selectinload

from tracker.i18n import N_, Msg
from tracker.models import (
    Channel,
    EscalationRecord,
    Event,
    Evidence,
    ExtensionRequest,
    Membership,
    ProgressReport,
    Region,
    Role,
    Round,
    Task,
    TaskLink,
    TaskUnit,
    Unit,
    UnitAlias,
)
from tracker.permissions import SUBTREE_ROLES, can, visible_regions, visible_tasks, visible_units
from tracker.workdays import WorkCalendar
from tracker.workflow import State

# 整改时限 as the list sorts by it, tasks without one last: the keyset's key, written as ix_task_deadline_order
# is (models.Task; a literal, not a parameter), so that PostgreSQL may walk that index instead of sorting —
# the whole province's list takes a page off its head. The list orders by it only for a region scope (a
# supervisor's, a viewer's) narrowed by region alone (``list_order``): a subtree holds its share of every
# stretch of the order. Otherwise the walk is a trap: a unit's own tasks are too few (one in ~150, and the
# walk probes the task's units at every step), and other filters' tasks bunch up along the order (待交办 have
# no deadline and come last, 逾期 and 已销号 early, a deadline range in one stretch), so a walk from the start
# reads most of the ledger before a page is full — seconds, where sorting the few thousand tasks the
# filter's own indexes find takes milliseconds. There (and in 待办) the same order is written as
# SORTED_BY_DEADLINE, which no index matches, so the planner sorts.
DEADLINE_ORDER = func.coalesce(Task.deadline, literal_column("'9999-12-31'", Date))
SORTED_BY_DEADLINE = (Task.deadline.is_(None), Task.deadline, Task.id)


@dataclass
class TaskFilter:
    """What the task list is filtered and sorted by (all optional)."""

    channel_id: int | None = None
    round_id: int | None = None
    region_id: int | None = None  # this region and its subtree
    subtree: bool = True  # False: the region itself only (本级), not the regions below it
    unit_id: int | None = None  # lead or participant
    lead_unit_id: int | None = None  # as 牵头单位 only (the dashboard and reports count by lead unit)
    states: list[str] = field(default_factory=list)
    deadline_from: dt.date | None = None
    deadline_to: dt.date | None = None
    q: str = ""
    schedule: str = ""  # counted / completed / on_schedule / behind / overdue / not_reported (today's values)
    level: int | None = None  # 督办等级 (escalation level) exactly
    proposal: bool = False  # with an open escalation proposal (待决定的升级建议)
    closed_from: dt.date | None = None  # 销号日期 range, for closures per month
    closed_to: dt.date | None = None
    reopened: bool = False  # reopened at least once (返黑返臭)
    sort: str = "deadline"

    @classmethod
    def from_args(cls, args) -> TaskFilter:
        """From request args; malformed values are ignored rather than failing the page."""
        return cls(
            channel_id=_int(args.get("channel")),
            round_id=_int(args.get("round")),
            region_id=_int(args.get("region")),
            subtree=args.get("subtree") != "0",
            unit_id=_int(args.get("unit")),
            lead_unit_id=_int(args.get("lead_unit")),
            states=[st for st in args.getlist("state") if st in State.__members__],
            deadline_from=_date(args.get("deadline_from")),
            deadline_to=_date(args.get("deadline_to")),
            q=(args.get("q") or "").strip()[:100],
            schedule=args.get("schedule") if args.get("schedule") in SCHEDULE_FILTERS else "",
            level=_int(args.get("level")),
            proposal=args.get("proposal") == "1",
            closed_from=_date(args.get("closed_from")),
            closed_to=_date(args.get("closed_to")),
            reopened=args.get("reopened") == "1",
            sort=args.get("sort") if args.get("sort") in SORTS else "deadline",
        )


def _int(value: str | None) -> int | None:
    """A 32-bit integer, else None (a longer number would overflow the database driver)."""
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or abs(number) < 2**31 else None


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


# 序时进度 filters on today's values kept on each task.
SCHEDULE_FILTERS = {
    # 纳入统计: 交办 and not 作废, split parents left out — the tasks the 序时进度 reports count (``schedule.compute``).
    "counted": (N_("纳入统计"), Task.schedule.is_not(None)),
    "completed": (N_("已完成"), Task.schedule == "completed"),
    "on_schedule": (N_("达到序时进度"), Task.schedule == "on_schedule"),
    "behind": (N_("滞后"), Task.schedule == "behind"),
    "overdue": (N_("逾期"), Task.overdue.is_(True)),
    "not_reported": (N_("本期未报送"), Task.not_reported.is_(True)),
}

# name -> (label, key expression, descending)
SORTS: dict[str, tuple[str, Any, bool]] = {
    "deadline": (N_("按整改时限"), DEADLINE_ORDER, False),
    "updated": (N_("按最近更新"), Task.updated_at, True),
    "code": (N_("按问题编号"), Task.code, False),
}


def list_order(membership: Membership, f: TaskFilter) -> tuple[Any, tuple[Any, ...], bool]:
    """The list's keyset key, its ORDER BY and whether it descends, for this filter (see ``DEADLINE_ORDER``)."""
    _label, key, descending = SORTS[f.sort]
    if descending:
        return key, (key.desc(), Task.id.desc()), True
    if key is DEADLINE_ORDER and (membership.role not in SUBTREE_ROLES
                                  or f != TaskFilter(region_id=f.region_id, subtree=f.subtree, sort=f.sort)):
        return key, SORTED_BY_DEADLINE, False
    return key, (key.asc(), Task.id.asc()), False


def filtered_tasks(s: Session, membership: Membership, f: TaskFilter) -> Select[tuple[Task]]:
    query = visible_tasks(membership)
    if f.channel_id:
        query = query.where(Task.channel_id == f.channel_id)
    if f.round_id:
        query = query.where(Task.round_id == f.round_id)
    if f.region_id:
        region = s.get(Region, f.region_id)
        subtree = select(Region.id).where(Region.path.startswith(region.path if region else "-", autoescape=True))
        query = query.where(Task.region_id.in_(subtree))
    if f.unit_id:
        query = query.where(exists().where(TaskUnit.task_id == Task.id, TaskUnit.unit_id == f.unit_id))
    if f.states:
        query = query.where(Task.state.in_(f.states))
    if f.deadline_from:
        query = query.where(Task.deadline >= f.deadline_from)
    if f.deadline_to:
        query = query.where(Task.deadline <= f.deadline_to)
    if f.schedule:
        query = query.where(SCHEDULE_FILTERS[f.schedule][1])
    query = _more_filters(query, f)
    if f.q:
        query = query.where(or_(Task.code.contains(f.q, autoescape=True), Task.title.contains(f.q, autoescape=True),
                                Task.description.contains(f.q, autoescape=True)))
    return query


def _more_filters(query: Select[tuple[Task]], f: TaskFilter) -> Select[tuple[Task]]:
    """The dashboard's click-through filters: escalation level, open proposals, closure dates, reopens,
    本级 only, lead unit."""
    if f.region_id and not f.subtree:
        query = query.where(Task.region_id == f.region_id)
    if f.lead_unit_id:
        query = query.where(exists().where(TaskUnit.task_id == Task.id, TaskUnit.unit_id == f.lead_unit_id,
                                           TaskUnit.role == "lead"))
    if f.level is not None:
        query = query.where(Task.escalation_level == f.level)
    if f.proposal:
        query = query.where(exists().where(EscalationRecord.task_id == Task.id, EscalationRecord.status == "proposed"))
    if f.closed_from:
        query = query.where(Task.closed_on >= f.closed_from)
    if f.closed_to:
        query = query.where(Task.closed_on <= f.closed_to)
    if f.reopened:
        query = query.where(Task.reopen_count > 0)
    return query


# What a list row shows: its units in one query for the whole page; its region, channel and round (a few
# hundred rows in all) joined to the task's own row.
LIST_OPTIONS = (selectinload(Task.task_units).selectinload(TaskUnit.unit), joinedload(Task.region),
                joinedload(Task.channel), joinedload(Task.round))

# The task's own columns a list row shows (the page and the API's task summaries), and no others: the list
# sorts the filtered tasks before it keeps a page, and whole rows with their long texts (问题描述, 整改措施 …)
# made a county's sort three times slower. Any other column read from a listed task raises.
LIST_COLUMNS = load_only(
    Task.id, Task.code, Task.title, Task.kind, Task.category, Task.state, Task.channel_id, Task.round_id,
    Task.region_id, Task.deadline, Task.deadline_text, Task.deadline_kind, Task.assigned_on, Task.closed_on,
    Task.escalation_level, Task.schedule, Task.overdue, Task.not_reported, Task.version, Task.updated_at,
    raiseload=True)


@dataclass
class Page:
    tasks: list[Task]
    next_cursor: str | None
    total: int
    by_state: dict[str, int]


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, dt.date | dt.datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, sort: str) -> tuple[Any, int] | None:
    if not cursor:
        return None
    try:
        key, task_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if sort == "deadline":
            key = dt.date.fromisoformat(key)
        elif sort == "updated":
            key = dt.datetime.fromisoformat(key)
        return key, int(task_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        return None


def task_page(s: Session, membership: Membership, f: TaskFilter, cursor: str | None, size: int) -> Page:
    """One page of the list by keyset (sort key, id): deep pages cost the same as the first.

    The page's ids are chosen first, from the filter's indexes alone where they hold what the filter and
    the order read (a county and a state: index-only), and only those rows are read: sorting the whole
    rows of a county's few thousand tasks meant as many scattered reads of the table."""
    base = filtered_tasks(s, membership, f)
    key, order, descending = list_order(membership, f)
    page_ids = base.with_only_columns(Task.id)
    after = decode_cursor(cursor, f.sort)
    if after is not None:
        pair, bound = tuple_(key, Task.id), tuple_(after[0], after[1])
        page_ids = page_ids.where(pair < bound if descending else pair > bound)
    query = select(Task, key.label("sort_key")).where(Task.id.in_(page_ids.order_by(*order).limit(size + 1)))
    rows = s.execute(query.order_by(*order).options(LIST_COLUMNS, *LIST_OPTIONS)).all()
    next_cursor = encode_cursor([rows[size - 1].sort_key, rows[size - 1][0].id]) if len(rows) > size else None
    counts = dict(s.execute(base.with_only_columns(Task.state, func.count()).group_by(Task.state)).all())
    return Page([r[0] for r in rows[:size]], next_cursor, sum(counts.values()), counts)


def todo(s: Session, membership: Membership, limit: int = 200) -> list[tuple[Task, list[str]]]:
    """待办: tasks waiting for an action by this membership, with the actions it may take."""
    condition = _todo_condition(membership)
    if condition is None:
        return []
    tasks = s.scalars(visible_tasks(membership).where(condition)
                      .order_by(*SORTED_BY_DEADLINE).limit(limit)
                      .options(*TODO_OPTIONS)).all()
    deciding = _proposals_decided_by(s, membership, [t.id for t in tasks])
    result = []
    for task in tasks:
        actions = [a for a in TODO_ACTIONS if can(membership, a, task)]
        if task.not_reported and "report" in actions:
            actions = ["not_reported", *actions]
        if task.id in deciding:
            actions = [*actions, "confirm_measure"]
        if actions:
            result.append((task, actions))
    return result


def _todo_condition(membership: Membership):
    """Which tasks wait on this membership: set-based, so 待办 stays cheap on a large ledger."""
    plan_waiting = (Task.state == State.signed.value) & Task.plan_submitted_on.is_not(None)
    if membership.role == Role.supervisor.value:
        pending_extension = exists().where(ExtensionRequest.task_id == Task.id, ExtensionRequest.status == "pending")
        proposal = exists().where(EscalationRecord.task_id == Task.id, EscalationRecord.status == "proposed",
                                  EscalationRecord.deciding_region_id == membership.unit.region_id)
        return or_(Task.state.in_([State.pending.value, State.verifying.value]), plan_waiting,
                   (Task.state == State.rectifying.value) & pending_extension, proposal)
    if membership.role == Role.unit.value:
        lead = exists().where(TaskUnit.task_id == Task.id, TaskUnit.unit_id == membership.unit_id,
                              TaskUnit.role == "lead")
        needs_me = or_(Task.state == State.assigned.value,
                       (Task.state == State.signed.value) & Task.plan_submitted_on.is_(None),
                       (Task.state == State.rectifying.value) & or_(Task.not_reported, Task.schedule == "behind"))
        return lead & needs_me
    return None


# What ``can`` reads of each task (its region, channel, the units that registered and assigned it with
# their regions) and what the page shows, each in one query for the whole list.
TODO_OPTIONS = (
    selectinload(Task.task_units), selectinload(Task.children), selectinload(Task.extension_requests),
    selectinload(Task.region), selectinload(Task.channel),
    selectinload(Task.assigned_by_unit).selectinload(Unit.region),
    selectinload(Task.registered_by_unit).selectinload(Unit.region),
)

# Actions that make a task "waiting for me".
TODO_ACTIONS = ("assign", "sign", "submit_plan", "approve_plan", "decide_extension", "report", "submit",
                "pre_verify", "close")


# --- choices for forms ------------------------------------------------------------------------------


def region_choices(s: Session, membership: Membership) -> list[tuple[int, str]]:
    """The regions of the subtree, indented by level (plain columns: a province has about 150)."""
    regions = s.execute(visible_regions(membership).order_by(Region.path)
                        .with_only_columns(Region.id, Region.name, Region.level)).all()
    top = membership.unit.region.level
    return [(r.id, "　" * (r.level - top) + r.name) for r in regions]


def unit_choices(s: Session, membership: Membership, *, anywhere: bool = False,
                 ids: Iterable[int] | None = None) -> list[tuple[int, str]]:
    """Active units in scope (``anywhere``: in any region), labelled with their region; ``ids`` keeps only
    those units — the chosen ones a type-ahead field shows and accepts (``views.common.unit_picker``)."""
    query = (select(Unit).join(Region, Unit.region_id == Region.id) if anywhere else visible_units(membership))
    if ids is not None:
        wanted = sorted({i for i in ids if isinstance(i, int) and 0 < i < 2**31})  # posted ids: 32-bit or none
        if not wanted:
            return []
        query = query.where(Unit.id.in_(wanted))
    # Plain columns, region included: a province holds about a thousand units (no ORM object, no lazy
    # load per region).
    rows = s.execute(query.where(Unit.active.is_(True)).order_by(Region.path, Unit.name)
                     .with_only_columns(Unit.id, Unit.name, Region.level, Region.name.label("region_name"))).all()
    return [(r.id, _unit_label(r)) for r in rows]


def _unit_label(row) -> str:
    return row.name if row.level == 0 else Msg("{unit}（{region}）", unit=row.name, region=row.region_name)


def unit_matches(s: Session, membership: Membership, text: str, *, anywhere: bool = False,
                 limit: int = 20) -> list[tuple[int, str]]:
    """Active units in scope whose name, alias or region contains ``text`` (the type-ahead's answer),
    whole names first, then by region and name; at most ``limit``."""
    text = " ".join(text.split())[:100]
    if not text:
        return []
    query = (select(Unit).join(Region, Unit.region_id == Region.id) if anywhere else visible_units(membership))
    alias = exists().where(UnitAlias.unit_id == Unit.id, UnitAlias.alias.contains(text, autoescape=True))
    rows = s.execute(query.where(Unit.active.is_(True), or_(
        Unit.name.contains(text, autoescape=True), Region.name.contains(text, autoescape=True), alias))
        .order_by((Unit.name == text).desc(), Region.path, Unit.name).limit(limit)
        .with_only_columns(Unit.id, Unit.name, Region.level, Region.name.label("region_name"))).all()
    return [(r.id, _unit_label(r)) for r in rows]


def channel_choices(s: Session) -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in s.scalars(select(Channel).order_by(Channel.position, Channel.id))]


def round_choices(s: Session) -> list[tuple[int, str]]:
    return [(r.id, r.name) for r in s.scalars(select(Round).order_by(Round.position, Round.id))]


# Everything the task page shows of a task, in a number of queries that does not grow with its history
# (tests/test_query_counts.py). Every round trip counts on a busy machine (the database waits its turn for
# the CPU), so what each row names once (channel, region, unit, author …) is joined to that row, and so
# are the task's few units, milestones and extension requests (a handful each: their product stays small);
# the collections that grow — reports with their files, evidence, split children — come one query each.
TASK_PAGE_OPTIONS = (
    joinedload(Task.channel), joinedload(Task.round), joinedload(Task.region), joinedload(Task.problem),
    joinedload(Task.task_units).joinedload(TaskUnit.unit),
    joinedload(Task.milestones),
    joinedload(Task.extension_requests),
    selectinload(Task.reports).selectinload(ProgressReport.evidence),
    selectinload(Task.reports).joinedload(ProgressReport.membership).joinedload(Membership.unit),
    selectinload(Task.evidence).joinedload(Evidence.membership).joinedload(Membership.unit),
    selectinload(Task.children),
)


def visible_task(s: Session, membership: Membership, task_id: int) -> Task | None:
    """One task within scope, with what its page shows (``TASK_PAGE_OPTIONS``); None when out of scope."""
    query = visible_tasks(membership).where(Task.id == task_id).options(*TASK_PAGE_OPTIONS)
    return s.execute(query).unique().scalar_one_or_none()


def timeline(s: Session, task: Task) -> list[Event]:
    """The task's events in order, with who recorded each (membership, unit, user) joined: one query."""
    return s.scalars(select(Event).where(Event.task_id == task.id).order_by(Event.id).options(
        joinedload(Event.membership).joinedload(Membership.unit), joinedload(Event.user))).all()


def linked_tasks(s: Session, membership: Membership, task: Task) -> list[tuple[Task, str, str]]:
    """举一反三 and merge links in both directions, only to tasks the membership can see."""
    rows = s.execute(select(TaskLink).where(or_(TaskLink.task_id == task.id, TaskLink.other_task_id == task.id))
                     .order_by(TaskLink.id)).scalars().all()
    other_ids = {r.other_task_id if r.task_id == task.id else r.task_id: r for r in rows}
    if not other_ids:
        return []
    visible = s.scalars(visible_tasks(membership).where(Task.id.in_(other_ids))).all()
    return [(t, other_ids[t.id].kind, other_ids[t.id].note) for t in visible]


# Events that set or move a deadline, shown as the deadline's history on the task page.
DEADLINE_EVENTS = ("assign", "decide_extension", "change_deadline", "reopen", "import")


def deadline_facts(calendar: WorkCalendar, task: Task, today: dt.date) -> dict[str, Any]:
    """Working days left or overdue against the deadline in force, and whether that is 暂定."""
    if task.deadline is None or task.state in ("closed", "cancelled", "pending"):
        return {}
    if today > task.deadline:
        return {"overdue_workdays": calendar.workdays_between(task.deadline, today),
                "provisional": calendar.is_provisional(today)}
    return {"workdays_left": calendar.workdays_between(today, task.deadline),
            "provisional": calendar.is_provisional(task.deadline)}


def _proposals_decided_by(s: Session, membership: Membership, task_ids: list[int]) -> set[int]:
    """Of these tasks, those with a measure proposed for this supervisor's region to decide (one query)."""
    if membership.role != Role.supervisor.value or not task_ids:
        return set()
    return set(s.scalars(select(EscalationRecord.task_id).where(
        EscalationRecord.task_id.in_(task_ids), EscalationRecord.status == "proposed",
        EscalationRecord.deciding_region_id == membership.unit.region_id)))
