"""The §5 report: 共 / 已完成 / 达到序时进度 / 滞后（其中逾期）/ 其中经批准延期 / 销号率 as of a date,
grouped by channel × round, by region (direct children with their subtrees, plus 本级) or by lead
unit (a task counts once under each of its lead units), for one region's subtree."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session, aliased, selectinload

from tracker import periods, tally
from tracker.i18n import N_
from tracker.models import Channel, PeriodStale, Region, Round, Task, TaskPeriod, TaskUnit, Unit
from tracker.progress import Bucket, Classification, Snapshot
from tracker.schedule import classify_as_of, compute, counted_candidates, load_context, snapshots_as_of
from tracker.settings import TimeSettings

GROUPINGS = {"channel-round": N_("按来源和批次"), "region": N_("按地区"), "unit": N_("按责任单位")}
LOCAL_LEVEL = N_("本级")  # tasks of the report's own region, not of a child region
# Cell names a drill-down may ask for, and the task test behind each.
CELLS: dict[str, Callable[[Snapshot, Classification], bool]] = {
    "total": lambda snap, c: True,
    "completed": lambda snap, c: c.bucket == Bucket.completed,
    "on_schedule": lambda snap, c: c.bucket == Bucket.on_schedule,
    "behind": lambda snap, c: c.bucket == Bucket.behind,
    "overdue": lambda snap, c: c.overdue,
    "extended": lambda snap, c: snap.extended,
}


def cell_counts(snap: Snapshot, result: Classification) -> dict[str, int]:
    """The cells one counted task adds 1 to (共 always, its bucket, 逾期 and 延期 when they hold)."""
    return {cell: 1 for cell, test in CELLS.items() if test(snap, result)}


@dataclass
class Row:
    group: list[str]
    total: int = 0
    completed: int = 0
    on_schedule: int = 0
    behind: int = 0
    overdue: int = 0
    extended: int = 0
    task_ids: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list), repr=False)

    @property
    def closure_rate(self) -> float:
        """销号率: completed / total, as a fraction (0 when there is no task)."""
        return round(self.completed / self.total, 4) if self.total else 0.0

    def add(self, task_id: int, snap: Snapshot, result: Classification) -> None:
        for cell, test in CELLS.items():
            if test(snap, result):
                setattr(self, cell, getattr(self, cell) + 1)
                self.task_ids[cell].append(task_id)

    def add_counts(self, counts: dict[str, int]) -> None:
        """Add counts of tasks counted elsewhere (the database), without their ids."""
        for cell in CELLS:
            setattr(self, cell, getattr(self, cell) + int(counts.get(cell) or 0))

    def as_json(self) -> dict:
        # Not dataclasses.asdict: on Python 3.11 it cannot copy the defaultdict of ``task_ids``.
        return {"group": list(self.group), **{cell: getattr(self, cell) for cell in CELLS},
                "closure_rate": self.closure_rate}


@dataclass
class Report:
    region: Region
    as_of: dt.date
    by: str
    rows: list[Row]
    total: Row


def build(s: Session, region: Region, as_of: dt.date, by: str, settings: TimeSettings, *,
          today: dt.date | None = None, ids: bool = False) -> Report:
    """The report for ``region``'s subtree as of the end of ``as_of``: what the replay of the events
    gives (DESIGN §3), read from what is kept of it.

    As of ``today`` (when the caller says which day that is) the figures come from the values kept on
    each task, counted by the tallies (``_build_today``); as of any other date from the spans of
    序时进度 kept per task (``tracker.periods``), with the tasks whose spans are not caught up replayed
    here. ``ids`` keeps each cell's task ids (a drill-down); rows of today's figures carry none."""
    if today is not None and as_of == today:
        return _build_today(s, region, by, settings, today)
    return _build_past(s, region, as_of, by, settings, ids)


def replayed(s: Session, tally_: Tally, region: Region, as_of: dt.date, settings: TimeSettings, *,
             only: list[int] | None = None) -> None:
    """Count the tasks of ``region``'s subtree (of them, those in ``only``) by replaying their events."""
    query = counted_candidates(as_of).where(Task.region_id.in_(_subtree(region))).options(
        selectinload(Task.region), selectinload(Task.task_units).selectinload(TaskUnit.unit).selectinload(Unit.region))
    for start in range(0, len(only) if only is not None else 1, periods.BATCH):
        chunk = query if only is None else query.where(Task.id.in_(only[start:start + periods.BATCH]))
        tasks = s.scalars(chunk).all()
        snapshots = snapshots_as_of(s, tasks, as_of)
        results = classify_as_of(snapshots, as_of, settings)
        by_id = {t.id: t for t in tasks}
        for task_id, result in results.items():
            tally_.add(by_id[task_id], snapshots[task_id], result)


