"""总览 (the dashboard): today's figures of a region within a membership's scope.

Every figure counts the values kept on each task — ``schedule``, ``overdue``, ``not_reported``,
``escalation_level``, ``closed_on``, ``state`` — never a replay of the history (DESIGN §9): read from the
tallies the database keeps per region scope (``tracker.tally``) when the region's whole subtree is in
the membership's scope, else a ``GROUP BY`` over ``queries.filtered_tasks`` (which starts from
``permissions.visible_tasks``); ``Counter`` gives the same figures either way (tests/test_tally.py).

Counting follows ``reports``: a task counts from 交办 until 作废, and a split parent is a container,
not a task; ``schedule.compute`` keeps ``Task.schedule`` None for exactly the tasks ``reports.build``
leaves out, and the buckets are the task list's own ``SCHEDULE_FILTERS`` (``counted`` for 共). Each
figure carries the task-list query (``queries.TaskFilter.from_args`` names) that lists exactly its
tasks, so the page links every number to ``/tasks?…``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, selectinload

from tracker import calendars, schedule, tally
from tracker.models import Channel, EscalationRecord, Membership, Region, Round, Task, TaskUnit, Unit
from tracker.permissions import SUBTREE_ROLES, in_subtree
from tracker.queries import SCHEDULE_FILTERS, TaskFilter, filtered_tasks
from tracker.reports import LOCAL_LEVEL
from tracker.workflow import State

Params = dict[str, str | list[str]]

# The columns of every breakdown: 共 / 已完成 / 达到序时进度 / 滞后 / 其中逾期 (reports.CELLS without 经批准延期,
# which the task list cannot filter), each the list's ``schedule`` filter of that name.
CELLS = ("total", "completed", "on_schedule", "behind", "overdue")
SCHEDULE_OF = {"total": "counted", "completed": "completed", "on_schedule": "on_schedule", "behind": "behind",
               "overdue": "overdue"}
COUNTED = SCHEDULE_FILTERS["counted"][1]
# States a task is still being worked on in, once 交办: escalation levels are counted among these.
WORKING_STATES = [State.assigned.value, State.signed.value, State.rectifying.value, State.verifying.value]
UNIT_ROWS = 15  # units shown by 责任单位 and 本期未报送; the rest are in the 序时进度 report by unit
OLDEST_OVERDUE = 10
MONTHS = 12


def condition(cell: str):
    return SCHEDULE_FILTERS[SCHEDULE_OF[cell]][1]


@dataclass(frozen=True)
class Figure:
    """A count and the task-list query that lists exactly those tasks."""

    value: int
    params: Params


@dataclass
class Row:
    label: str
    figures: dict[str, Figure]
    ref: int | None = None  # the row's region or unit id

    @property
    def closure_rate(self) -> float:
        """销号率: 已完成 / 共, a fraction as in ``reports.Row`` (0 when there is no task)."""
        total = self.figures["total"].value
        return round(self.figures["completed"].value / total, 4) if total else 0.0


@dataclass(frozen=True)
class Month:
    start: dt.date
    end: dt.date
    closed: Figure


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    tasks: Figure


@dataclass(frozen=True)
class Overdue:
    task: Task
    workdays: int  # working days past the deadline in force


@dataclass
class Dashboard:
    region: Region
    today: dt.date
    base: Params  # the list filters every figure starts from (the region, when not the membership's own)
    totals: Row
    not_reported: Figure
    proposals: Figure
    by_channel_round: list[Row] = field(default_factory=list)
    by_region: list[Row] = field(default_factory=list)
    by_unit: list[Row] = field(default_factory=list)
    units_with_tasks: int = 0
    months: list[Month] = field(default_factory=list)
    closed_in_year: Figure | None = None
    levels: list[Level] = field(default_factory=list)
    oldest_overdue: list[Overdue] = field(default_factory=list)
    not_reported_units: list[tuple[str, Figure]] = field(default_factory=list)
    units_not_reported: int = 0


def build(s: Session, membership: Membership, region: Region, today: dt.date) -> Dashboard:
    """The dashboard of ``region`` (the membership's own region or one below it) as kept on the tasks."""
    base: Params = {} if region.id == membership.unit.region_id else {"region": str(region.id)}
    query = filtered_tasks(s, membership, TaskFilter(region_id=region.id)).where(COUNTED)
    # A region scope is counted from the tallies (the same figures, without reading every task of it).
    tallied = membership.role in SUBTREE_ROLES and in_subtree(membership, region)
    counter = Counter(s, query, region if tallied else None)
    totals = _row("合计", counter.cells([])[()], base)
    board = Dashboard(
        region=region, today=today, base=base, totals=totals,
        not_reported=Figure(counter.count(SCHEDULE_FILTERS["not_reported"][1]), {**base, "schedule": "not_reported"}),
        proposals=Figure(_tasks_with_proposals(s, query), {**base, "proposal": "1", "schedule": "counted"}),
    )
    board.by_channel_round = _by_channel_round(s, counter, base)
    board.by_region = _by_region(s, counter, region)
    board.by_unit, board.units_with_tasks = _by_unit(s, counter, base)
    board.months, board.closed_in_year = _closures(counter, base, today)
    board.levels = _levels(s, counter, base)
    board.oldest_overdue = _oldest_overdue(s, query, today)
    board.not_reported_units, board.units_not_reported = _not_reported_units(s, counter, base)
    return board


# --- counting -------------------------------------------------------------------------------------


class Counter:
    """The dashboard's counts: ``GROUP BY`` over ``query`` (the counted tasks in scope), or, given a
    ``region`` whose whole subtree is in scope, the same sums from the tallies (``tracker.tally``)."""

    def __init__(self, s: Session, query, region: Region | None) -> None:
        self.s, self.query, self.region = s, query, region

    def cells(self, keys: list[str], *where, lead: bool = False) -> dict[tuple, dict[str, int]]:
        """Every cell's count per group of ``keys`` (task columns, or ``unit_id`` of a lead unit)."""
        if self.region is not None:
            return tally.counts(self.s, [self.region.id], keys, {cell: condition(cell) for cell in CELLS},
                                where=[COUNTED, *where], lead=lead)
        query = self.query.where(*where)
        query = _lead_units(query) if lead else query
        return _counts(self.s, query, [TaskUnit.unit_id if k == "unit_id" else getattr(Task, k) for k in keys])

    def per_child(self, region: Region, children) -> tuple[dict[int, dict[str, int]], dict[str, int]]:
        """Every cell's count under each child region (with its subtree), and of ``region`` itself (本级)."""
        sums = {child.id: dict.fromkeys(CELLS, 0) for child in children}
        local = dict.fromkeys(CELLS, 0)
        if self.region is not None:
            found = tally.counts(self.s, list(sums), ["scope_id"], {cell: condition(cell) for cell in CELLS},
                                 where=[COUNTED])
            total = self.cells([])[()]
            for child_id in sums:
                sums[child_id].update(found.get((child_id,), {}))
            return sums, {cell: total[cell] - sum(c[cell] for c in sums.values()) for cell in CELLS}
        by_region_id = self.cells(["region_id"])
        paths = dict(self.s.execute(select(Region.id, Region.path)
                                    .where(Region.id.in_([key[0] for key in by_region_id]))).all())
        for (region_id,), counts in by_region_id.items():
            child = next((c.id for c in children if paths[region_id].startswith(c.path)), None)
            target = sums[child] if child is not None else local
            for cell in CELLS:
                target[cell] += counts[cell]
        return sums, local

    def count(self, *where) -> int:
        return self.cells([], *where)[()]["total"]

    def closed_per_month(self, windows: list[tuple[dt.date, dt.date]]) -> list[int]:
        """Tasks 已完成 now, by the month of their 销号日期, for each window (calendar months)."""
        first, last = windows[0][0], windows[-1][1]
        if self.region is not None:
            per_month = tally.closures(self.s, self.region, first, last)
            return [per_month.get(start, 0) for start, _end in windows]
        closed = self.query.where(condition("completed"), Task.closed_on >= first, Task.closed_on <= last)
        per_day = self.s.execute(closed.with_only_columns(Task.closed_on, func.count(Task.id))
                                 .group_by(Task.closed_on)).all()
        return [sum(count for day, count in per_day if start <= day <= end) for start, end in windows]


def _counts(s: Session, query, keys: list) -> dict[tuple, dict[str, int]]:
    """Every cell's count per group of ``keys`` (one GROUP BY; no keys: one row for the whole query)."""
    columns = [func.count(case((condition(cell), 1))).label(cell) for cell in CELLS]
    grouped = query.with_only_columns(*keys, *columns)
    if keys:
        grouped = grouped.group_by(*keys)
    found: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CELLS, 0))
    for row in s.execute(grouped):
        found[tuple(row[:len(keys)])] = dict(zip(CELLS, row[len(keys):], strict=True))
    return found  # without keys, the one row of the aggregate (zeros for an empty scope)


