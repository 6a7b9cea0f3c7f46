"""Today's figures read from the tallies instead of counted over the ledger (DESIGN §9).

``task_tally``, ``lead_tally`` and ``closure_tally`` (models, migration 0011) hold signed rows that
triggers append whenever a task's counted values change: Σn per key is the number of tasks with those
values now, in every transaction's own view. The dashboard and today's report ask them for region
scopes (supervisors, viewers, admins: ``permissions.SUBTREE_ROLES``), where a count over the task table
would read every task of the subtree; a unit's own tasks are few and are still counted live.

The same conditions serve both ways: a condition written on ``Task`` columns (``queries.SCHEDULE_FILTERS``)
is rewritten onto the tally's columns of the same names, so the figures cannot drift from the list's
filters. ``fold`` merges each key's rows into one (the scheduler runs it); ``rebuild`` recounts from the
tasks (after a bulk load with the triggers off); ``differences`` compares the tallies with a live count.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import Column, Connection, Date, case, cast, delete, func, insert, select, type_coerce
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.visitors import replacement_traverse

from tracker.models import ClosureTally, LeadTally, Region, Task, TaskTally, TaskUnit

TALLIES = (TaskTally, LeadTally, ClosureTally)
TABLE_NAMES = frozenset(model.__tablename__ for model in TALLIES)
# 经批准延期: the tallies keep ``extension_count > 0`` as their column ``extended``; use this condition.
EXTENDED = Task.extension_count > 0


def _keys(model) -> list[Column]:
    return [c for c in model.__table__.c if c.name not in ("id", "n")]


def adapt(condition, model):
    """``condition`` on ``Task`` columns, rewritten onto ``model``'s columns of the same names."""

    def replace(element):
        if element is EXTENDED:
            return model.__table__.c.extended.is_(True)
        if isinstance(element, Column) and element.table is Task.__table__:
            if element.key == "extension_count":
                raise ValueError("the tallies keep extension_count > 0 as 'extended': use tally.EXTENDED")
            return model.__table__.c[element.key]
        return None

    return replacement_traverse(condition, {}, replace)


def counts(s: Session, scopes: Iterable[int], keys: Iterable[str], cells: Mapping[str, object], *,
           where: Iterable = (), lead: bool = False) -> dict[tuple, dict[str, int]]:
    """Σ per group of ``keys`` of the tasks under the regions ``scopes`` (each region's subtree; group by
    ``scope_id`` to tell them apart) that meet ``where``, for each of ``cells`` (name → condition on
    ``Task`` columns, ``True`` for every task); only groups with tasks. ``lead``: from ``lead_tally``
    (a task under each of its lead units, key ``unit_id``)."""
    model = LeadTally if lead else TaskTally
    columns = [model.__table__.c[k] for k in keys]
    sums = [func.coalesce(func.sum(model.n if cond is True else case((adapt(cond, model), model.n), else_=0)), 0)
            .label(name) for name, cond in cells.items()]
    query = select(*columns, *sums).where(model.scope_id.in_(list(scopes)), *[adapt(w, model) for w in where])
    query = query.group_by(*columns).having(func.sum(model.n) != 0) if columns else query
    found: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(cells, 0))
    width = len(columns)
    for row in s.execute(query):
        found[tuple(row[:width])] = {name: int(value) for name, value in zip(cells, row[width:], strict=True)}
    return found


def closures(s: Session, region: Region, first: dt.date, last: dt.date) -> dict[dt.date, int]:
    """Tasks 已完成 now in ``region``'s subtree, by the first day of the month of their 销号日期."""
    rows = s.execute(select(ClosureTally.month, func.sum(ClosureTally.n))
                     .where(ClosureTally.scope_id == region.id, ClosureTally.month >= first.replace(day=1),
                            ClosureTally.month <= last)
                     .group_by(ClosureTally.month)).all()
    return {month: int(n) for month, n in rows if n}


# --- upkeep ------------------------------------------------------------------------------------------