def _subtree(region: Region):
    return select(Region.id).where(Region.path.startswith(region.path, autoescape=True))


# A span's cells as conditions (``total`` counts every span).
SPAN_CELLS = {
    "completed": TaskPeriod.bucket == Bucket.completed.value,
    "on_schedule": TaskPeriod.bucket == Bucket.on_schedule.value,
    "behind": TaskPeriod.bucket == Bucket.behind.value,
    "overdue": TaskPeriod.overdue.is_(True),
    "extended": TaskPeriod.extended.is_(True),
}
# Above this many stale tasks (right after the migration or a change of the time settings) the spans are
# read without the stale ones by a subquery instead of a list.
STALE_LIST_MAX = 20_000


def _build_past(s: Session, region: Region, as_of: dt.date, by: str, settings: TimeSettings, ids: bool) -> Report:
    """As of a past (or future) date: the kept spans containing it, the stale tasks replayed.

    The stale tasks are read first, then replayed, then left out of the spans' count: a catch-up that
    commits in between cannot make a task counted twice or not at all."""
    tally_ = Tally(s, region, as_of, by, ids=ids)
    subtree = _subtree(region)
    stale = s.scalars(select(PeriodStale.task_id).distinct().join(Task, Task.id == PeriodStale.task_id)
                      .where(Task.region_id.in_(subtree)).order_by(PeriodStale.task_id)).all()
    if stale:
        replayed(s, tally_, region, as_of, settings, only=list(stale))
    child = aliased(Task)
    where = [Task.region_id.in_(subtree), ~exists().where(child.parent_id == Task.id)]
    if len(stale) > STALE_LIST_MAX:
        where.append(Task.id.not_in(select(PeriodStale.task_id)))
    elif stale:
        where.append(~periods.among(s, Task.id, stale))
    base = select(Task.id).join(TaskPeriod, periods.holding(as_of)).where(*where)
    if ids:
        _spans_one_by_one(s, tally_, base, by)
        return tally_.report()
    sums = [func.count().label("total"), *[func.sum(case((cond, 1), else_=0)).label(name)
                                           for name, cond in SPAN_CELLS.items()]]
    if by == "unit":
        total = s.execute(base.with_only_columns(*sums)).one()
        tally_.total.add_counts(total._asdict())
        lead = and_(TaskUnit.task_id == Task.id, TaskUnit.role == "lead")
        rows = s.execute(base.join(TaskUnit, lead).with_only_columns(TaskUnit.unit_id, *sums)
                         .group_by(TaskUnit.unit_id)).all()
        units = _unit_samples(s, [row.unit_id for row in rows])
        for row in rows:
            tally_.add_counts(units[row.unit_id], row._asdict(), total=False)
    elif by == "region":
        paths = dict(s.execute(select(Region.id, Region.path).where(Region.id.in_(subtree))).all())
        for row in s.execute(base.with_only_columns(Task.region_id, *sums).group_by(Task.region_id)):
            tally_.add_counts(SimpleNamespace(region=SimpleNamespace(path=paths[row.region_id])), row._asdict())
    else:
        for row in s.execute(base.with_only_columns(Task.channel_id, Task.round_id, *sums)
                             .group_by(Task.channel_id, Task.round_id)):
            tally_.add_counts(SimpleNamespace(channel_id=row.channel_id, round_id=row.round_id), row._asdict())
    return tally_.report()


def _unit_samples(s: Session, unit_ids: list[int]) -> dict[int, SimpleNamespace]:
    """A stand-in task led by each unit, for the grouping by unit (names and region paths as plain columns:
    a province's report has a thousand units)."""
    units = {row.id: SimpleNamespace(name=row.name, region=SimpleNamespace(path=row.path)) for row in
             s.execute(select(Unit.id, Unit.name, Region.path).join(Region, Unit.region_id == Region.id)
                       .where(Unit.id.in_(unit_ids)))} if unit_ids else {}
    return {uid: SimpleNamespace(task_units=[SimpleNamespace(role="lead", unit_id=uid, unit=unit)])
            for uid, unit in units.items()}