def _row(label: str, counts: dict[str, int], params: Params, ref: int | None = None) -> Row:
    return Row(label, {cell: Figure(counts[cell], {**params, "schedule": SCHEDULE_OF[cell]}) for cell in CELLS}, ref)


def _tasks_with_proposals(s: Session, query) -> int:
    """Tasks with an open 督办建议, found from the proposals (few) rather than from the tasks (many)."""
    proposed = and_(EscalationRecord.task_id == Task.id, EscalationRecord.status == "proposed")
    return s.scalar(query.join(EscalationRecord, proposed)
                    .with_only_columns(func.count(func.distinct(Task.id)))) or 0


def _by_channel_round(s: Session, counter: Counter, base: Params) -> list[Row]:
    counts = counter.cells(["channel_id", "round_id"])
    channels = {c.id: c for c in s.scalars(select(Channel))}
    rounds = {r.id: r for r in s.scalars(select(Round))}

    def order(key: tuple) -> tuple:
        c, r = channels[key[0]], rounds[key[1]]
        return c.position, c.name, r.position, r.name

    return [_row(f"{channels[c].name} · {rounds[r].name}", counts[(c, r)],
                 {**base, "channel": str(c), "round": str(r)}) for c, r in sorted(counts, key=order)]


def _by_region(s: Session, counter: Counter, region: Region) -> list[Row]:
    """The direct children of ``region``, each with its subtree, then 本级 (as ``reports`` groups)."""
    children = s.scalars(select(Region).where(Region.parent_id == region.id).order_by(Region.id)).all()
    sums, local = counter.per_child(region, children)
    rows = [_row(c.name, sums[c.id], {"region": str(c.id)}, c.id) for c in children]
    return [*rows, _row(LOCAL_LEVEL, local, {"region": str(region.id), "subtree": "0"})]