def fold(s: Session) -> int:
    """Merge each key's rows into one (rows written by transactions still open are left for next time).
    Returns how many rows were merged away."""
    merged = 0
    for model in TALLIES:
        top = s.scalar(select(func.max(model.id)))
        if top is None:
            continue
        keys = _keys(model)
        before = s.scalar(select(func.count()).select_from(model).where(model.id <= top)) or 0
        if _dialect(s) == "postgresql":
            # One statement, one snapshot: the rows summed are exactly the rows deleted.
            moved = delete(model).where(model.id <= top).returning(*keys, model.n).cte("moved")
            summed = (select(*[moved.c[k.name] for k in keys], func.sum(moved.c.n))
                      .group_by(*[moved.c[k.name] for k in keys]).having(func.sum(moved.c.n) != 0))
            kept = len(s.execute(insert(model).from_select([*[k.name for k in keys], "n"], summed)
                                 .returning(model.id)).all())
        else:  # SQLite: one writer at a time, so two statements in one transaction see the same rows
            rows = s.execute(select(*keys, func.sum(model.n)).where(model.id <= top).group_by(*keys)
                             .having(func.sum(model.n) != 0)).all()
            s.execute(delete(model).where(model.id <= top))
            kept = len(rows)
            if rows:
                s.execute(insert(model), [dict(zip([*[k.name for k in keys], "n"], row, strict=True)) for row in rows])
        merged += before - kept
    s.flush()
    return merged


def _dialect(s: Session | Connection) -> str:
    return s.dialect.name if isinstance(s, Connection) else s.get_bind().dialect.name


def _month(s: Session | Connection, column):
    """The first day of ``column``'s month, as the migration's triggers write it."""
    if _dialect(s) == "postgresql":
        return cast(func.date_trunc("month", column), Date)
    return type_coerce(func.date(column, "start of month"), Date)  # read back as a date, like the column


def _live(s: Session | Connection, model):
    """The tally's rows counted afresh from ``task`` (and ``task_unit``), under every region above the task's."""
    own, scope = aliased(Region), aliased(Region)
    extended = Task.extension_count > 0

    def scoped(query):
        return query.join(own, own.id == Task.region_id).join(scope, own.path.like(scope.path + "%"))

    if model is TaskTally:
        keys = [scope.id, Task.channel_id, Task.round_id, Task.state, Task.schedule, Task.overdue,
                Task.not_reported, Task.escalation_level, extended]
        return scoped(select(*keys, func.count()).select_from(Task)).group_by(*keys)
    if model is LeadTally:
        keys = [TaskUnit.unit_id, scope.id, Task.state, Task.schedule, Task.overdue, Task.not_reported, extended]
        lead = (TaskUnit.task_id == Task.id) & (TaskUnit.role == "lead")
        return scoped(select(*keys, func.count()).select_from(Task).join(TaskUnit, lead)).group_by(*keys)
    month = _month(s, Task.closed_on)
    return (scoped(select(scope.id, month, func.count()).select_from(Task))
            .where(Task.schedule == "completed", Task.closed_on.is_not(None)).group_by(scope.id, month))


def rebuild(s: Session | Connection) -> None:
    """Recount every tally from the tasks (after a bulk load made with the triggers disabled, a restore)."""
    for model in TALLIES:
        s.execute(delete(model))
        columns = [k.name for k in _keys(model)] + ["n"]
        s.execute(insert(model).from_select(columns, _live(s, model)))


def differences(s: Session) -> list[tuple[str, tuple, int, int]]:
    """(tally, key, kept, live) for every key whose kept sum differs from a live count: empty when right."""
    found = []
    for model in TALLIES:
        keys = _keys(model)
        kept = {tuple(row[:-1]): int(row[-1]) for row in
                s.execute(select(*keys, func.sum(model.n)).group_by(*keys).having(func.sum(model.n) != 0))}
        live = {tuple(row[:-1]): int(row[-1]) for row in s.execute(_live(s, model))}
        for key in sorted(set(kept) | set(live), key=repr):
            if kept.get(key, 0) != live.get(key, 0):
                found.append((model.__tablename__, key, kept.get(key, 0), live.get(key, 0)))
    return found