def _spans_one_by_one(s: Session, tally_: Tally, base, by: str) -> None:
    """Each task with its span (a drill-down keeps the ids of every cell)."""
    rows = s.execute(base.join(Region, Region.id == Task.region_id).with_only_columns(
        Task.id, Task.channel_id, Task.round_id, Region.path, TaskPeriod.bucket, TaskPeriod.overdue,
        TaskPeriod.extended)).all()
    leads: dict[int, list[int]] = defaultdict(list)
    if by == "unit":
        for start in range(0, len(rows), periods.BATCH):
            chunk = [row.id for row in rows[start:start + periods.BATCH]]
            for task_id, unit_id in s.execute(select(TaskUnit.task_id, TaskUnit.unit_id).where(
                    periods.among(s, TaskUnit.task_id, chunk), TaskUnit.role == "lead").order_by(TaskUnit.position)):
                leads[task_id].append(unit_id)
    samples = _unit_samples(s, sorted({u for units in leads.values() for u in units}))
    for row in rows:
        task = SimpleNamespace(id=row.id, channel_id=row.channel_id, round_id=row.round_id,
                               region=SimpleNamespace(path=row.path),
                               task_units=[samples[u].task_units[0] for u in leads.get(row.id, ())])
        result = Classification(Bucket(row.bucket), row.overdue)
        tally_.add(task, SimpleNamespace(extended=row.extended), result)


class Tally:
    """A report built task by task: ``build`` feeds it every counted task at once, the ledger export
    (``ledger.py``) batch by batch as it streams the tasks, so both give the same figures."""

    def __init__(self, s: Session, region: Region, as_of: dt.date, by: str, *, ids: bool = True) -> None:
        if by not in GROUPINGS:
            raise ValueError(by)
        self.region, self.as_of, self.by = region, as_of, by
        self.ids = ids  # keep each cell's task ids (for a drill-down); the ledger needs only the counts
        self._key = _KEYS[by](s, region)
        # By region, every direct child and 本级 have a row, with or without tasks.
        self._rows: dict[tuple, Row] = {key: Row(group=names) for key, names in getattr(self._key, "fixed_rows", ())}
        self.total = Row(group=[N_("合计")])

    def add(self, task: Task, snap: Snapshot, result: Classification) -> None:
        """Count one task counted at ``as_of`` (its snapshot and classification at that date)."""
        if not self.ids:
            self.add_counts(task, cell_counts(snap, result))
            return
        self.total.add(task.id, snap, result)
        for key, names in self._key(task):
            self._rows.setdefault(key, Row(group=names)).add(task.id, snap, result)

    def add_counts(self, sample, counts: dict[str, int], *, total: bool = True) -> None:
        """Counts of a group of tasks that share ``sample``'s grouping key (its channel and round, its
        region, or its lead units)."""
        if total:
            self.total.add_counts(counts)
        for key, names in self._key(sample):
            self._rows.setdefault(key, Row(group=names)).add_counts(counts)

    def report(self) -> Report:
        return Report(self.region, self.as_of, self.by, [self._rows[k] for k in sorted(self._rows)], self.total)


# --- today: the values kept on the tasks, counted by the database ----------------------------------------


# Today's cells as conditions on the kept values (the tallies' columns have the same names).
TODAY_CELLS = {
    "total": True,
    "completed": Task.schedule == Bucket.completed.value,
    "on_schedule": Task.schedule == Bucket.on_schedule.value,
    "behind": Task.schedule == Bucket.behind.value,
    "overdue": Task.overdue.is_(True),
    "extended": tally.EXTENDED,
}


