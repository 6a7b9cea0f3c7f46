"""The §5 report: 共 / 已完成 / 达到序时进度 / 滞后（其中逾期）/ 其中经批准延期 / 销号率 as of a date,
grouped by channel × round, by region (direct children with their subtrees, plus 本级) or by lead
unit (a task counts once under each of its lead units), for one region's subtree."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tracker.models import Channel, Region, Round, Task, TaskUnit
from tracker.progress import Bucket, Classification, Snapshot
from tracker.schedule import classify_as_of, counted_candidates, snapshots_as_of
from tracker.settings import TimeSettings

GROUPINGS = {"channel-round": "按来源和批次", "region": "按地区", "unit": "按责任单位"}
LOCAL_LEVEL = "本级"  # tasks of the report's own region, not of a child region
# Cell names a drill-down may ask for, and the task test behind each.
CELLS: dict[str, Callable[[Snapshot, Classification], bool]] = {
    "total": lambda snap, c: True,
    "completed": lambda snap, c: c.bucket == Bucket.completed,
    "on_schedule": lambda snap, c: c.bucket == Bucket.on_schedule,
    "behind": lambda snap, c: c.bucket == Bucket.behind,
    "overdue": lambda snap, c: c.overdue,
    "extended": lambda snap, c: snap.extended,
}


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


def build(s: Session, region: Region, as_of: dt.date, by: str, settings: TimeSettings) -> Report:
    """The report for ``region``'s subtree as of the end of ``as_of``, from the events (DESIGN §3)."""
    tally = Tally(s, region, as_of, by)
    subtree = select(Region.id).where(Region.path.startswith(region.path, autoescape=True))
    tasks = s.scalars(counted_candidates(as_of).where(Task.region_id.in_(subtree)).options(
        selectinload(Task.region), selectinload(Task.task_units).selectinload(TaskUnit.unit))).all()
    snapshots = snapshots_as_of(s, tasks, as_of)
    results = classify_as_of(snapshots, as_of, settings)
    by_id = {t.id: t for t in tasks}
    for task_id, result in results.items():
        tally.add(by_id[task_id], snapshots[task_id], result)
    return tally.report()


class Tally:
    """A report built task by task: ``build`` feeds it every counted task at once, the ledger export
    (``ledger.py``) batch by batch as it streams the tasks, so both give the same figures."""

    def __init__(self, s: Session, region: Region, as_of: dt.date, by: str) -> None:
        if by not in GROUPINGS:
            raise ValueError(by)
        self.region, self.as_of, self.by = region, as_of, by
        self._key = _KEYS[by](s, region)
        # By region, every direct child and 本级 have a row, with or without tasks.
        self._rows: dict[tuple, Row] = {key: Row(group=names) for key, names in getattr(self._key, "fixed_rows", ())}
        self.total = Row(group=["合计"])

    def add(self, task: Task, snap: Snapshot, result: Classification) -> None:
        """Count one task counted at ``as_of`` (its snapshot and classification at that date)."""
        self.total.add(task.id, snap, result)
        for key, names in self._key(task):
            self._rows.setdefault(key, Row(group=names)).add(task.id, snap, result)

    def report(self) -> Report:
        return Report(self.region, self.as_of, self.by, [self._rows[k] for k in sorted(self._rows)], self.total)


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

    def key(task: Task):
        for tu in task.task_units:
            if tu.role == "lead":
                chain = tuple(names[int(p)] for p in tu.unit.region.path.strip("/").split("/") if p)
                yield (chain, tu.unit.name, tu.unit_id), [tu.unit.name]

    return key


_KEYS = {"channel-round": _by_channel_round, "region": _by_region, "unit": _by_unit}


def find_row(report: Report, group: list[str]) -> Row | None:
    if group == report.total.group:
        return report.total
    return next((row for row in report.rows if row.group == group), None)