def _lead_units(query):
    return query.join(TaskUnit, and_(TaskUnit.task_id == Task.id, TaskUnit.role == "lead"))


def _by_unit(s: Session, counter: Counter, base: Params) -> tuple[list[Row], int]:
    """By lead unit (a task counts under each of its lead units): the units with the most overdue and
    behind tasks first, at most ``UNIT_ROWS`` of them; and how many units lead a counted task."""
    counts = counter.cells(["unit_id"], lead=True)
    ranked = sorted(counts, key=lambda k: (-counts[k]["overdue"], -counts[k]["behind"], -counts[k]["total"], k))
    shown = [k[0] for k in ranked[:UNIT_ROWS]]
    names = dict(s.execute(select(Unit.id, Unit.name).where(Unit.id.in_(shown))).all())
    return [_row(names[u], counts[(u,)], {**base, "lead_unit": str(u)}, u) for u in shown], len(counts)


def _not_reported_units(s: Session, counter: Counter, base: Params) -> tuple[list[tuple[str, Figure]], int]:
    """Lead units with tasks 本期未报送, most first (at most ``UNIT_ROWS``), and how many there are."""
    counts = counter.cells(["unit_id"], SCHEDULE_FILTERS["not_reported"][1], lead=True)
    rows = [(key[0], cells["total"]) for key, cells in counts.items() if cells["total"]]
    ranked = sorted(rows, key=lambda r: (-r[1], r[0]))
    shown = ranked[:UNIT_ROWS]
    names = dict(s.execute(select(Unit.id, Unit.name).where(Unit.id.in_([r[0] for r in shown]))).all())
    return [(names[u], Figure(count, {**base, "lead_unit": str(u), "schedule": "not_reported"}))
            for u, count in shown], len(rows)


def month_windows(today: dt.date, months: int = MONTHS) -> list[tuple[dt.date, dt.date]]:
    """The first and last day of each of the ``months`` calendar months up to and including today's."""
    windows = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(today.year * 12 + today.month - 1 - back, 12)
        start = dt.date(year, month + 1, 1)
        following = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
        windows.append((start, following - dt.timedelta(days=1)))
    return windows


def _closures(counter: Counter, base: Params, today: dt.date) -> tuple[list[Month], Figure]:
    """销号 per month over the last year, by the 销号日期 of the tasks closed now (a reopened task's
    closure no longer stands and is not counted)."""
    windows = month_windows(today)
    months = [Month(start, end, Figure(n, _closed_params(base, start, end)))
              for (start, end), n in zip(windows, counter.closed_per_month(windows), strict=True)]
    first, last = windows[0][0], windows[-1][1]
    return months, Figure(sum(m.closed.value for m in months), _closed_params(base, first, last))


def _closed_params(base: Params, start: dt.date, end: dt.date) -> Params:
    return {**base, "schedule": "completed", "closed_from": start.isoformat(), "closed_to": end.isoformat()}


def _levels(s: Session, counter: Counter, base: Params) -> list[Level]:
    """Tasks still being worked on, by the 督办等级 they have reached (levels recorded against a task)."""
    found = counter.cells(["escalation_level"], Task.state.in_(WORKING_STATES), Task.escalation_level > 0)
    counts = {key[0]: cells["total"] for key, cells in found.items()}
    params: Params = {**base, "state": list(WORKING_STATES), "schedule": "counted"}
    return [Level(rule.level, rule.name, Figure(counts.get(rule.level, 0), {**params, "level": str(rule.level)}))
            for rule in sorted(schedule.load_rules(s).values(), key=lambda r: r.level) if not rule.against_region]


def _oldest_overdue(s: Session, query, today: dt.date) -> list[Overdue]:
    tasks = s.scalars(query.where(condition("overdue")).order_by(Task.deadline, Task.id).limit(OLDEST_OVERDUE)
                      .options(selectinload(Task.region),
                               selectinload(Task.task_units).selectinload(TaskUnit.unit))).all()
    if not tasks:
        return []
    calendar = calendars.load(s)
    return [Overdue(t, calendar.workdays_between(t.deadline, today) if t.deadline else 0) for t in tasks]