def _build_today(s: Session, region: Region, by: str, settings: TimeSettings, today: dt.date) -> Report:
    """Today's figures: the tallies of the kept values in the region's subtree (``tracker.tally``), with
    the few tasks whose values are due to change today and were not refreshed yet computed here."""
    tally_ = Tally(s, region, today, by)
    counted = [Task.schedule.is_not(None)]
    total = tally.counts(s, [region.id], [], TODAY_CELLS, where=counted)[()]
    if by == "unit":
        groups = tally.counts(s, [region.id], ["unit_id"], TODAY_CELLS, where=counted, lead=True)
        units = _unit_samples(s, [key[0] for key in groups])
        for (unit_id,), counts in groups.items():
            tally_.add_counts(units[unit_id], counts, total=False)
        tally_.total.add_counts(total)
    elif by == "region":  # each child's subtree is its own scope; 本级 is what the children leave
        children = s.scalars(select(Region).where(Region.parent_id == region.id)).all()
        found = tally.counts(s, [c.id for c in children], ["scope_id"], TODAY_CELLS, where=counted)
        local = dict(total)
        for child in children:
            counts = found.get((child.id,), dict.fromkeys(TODAY_CELLS, 0))
            tally_.add_counts(SimpleNamespace(region=child), counts)
            local = {cell: local[cell] - counts[cell] for cell in TODAY_CELLS}
        tally_.add_counts(SimpleNamespace(region=region), local)
    else:
        for (channel_id, round_id), counts in tally.counts(s, [region.id], ["channel_id", "round_id"], TODAY_CELLS,
                                                           where=counted).items():
            tally_.add_counts(SimpleNamespace(channel_id=channel_id, round_id=round_id), counts)
    _replace_unrefreshed(s, tally_, region, settings, today)
    return tally_.report()


def _kept_counts(task: Task) -> dict[str, int]:
    return {"total": 1, task.schedule: 1, "overdue": int(task.overdue), "extended": int(task.extension_count > 0)}


def _replace_unrefreshed(s: Session, tally_: Tally, region: Region, settings: TimeSettings, today: dt.date) -> None:
    """Tasks whose kept values may have changed by today (``next_check_on``), before the day's refresh:
    their kept values are taken out of the counts and today's put in."""
    ctx = load_context(s, settings)
    subtree = select(Region.id).where(Region.path.startswith(region.path, autoescape=True))
    query = select(Task).where(Task.region_id.in_(subtree), Task.schedule.is_not(None),
                               Task.next_check_on <= today).options(
        selectinload(Task.milestones), selectinload(Task.children), selectinload(Task.region),
        selectinload(Task.task_units).selectinload(TaskUnit.unit).selectinload(Unit.region))
    for task in s.scalars(query):
        tally_.add_counts(task, {cell: -n for cell, n in _kept_counts(task).items()})
        values = compute(task, today, ctx)
        if values["schedule"] is not None:
            tally_.add_counts(task, {"total": 1, values["schedule"]: 1, "overdue": int(values["overdue"]),
                                     "extended": int(task.extension_count > 0)})


def _by_channel_round(s: Session, region: Region):
    channels = {c.id: c for c in s.scalars(select(Channel))}
    rounds = {r.id: r for r in s.scalars(select(Round))}

    def key(task: Task):
        c, r = channels[task.channel_id], rounds[task.round_id]
        yield (c.position, c.name, r.position, r.name), [c.name, r.name]

    return key


def _by_region(s: Session, region: Region):
    children = s.scalars(select(Region).where(Region.parent_id == region.id)).all()

    def key(task: Task):
        for child in children:
            if task.region.path.startswith(child.path):
                yield (0, child.id), [child.name]
                return
        yield (1, 0), [LOCAL_LEVEL]

    # In the order the regions were set up (the 14 市州 in the province's usual order), 本级 last.
    key.fixed_rows = [((0, c.id), [c.name]) for c in children] + [((1, 0), [LOCAL_LEVEL])]
    return key


def _by_unit(s: Session, region: Region):
    # By the names of the unit's region chain, then its name: the same order in every installation.
    names = dict(s.execute(select(Region.id, Region.name)).all())
    keys: dict[int, tuple] = {}  # unit id -> its row key, worked out once per unit

    def key(task: Task):
        for tu in task.task_units:
            if tu.role == "lead":
                if tu.unit_id not in keys:
                    chain = tuple(names[int(p)] for p in tu.unit.region.path.strip("/").split("/") if p)
                    keys[tu.unit_id] = (chain, tu.unit.name, tu.unit_id)
                yield keys[tu.unit_id], [keys[tu.unit_id][1]]

    return key


_KEYS = {"channel-round": _by_channel_round, "region": _by_region, "unit": _by_unit}


def find_row(report: Report, group: list[str]) -> Row | None:
    if group == report.total.group:
        return report.total
    return next((row for row in report.rows if row.group == group), None)
