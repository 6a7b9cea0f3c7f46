"""月度整改销号台账: the monthly closure ledger of a region's subtree as of a month's end (DESIGN §7 Export).

A workbook builder: it reads through the session and writes one file, nothing else (no Flask, no
commit). The tasks are read in batches in the ledger's order (keyset pagination) as plain columns, with
one query per batch for each other table, and each row is written as soon as it is known, so memory does
not grow with the number of tasks. Every value is the one in force at the as-of date D (DESIGN §3):
state, deadline, 序时进度, latest progress and percent, closure dates — read from the task's own columns
when nothing happened to it after D, else replayed from its history.

Sheets: 汇总 (the §5 report by channel × round, region and unit), 整改台账 (continued on 整改台账(2) …
past ``MAX_ROWS``), 本月销号, 逾期及督办, 本期未报送. In an ``.xlsx`` the data rows of every list are
written as SpreadsheetML to temporary files during the one pass over the tasks (``_Rows``: the bytes
XlsxWriter writes for those cells, at a tenth of its cost per cell); then XlsxWriter makes the workbook
— 汇总, titles, headers, formats, widths, print setup — and the rows are put into their sheets
(``_assemble``). User text is always written as text: never a formula (CSV cells that start with
= + - @ get a leading quote).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io
import pickle
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any
from xml.etree import ElementTree

import xlsxwriter
from sqlalchemy import Row, func, select, tuple_, union
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from tracker import ledger_xml
from tracker.ladder import WARNING
from tracker.ledger_columns import LEDGER_COLUMNS, Column, milestone_text
from tracker.ledger_xml import HEADER_ROWS, MAX_WIDTH
from tracker.ledger_xml import Rows as _Rows
from tracker.ledger_xml import width as _width
from tracker.models import (
    Channel,
    EscalationRecord,
    EscalationRule,
    Event,
    Milestone,
    Problem,
    ProgressReport,
    Region,
    Round,
    Task,
    TaskUnit,
    Unit,
)
from tracker.periods import in_ids
from tracker.progress import (
    BUCKET_LABELS,
    Classification,
    MilestoneFact,
    Snapshot,
    classify,
    is_unreported,
    last_due_period,
    reporting_period,
)
from tracker.reports import GROUPINGS, Report, Tally, cell_counts
from tracker.schedule import counted_candidates, current_snapshot, snapshots_as_of
from tracker.settings import TimeSettings
from tracker.workflow import STATE_LABELS, State

MAX_ROWS = 1_048_576  # rows of an Excel sheet (title and header included); tests monkeypatch it small
BATCH = 2000  # tasks read, replayed and written at a time

SUMMARY = "汇总"
LEDGER = "整改台账"
CLOSED = "本月销号"
OVERDUE = "逾期及督办"
UNREPORTED = "本期未报送"
SUMMARY_HEADER = ("分组", "共", "已完成", "达到序时进度", "滞后", "其中逾期", "其中经批准延期", "销号率")
RATE_COL = SUMMARY_HEADER.index("销号率")
MEASURES_HEADER = "本月督办措施"  # the extra column of 逾期及督办
FORMULA_START = ("=", "+", "-", "@")
LONG_TERM = "长期坚持"
HEADERS = [c.header for c in LEDGER_COLUMNS]
KEYS = [c.key for c in LEDGER_COLUMNS]
_BY_KEY = {c.key: c for c in LEDGER_COLUMNS}
_LISTED = ("seq", "code", "channel", "round", "title", "region", "leads", "deadline")
# The three lists after the ledger carry the columns that matter to each (headers as on 整改台账): they are
# read and printed on their own, and 本期未报送 may hold most of the tasks at a month's end.
LIST_COLUMNS: dict[str, tuple[Column, ...]] = {
    CLOSED: tuple(_BY_KEY[k] for k in (*_LISTED, "closure_applied_on", "closed_on", "verifier", "closure_doc_no")),
    OVERDUE: tuple(_BY_KEY[k] for k in (*_LISTED, "state", "schedule", "progress", "percent", "escalation")),
    UNREPORTED: tuple(_BY_KEY[k] for k in (*_LISTED, "state", "schedule", "progress", "percent")),
}
RECORD_STATUS = {"proposed": "待确认", "confirmed": "已确认", "applied": "已实施"}


@dataclass
class LedgerSummary:
    """What was exported, for the caller to report and the archive to store."""

    as_of: dt.date
    rows: int  # tasks on the 整改台账 sheet(s)
    sheets: list[str]
    path: Path
    figures: list[dict] = field(default_factory=list)  # 汇总 by channel × round (合计 last), as dicts


def as_of_date(month: str, today: dt.date) -> dt.date:
    """The as-of date of ``month`` ("YYYY-MM"): its last day, or ``today`` within the current month."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = dt.date(year, number, 1)
    except ValueError:
        raise ValueError(f"月份“{month}”无效，应为YYYY-MM") from None
    if len(month) != 7:
        raise ValueError(f"月份“{month}”无效，应为YYYY-MM")
    if first > today:
        raise ValueError("不能导出尚未开始的月份")
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return min(last, today)


def title(region: Region, as_of: dt.date) -> str:
    return f"{region.name}突出生态环境问题整改销号台账（截至{as_of.year}年{as_of.month}月{as_of.day}日）"


def export(s: Session, region: Region, month: str, path: Path, *, today: dt.date,
           settings: TimeSettings, progress: Callable[[int, int | None], None] | None = None) -> LedgerSummary:
    """Write the ledger of ``region``'s subtree for ``month`` to ``path`` (.xlsx or .csv).

    ``progress(done, total)``, when given, is called as each batch of tasks is read and at the end (a
    background job's bar)."""
    path = Path(path)
    as_of = as_of_date(month, today)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ValueError("只能导出.xlsx或.csv文件")
    context = _Context(s, region, as_of, settings, current=as_of == today, progress=progress)
    s.flush()  # the rows are read by the connection, which does not flush the caller's pending changes
    context.load()
    if context.postgresql:
        # Each batch's queries name 2,000 ids, which PostgreSQL's planner prices high enough to compile
        # them (JIT, ~15 ms a query, for queries that take a few): not for the rest of this transaction.
        s.execute(sql("SET LOCAL jit = off"))
    if suffix == ".csv":
        return _export_csv(context, path)
    return _export_xlsx(context, path)


# --- reading: tasks in the ledger's order, and what each was at D ---------------------------------------


@dataclass
class _Context:
    s: Session
    region: Region
    as_of: dt.date
    settings: TimeSettings
    current: bool  # the current month: 本期未报送 is as of today's reporting period
    channels: dict[int, Channel] = field(default_factory=dict)
    rounds: dict[int, Round] = field(default_factory=dict)
    regions: dict[int, Region] = field(default_factory=dict)  # the subtree
    units: dict[int, tuple[str, int]] = field(default_factory=dict)  # every unit: (name, region id)
    all_regions: dict[int, Region] = field(default_factory=dict)  # a lead unit's region may be outside the subtree
    rule_names: dict[int, str] = field(default_factory=dict)  # 督办等级 → its measure (预警, 函告 …)
    progress: Callable[[int, int | None], None] | None = None  # (tasks read, candidates) after each batch
    total: int = 0  # the candidates, known once the groups are counted
    postgresql: bool = False

    def load(self) -> None:
        """The reference rows, read once, so that every name a row prints is a dict lookup."""
        self.channels = {c.id: c for c in self.s.scalars(select(Channel))}
        self.rounds = {r.id: r for r in self.s.scalars(select(Round))}
        self.all_regions = {r.id: r for r in self.s.scalars(select(Region))}
        self.regions = {r.id: r for r in self.all_regions.values()
                        if r.path.startswith(self.region.path)}
        self.units = {row.id: (row.name, row.region_id) for row in self.s.execute(
            select(Unit.id, Unit.name, Unit.region_id))}
        self.rule_names = {r.level: r.name for r in self.s.scalars(select(EscalationRule))}
        self.postgresql = self.s.get_bind().dialect.name == "postgresql"

    @property
    def month_start(self) -> dt.date:
        return self.as_of.replace(day=1)


@dataclass
class _Line:
    """One task's ledger row as of D, and the other sheets it belongs on."""

    values: dict[str, Any]
    closed_in_month: bool
    overdue: bool
    measures: str  # escalation acts (level ≥ 2) in the month
    unreported: bool


_GROUP = (Task.channel_id, Task.round_id, Task.region_id)  # the unique (…, code) index starts with these
# Plain columns, not ORM objects (a tenth of the cost per row): the ledger's own fields, and the values
# kept on the task that give its snapshot when nothing happened to it after D (``schedule.current_snapshot``).
_LOADED = (Task.id, Task.code, Task.channel_id, Task.round_id, Task.region_id, Task.kind, Task.problem_id, Task.title,
           Task.description, Task.category, Task.responsible_leader, Task.contact, Task.target, Task.measures,
           Task.deadline_text, Task.accountability, Task.remarks,
           Task.state, Task.assigned_on, Task.deadline, Task.deadline_kind, Task.closure_applied_on,
           Task.latest_percent, Task.latest_report_on, Task.plan_approved_on, Task.extension_count)


def _batches(ctx: _Context) -> Iterator[list[Row]]:
    """Counted candidates of the subtree in ledger order (channel, round, region, code), about ``BATCH``
    at a time. The order is by positions and names, never by ids, so two installations holding the same
    ledger list it alike (a region by the names from the subtree's root down to it).

    The order spans three other tables, so no index serves a keyset on it; instead the (channel, round,
    region) groups that hold candidates are counted once and put in order here, whole groups are read
    together, and a group larger than a batch is read by keyset on (code, id) — each query an index range."""
    channels, rounds, regions = ctx.channels, ctx.rounds, ctx.regions
    candidates = counted_candidates(ctx.as_of).where(Task.region_id.in_(list(regions)))
    counts = ctx.s.execute(candidates.with_only_columns(*_GROUP, func.count(Task.id)).group_by(*_GROUP)).all()
    ctx.total = sum(g[3] for g in counts)
    order = sorted(counts, key=lambda g: (channels[g[0]].position, channels[g[0]].name, rounds[g[1]].position,
                                          rounds[g[1]].name, region_names(regions, regions[g[2]])))
    query = candidates.with_only_columns(*_LOADED)
    chunk: list[tuple] = []
    size = 0  # tasks in ``chunk``
    for group in order:
        if group[3] > BATCH:
            yield from _whole(ctx, query, chunk)
            chunk, size = [], 0
            yield from _large_group(ctx, query, group[:3])
            continue
        if chunk and size + group[3] > BATCH:
            yield from _whole(ctx, query, chunk)
            chunk, size = [], 0
        chunk.append(group)
        size += group[3]
    yield from _whole(ctx, query, chunk)


def region_names(regions: dict[int, Region], region: Region) -> tuple[str, ...]:
    """The names from the highest region of ``regions`` on ``region``'s path down to ``region``."""
    return tuple(regions[int(part)].name for part in region.path.strip("/").split("/")
                 if part and int(part) in regions)


def _whole(ctx: _Context, query, groups: list[tuple]) -> Iterator[list[Row]]:
    """Every candidate of these (channel, round, region) groups, in their order, then by code."""
    if not groups:
        return
    rank = {tuple(g[:3]): i for i, g in enumerate(groups)}
    # Three IN lists, which the unique (channel, round, region, code) index answers (a row-value IN list is
    # no index condition: it scanned the whole table once per batch). Groups come in channel and round
    # order, so a batch spans few channels and rounds and the lists select (almost) exactly its groups.
    channels, rounds, regions = ({g[i] for g in rank} for i in range(3))
    found = _rows(ctx, query.where(Task.channel_id.in_(channels), Task.round_id.in_(rounds),
                                      Task.region_id.in_(regions))).all()
    tasks = [t for t in found if (t.channel_id, t.round_id, t.region_id) in rank]
    yield sorted(tasks, key=lambda t: (rank[(t.channel_id, t.round_id, t.region_id)], t.code, t.id))


def _large_group(ctx: _Context, query, group: tuple) -> Iterator[list[Row]]:
    channel_id, round_id, region_id = group
    query = query.where(Task.channel_id == channel_id, Task.round_id == round_id, Task.region_id == region_id)
    query = query.order_by(Task.code, Task.id).limit(BATCH)
    last: tuple | None = None
    while batch := _rows(ctx, query if last is None else query.where(
            tuple_(Task.code, Task.id) > tuple_(*last))).all():
        yield batch
        last = (batch[-1].code, batch[-1].id)


def _rows(ctx: _Context, query):
    """The rows of a read of plain columns, by the connection (SQLAlchemy's ORM layer would add ~10 % to
    the export's CPU time for nothing: no entity is loaded)."""
    return ctx.s.connection().execute(query)


def _among(ctx: _Context, column, ids: Iterable[int]):
    """``column IN ids`` for a batch's ids (``periods.in_ids``: one array parameter on PostgreSQL)."""
    return in_ids(ctx.postgresql, column, ids)


@dataclass
class _Facts:
    """Per batch, what the task's own columns do not hold: one query each."""

    units: dict[int, list[tuple[str, int]]]  # (role, unit id) in the task's order
    problems: dict[int, str]  # 所属问题 titles
    milestone_facts: dict[int, list[MilestoneFact]]
    milestones: dict[int, str]  # 阶段目标, met as of D
    progress: dict[int, str]  # latest report text on or before D
    closures: dict[int, dict]  # the closing event in force at D: closed_on, verifier, closure_doc_no
    levels: dict[int, int]  # 督办等级 in force at D
    measures: dict[int, list[str]]  # escalation acts (level ≥ 2) within the month


def _facts(ctx: _Context, batch: list[Row]) -> _Facts:
    ids = [t.id for t in batch]
    facts, texts = _milestones(ctx, ids)
    return _Facts(_units(ctx, ids), _problems(ctx, batch), facts, texts, _latest_progress(ctx, ids), {},
                  *_escalations(ctx, ids))


def _units(ctx: _Context, ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    found: dict[int, list[tuple[str, int]]] = {}
    for task_id, role, unit_id in _rows(ctx,
            select(TaskUnit.task_id, TaskUnit.role, TaskUnit.unit_id).where(_among(ctx, TaskUnit.task_id, ids))
            .order_by(TaskUnit.task_id, TaskUnit.position)):
        found.setdefault(task_id, []).append((role, unit_id))
    return found


def _problems(ctx: _Context, batch: list[Row]) -> dict[int, str]:
    wanted = {t.problem_id for t in batch if t.problem_id is not None}
    if not wanted:
        return {}
    return dict(ctx.s.execute(select(Problem.id, Problem.title).where(_among(ctx, Problem.id, wanted))).all())


def _milestones(ctx: _Context, ids: list[int]) -> tuple[dict[int, list[MilestoneFact]], dict[int, str]]:
    facts: dict[int, list[MilestoneFact]] = {}
    found: dict[int, list[str]] = {}
    rows = _rows(ctx, select(Milestone.task_id, Milestone.due_on, Milestone.description, Milestone.planned_percent,
                                Milestone.met_on).where(_among(ctx, Milestone.task_id, ids))
                         .order_by(Milestone.task_id, Milestone.due_on, Milestone.description, Milestone.id))
    for task_id, due_on, description, planned_percent, met_on in rows:
        facts.setdefault(task_id, []).append(MilestoneFact(due_on, planned_percent, met_on))
        met_on = met_on if met_on is not None and met_on <= ctx.as_of else None
        found.setdefault(task_id, []).append(milestone_text(due_on, description, planned_percent, met_on))
    return facts, {task_id: "\n".join(lines) for task_id, lines in found.items()}


def _latest_progress(ctx: _Context, ids: list[int]) -> dict[int, str]:
    rank = func.row_number().over(partition_by=ProgressReport.task_id,
                                  order_by=(ProgressReport.reported_on.desc(), ProgressReport.id.desc()))
    ranked = (select(ProgressReport.task_id, ProgressReport.text, rank.label("rank"))
              .where(_among(ctx, ProgressReport.task_id, ids), ProgressReport.reported_on <= ctx.as_of,
                     ProgressReport.purpose.in_(("progress", "closure")))
              .subquery())
    found = dict(ctx.s.execute(select(ranked.c.task_id, ranked.c.text).where(ranked.c.rank == 1)).all())
    # A task imported from a ledger has its latest progress as a dated "report" event (导入历史) and no
    # report row: its text is the latest progress until a report is filed here.
    missing = [i for i in ids if i not in found]
    if missing:
        rows = _rows(ctx,
            select(Event.task_id, Event.data)
            .where(_among(ctx, Event.task_id, missing), Event.action == "report", Event.effective_on <= ctx.as_of)
            .order_by(Event.task_id, Event.effective_on, Event.id))
        for task_id, data in rows:  # the last one wins
            found[task_id] = (data or {}).get("text") or ""
    return found


def _closures(ctx: _Context, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    rows = _rows(ctx,
        select(Event.task_id, Event.effective_on, Event.data)
        .where(_among(ctx, Event.task_id, ids), Event.to_state == State.closed.value, Event.effective_on <= ctx.as_of)
        .order_by(Event.task_id, Event.effective_on, Event.id))
    found = {}
    for task_id, effective_on, data in rows:  # the last one wins
        data = data or {}
        closed_on = data.get("closed_on")
        found[task_id] = {"closed_on": dt.date.fromisoformat(closed_on[:10]) if closed_on else effective_on,
                          "verifier": data.get("verifier") or "", "closure_doc_no": data.get("closure_doc_no") or ""}
    return found


def _escalations(ctx: _Context, ids: list[int]):
    when = func.coalesce(EscalationRecord.decided_on, EscalationRecord.scan_date)
    rows = _rows(ctx,
        select(EscalationRecord.task_id, EscalationRecord.level, EscalationRecord.status, when,
               EscalationRecord.doc_no)
        .where(_among(ctx, EscalationRecord.task_id, ids), EscalationRecord.level >= WARNING,
               EscalationRecord.status.in_(tuple(RECORD_STATUS)), when <= ctx.as_of)
        .order_by(EscalationRecord.task_id, when, EscalationRecord.level))
    levels: dict[int, int] = {}
    measures: dict[int, list[str]] = {}
    for task_id, level, status, on, doc_no in rows:
        if status != "proposed":
            levels[task_id] = max(levels.get(task_id, 0), level)
        if level >= 2 and on >= ctx.month_start:
            note = "，".join(part for part in (RECORD_STATUS[status], doc_no) if part)
            measures.setdefault(task_id, []).append(
                f"{on.isoformat()} {ctx.rule_names.get(level, level)}（{note}）")
    return levels, measures


def _snapshots(ctx: _Context, batch: list[Row], facts: _Facts) -> dict[int, Snapshot]:
    """Each task as it stood at the end of D. A task's columns are kept by every operation, so a task with
    no event dated after D stands as they say (``schedule.current_snapshot``), and only the others — at
    the current month's end almost none — have their history replayed (DESIGN §3). One exception: 改派
    clears the plan's approval date, which the history still counts as the last activity (进展日期), so
    a task reassigned and not yet approved again is replayed too."""
    ids = [t.id for t in batch]
    unapproved = [t.id for t in batch if t.plan_approved_on is None and t.state in _REASSIGNED_STATES]
    later = select(Event.task_id).where(_among(ctx, Event.task_id, ids), Event.effective_on > ctx.as_of)
    if unapproved:
        later = union(later, select(Event.task_id).where(_among(ctx, Event.task_id, unapproved),
                                                         Event.action == "reassign"))
    replay = set(ctx.s.scalars(later))
    replayed = snapshots_as_of(ctx.s, [t for t in batch if t.id in replay], ctx.as_of,
                               milestones=facts.milestone_facts) if replay else {}
    return {t.id: replayed[t.id] if t.id in replay else
            current_snapshot(t, ctx.as_of, facts.milestone_facts.get(t.id, [])) for t in batch}


_REASSIGNED_STATES = (State.assigned.value, State.signed.value)  # where 改派 leaves a task until its plan is approved


def _read(ctx: _Context) -> Iterator[tuple[list[Row], _Facts, dict[int, Snapshot]]]:
    """Each batch of tasks with what the ledger prints of them and their snapshots at D."""
    for batch in _batches(ctx):
        facts = _facts(ctx, batch)
        snapshots = _snapshots(ctx, batch, facts)
        # The closing event (销号日期, 验收单位, 文号 as recorded) of the tasks closed at D only: a query
        # that reads the events of every task it names.
        facts.closures = _closures(ctx, [i for i, snap in snapshots.items() if snap.state == State.closed.value])
        yield batch, facts, snapshots


READ_AHEAD_FROM = 4 * BATCH  # candidates from which a PostgreSQL export reads the next batch while writing this one
READ_AHEAD = 2  # batches read ahead at most


def _read_ahead(ctx: _Context) -> Iterator[tuple[list[Row], _Facts, dict[int, Snapshot]]]:
    """``_read``, on PostgreSQL for a large export on a second connection in a thread, so that the
    database reads the next batches while this one is classified and written (two cores instead of one
    taking turns). The second connection imports the snapshot of the caller's transaction
    (``pg_export_snapshot``), so it sees exactly what the caller sees — provided the caller has written
    nothing in it yet, which ``pg_current_xact_id_if_assigned`` tells; otherwise, and for small exports,
    everything is read here."""
    if not ctx.postgresql or ctx.s.execute(sql("SELECT pg_current_xact_id_if_assigned()")).scalar() is not None:
        yield from _read(ctx)
        return
    ctx.total = ctx.total or _candidates(ctx)  # what ``_batches`` counts, known before the first batch
    if ctx.total < READ_AHEAD_FROM:
        yield from _read(ctx)
        return
    snapshot = ctx.s.execute(sql("SELECT pg_export_snapshot()")).scalar()
    connection = ctx.s.get_bind().engine.connect().execution_options(isolation_level="REPEATABLE READ",
                                                                      postgresql_readonly=True)
    try:
        connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # the server's own token
        connection.exec_driver_sql("SET LOCAL jit = off")
        reader = Session(bind=connection)
        yield from _threaded(_read(dataclasses.replace(ctx, s=reader, progress=None)))
    finally:
        connection.close()


def _candidates(ctx: _Context) -> int:
    return ctx.s.scalar(counted_candidates(ctx.as_of).where(Task.region_id.in_(list(ctx.regions)))
                        .with_only_columns(func.count(Task.id))) or 0


def _threaded(items: Iterator) -> Iterator:
    """``items`` produced by a thread at most ``READ_AHEAD`` ahead; an error there is raised here, and a
    consumer that stops early stops the thread."""
    ahead: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()
    end = object()

    def put(item, error=None) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ahead.put((item, error), timeout=0.1)
                return

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                put(item)
            put(end)
        except BaseException as error:  # noqa: BLE001 — handed to the consumer, who raises it
            put(end, error)

    thread = threading.Thread(target=produce, name="ledger-read-ahead", daemon=True)
    thread.start()
    try:
        while (got := ahead.get())[0] is not end:
            yield got[0]
        if got[1] is not None:
            raise got[1]
    finally:
        stop.set()
        thread.join()


def _lines(ctx: _Context, counts: _Counts) -> Iterator[_Line]:
    """Every task counted at D, in ledger order, each also counted for the 汇总 sheet."""
    # Past months: the period due in the month; the current month: today's period, as the task's flag
    # (computed here from the history, so the export does not depend on when the day's refresh ran).
    period = reporting_period if ctx.current else last_due_period
    period_start, _due = period(ctx.settings.reporting, ctx.as_of)
    classify_start, _due = reporting_period(ctx.settings.reporting, ctx.as_of)
    tolerance = ctx.settings.tolerance
    done = 0
    for batch, facts, snapshots in _read_ahead(ctx):
        if ctx.progress is not None:
            ctx.progress(done, ctx.total)
        done += len(batch)
        for task in batch:
            snap = snapshots[task.id]
            if not snap.counted:
                continue
            result = classify(snap, classify_start, tolerance)
            units = facts.units.get(task.id, [])
            counts.add(task, [u for role, u in units if role == "lead"], cell_counts(snap, result))
            yield _line(ctx, task, units, snap, result, facts, is_unreported(snap, period_start))
    if ctx.progress is not None:
        ctx.progress(done, ctx.total)


def _line(ctx: _Context, task: Row, units: list[tuple[str, int]], snap: Snapshot, result: Classification,
          facts: _Facts, unreported: bool) -> _Line:
    closure = facts.closures.get(task.id) if snap.state == State.closed.value else None
    values = _fields(ctx, task, units, facts) | _as_of_fields(ctx, snap, result, facts, task.id) | {
        "closed_on": closure["closed_on"] if closure else None,
        "verifier": closure["verifier"] if closure else "",
        "closure_doc_no": closure["closure_doc_no"] if closure else "",
        "not_reported": "是" if unreported else "",
    }
    closed_in_month = closure is not None and ctx.month_start <= closure["closed_on"] <= ctx.as_of
    measures = facts.measures.get(task.id, [])
    return _Line(values, closed_in_month, result.overdue, "\n".join(measures), unreported)


def _fields(ctx: _Context, task: Row, units: list[tuple[str, int]], facts: _Facts) -> dict[str, Any]:
    """The ledger record's own fields (DESIGN §3); never 信访人信息."""
    names = ctx.units
    return {
        "code": task.code, "channel": ctx.channels[task.channel_id].name,
        "round": ctx.rounds[task.round_id].name, "kind": task.kind,
        "problem": facts.problems.get(task.problem_id, ""), "title": task.title,
        "description": task.description, "region": ctx.regions[task.region_id].name, "category": task.category,
        "leads": "、".join(names[u][0] for role, u in units if role == "lead"),
        "participants": "、".join(names[u][0] for role, u in units if role == "participant"),
        "leader": task.responsible_leader, "contact": task.contact, "target": task.target,
        "measures": task.measures, "deadline_text": task.deadline_text,
        "accountability": task.accountability, "remarks": task.remarks,
    }


def _as_of_fields(ctx: _Context, snap: Snapshot, result: Classification, facts: _Facts,
                  task_id: int) -> dict[str, Any]:
    level = facts.levels.get(task_id, 0)
    schedule = BUCKET_LABELS[result.bucket]
    if result.overdue:
        schedule += "（逾期）"
    return {
        "deadline": snap.deadline or (LONG_TERM if snap.long_term else None),
        "assigned_on": snap.assigned_on, "state": STATE_LABELS[State(snap.state)], "schedule": schedule,
        "progress": facts.progress.get(task_id, ""), "percent": snap.latest_percent,
        "milestones": facts.milestones.get(task_id, ""), "progress_on": snap.last_activity_on,
        "closure_applied_on": snap.closure_applied_on,
        "escalation": ctx.rule_names.get(level, str(level)) if level else "",
    }


class _Counts:
    """The 汇总 figures, gathered while the rows stream: how many tasks share a channel, round, region,
    lead units and cells (one dict update per task), handed to the three tallies at the end, by channel and
    round, by region and by lead unit, instead of task by task."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.seen: dict[tuple, int] = {}

    def add(self, task: Row, leads: list[int], cells: dict[str, int]) -> None:
        key = (task.channel_id, task.round_id, task.region_id, tuple(leads), tuple(cells))
        self.seen[key] = self.seen.get(key, 0) + 1

    def _grouped(self) -> tuple[dict[str, int], dict[str, dict[Any, dict[str, int]]]]:
        total: dict[str, int] = {}
        groups: dict[str, dict[Any, dict[str, int]]] = {by: {} for by in GROUPINGS}
        for (channel_id, round_id, region_id, leads, cells), n in self.seen.items():
            keys = {"channel-round": [(channel_id, round_id)], "region": [region_id], "unit": leads}
            for target in (total, *(groups[by].setdefault(k, {}) for by in GROUPINGS for k in keys[by])):
                for cell in cells:
                    target[cell] = target.get(cell, 0) + n
        return total, groups

    def tallies(self) -> list[Tally]:
        ctx = self.ctx
        total, grouped = self._grouped()
        tallies = []
        for by, groups in grouped.items():
            tally = Tally(ctx.s, ctx.region, ctx.as_of, by, ids=False)  # counts only
            tally.total.add_counts(total)
            for key, cells in groups.items():
                tally.add_counts(self._sample(by, key), cells, total=False)
            tallies.append(tally)
        return tallies

    def _sample(self, by: str, key: Any) -> SimpleNamespace:
        """What the tally's grouping reads of a task (``reports._KEYS``)."""
        if by == "channel-round":
            return SimpleNamespace(channel_id=key[0], round_id=key[1])
        if by == "region":
            return SimpleNamespace(region=self.ctx.regions[key])
        name, region_id = self.ctx.units[key]
        unit = SimpleNamespace(id=key, name=name, region=self.ctx.all_regions[region_id])
        return SimpleNamespace(task_units=[SimpleNamespace(role="lead", unit_id=key, unit=unit)])


def _figures(report: Report) -> list[dict]:
    return [row.as_json() for row in [*report.rows, report.total]]


# --- writing: CSV ---------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _export_csv(ctx: _Context, path: Path) -> LedgerSummary:
    counts = _Counts(ctx)
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([_csv_cell(title(ctx.region, ctx.as_of))])
        writer.writerow(HEADERS)
        for count, line in enumerate(_lines(ctx, counts), start=1):
            writer.writerow([v if v.__class__ is str and not v.startswith(FORMULA_START) else _csv_cell(v)
                             for v in _row(count, line.values, KEYS)])
    return LedgerSummary(ctx.as_of, count, [LEDGER], path, _figures(counts.tallies()[0].report()))


def _row(seq: int, values: dict[str, Any], keys: list[str]) -> list[Any]:
    if keys[0] == "seq":  # every list starts with 序号
        return [seq, *map(values.get, keys[1:])]
    return [seq if key == "seq" else values.get(key) for key in keys]


# --- writing: XLSX ----------------------------------------------------------------------------------------


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        base = {"text_wrap": True, "valign": "top", "font_size": 10}
        self.title = book.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
        self.header = book.add_format({**base, "bold": True, "align": "center", "valign": "vcenter", "border": 1,
                                       "bg_color": "#D9E1F2"})
        self.text = book.add_format(base)  # every column's format: cells written without one take it
        self.date = book.add_format({**base, "num_format": "yyyy-mm-dd"})
        self.percent = book.add_format({**base, "num_format": '0"%"'})
        self.rate = book.add_format({**base, "num_format": "0.0%"})
        self.group = book.add_format({"bold": True, "font_size": 12})
        # The data rows name their formats by index (``_Rows``): fixed here, in the order XlsxWriter gives
        # them on first use, and kept by it when it writes the styles.
        for used in (self.title, self.header, self.text, self.date, self.percent):
            used._get_xf_index()
        self.text_xf, self.date_xf, self.percent_xf = (f.xf_index for f in (self.text, self.date, self.percent))


class _Sheet:
    """One worksheet written top to bottom (constant_memory): a merged title row, then rows; widths
    follow the widest text seen, and the print setup is A3 landscape, one page wide, with gridlines.

    Text cells carry no format of their own: the column's (wrapped, top-aligned) applies. Empty cells are
    not written at all. The lists' data rows do not pass through here but through ``_Rows``."""

    def __init__(self, book: xlsxwriter.Workbook, fmt: _Formats, name: str, heading: str, columns: int,
                 widths: list[int] | None = None) -> None:
        self.ws, self.fmt, self.name = book.add_worksheet(name), fmt, name
        self.widths = list(widths or [6] * columns)  # at least these (the designed widths of the columns)
        self._set_columns()
        self.ws.merge_range(0, 0, 0, columns - 1, "", fmt.title)
        self.ws.write_string(0, 0, heading, fmt.title)
        self.ws.set_row(0, 30)
        self.row = 1
        self.ws.set_paper(8)
        self.ws.set_landscape()
        self.ws.fit_to_pages(1, 0)
        self.ws.hide_gridlines(0)  # shown and printed
        self.ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)

    def header(self, headers: list[str] | tuple[str, ...]) -> None:
        self.write([*headers], self.fmt.header)

    def freeze(self) -> None:
        """Freeze and repeat on every printed page the rows written so far."""
        self.ws.freeze_panes(self.row, 0)
        self.ws.repeat_rows(0, self.row - 1)

    def write(self, values: list[Any], text_format=None, number_formats: dict | None = None) -> None:
        for col, value in enumerate(values):
            if value is not None and value != "":
                self._cell(col, value, text_format, (number_formats or {}).get(col))
        self.row += 1

    def _cell(self, col: int, value: Any, text_format, number_format) -> None:
        if isinstance(value, str):
            self.ws.write_string(self.row, col, value, text_format)
            # Only measure text that may be wider than the column already is (a character is at most two).
            if 2 * len(value) > self.widths[col] < MAX_WIDTH:
                self.widths[col] = max(self.widths[col], _width(value))
        elif isinstance(value, dt.date):
            self.ws.write_datetime(self.row, col, dt.datetime.combine(value, dt.time()), self.fmt.date)
            self.widths[col] = max(self.widths[col], 10)
        else:
            self.ws.write_number(self.row, col, value, number_format or text_format)
            self.widths[col] = max(self.widths[col], len(str(value)) + 2)

    def blank_row(self) -> None:
        self.row += 1

    def _set_columns(self) -> None:
        for col, width in enumerate(self.widths):
            self.ws.set_column(col, col, min(MAX_WIDTH, width + 2), self.fmt.text)

    def finish(self) -> None:
        self._set_columns()


class _LedgerSheets:
    """A list of tasks — 整改台账 and the lists after it — continued on NAME(2) … once a sheet reaches
    ``MAX_ROWS``; 序号 runs on across them. Its rows go to ``_Rows`` parts during the one pass over the
    tasks; the sheets themselves are made when the workbook is assembled (``_export_xlsx``)."""

    def __init__(self, fmt: _Formats, name: str, columns: tuple[Column, ...], extra: tuple[str, ...] = (),
                 writer: _Writer | None = None) -> None:
        self.fmt, self.base, self.writer = fmt, name, writer
        self.keys = [c.key for c in columns]
        self.headers = [c.header for c in columns] + list(extra)
        self.designed = [c.width for c in columns] + [30] * len(extra)
        self.numbers = {self.keys.index("percent"): fmt.percent_xf} if "percent" in self.keys else {}
        self.parts: list[tuple[str, _Rows]] = []
        self.count = 0
        self._open()

    def _open(self) -> None:
        name = self.base if not self.parts else f"{self.base}({len(self.parts) + 1})"
        rows = _Rows(self.fmt, self.designed) if self.writer is None else self.writer.rows(self.designed)
        self.parts.append((name, rows))

    def add(self, values: dict[str, Any], extra: list[Any] = ()) -> None:
        if self.parts[-1][1].row >= MAX_ROWS:
            self._open()
        self.count += 1
        self.parts[-1][1].write([*_row(self.count, values, self.keys), *extra], self.numbers)

    def sheets(self, book: xlsxwriter.Workbook, heading: str) -> Iterator[tuple[_Sheet, _Rows]]:
        """Each part's worksheet (title, headers, widths, print setup), with the rows that go in it."""
        for name, rows in self.parts:
            sheet = _Sheet(book, self.fmt, name, heading, len(self.headers), rows.widths)
            sheet.header(self.headers)
            sheet.freeze()
            yield sheet, rows

    def close(self) -> None:
        for _name, rows in self.parts:
            rows.close()


WRITER_FROM = 4 * BATCH  # candidates from which the rows' XML is written by a process of its own
WRITER_MESSAGE = 500  # rows sent to it at a time


class _Writer:
    """The rows' XML written by a second process (``write_rows_main``), so that a large export's two halves —
    reading and classifying the tasks, turning their rows into XML — run on two cores instead of taking
    turns on one (Python runs one thread at a time). It gets the rows as pickled plain lists on its
    standard input and writes each part's file in a folder of this export; its widths come back at the end.
    A plain ``python -c`` rather than ``multiprocessing``: nothing of the caller's main module is imported
    again, whatever server or command runs the export."""

    def __init__(self, fmt: _Formats) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ledger-rows-"))
        self.process = subprocess.Popen([sys.executable, "-c", WRITER_CODE, ledger_xml.__file__, str(fmt.text_xf),
                                         str(fmt.date_xf), str(self.folder)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        self.parts: list[_RemoteRows] = []
        self.pending: list[tuple] = []

    def rows(self, widths: list[int]) -> _RemoteRows:
        part = _RemoteRows(self, len(self.parts), widths)
        self.parts.append(part)
        return part

    def send(self, item: tuple) -> None:
        self.pending.append(item)
        if len(self.pending) >= WRITER_MESSAGE:
            self._flush()

    def _flush(self) -> None:
        try:
            pickle.dump(self.pending, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:  # the process is gone: its own error went to the log
            raise RuntimeError("台账写入进程意外退出") from exc
        self.pending = []

    def finish(self) -> None:
        try:
            self._flush()
            pickle.dump(None, self.process.stdin)
            self.process.stdin.close()
            widths = pickle.load(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise RuntimeError("台账写入进程意外退出") from exc
        if self.process.wait() != 0:
            raise RuntimeError("台账写入进程意外退出")
        for part in self.parts:
            part.widths = widths[part.key]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _RemoteRows:
    """A part whose rows the writer process writes: ``_Rows``'s interface, on its file once finished."""

    def __init__(self, writer: _Writer, key: int, widths: list[int]) -> None:
        self.writer, self.key, self.widths = writer, key, list(widths)
        self.row = HEADER_ROWS
        self.path = writer.folder / f"{key}.xml"
        writer.send(("open", key, self.widths))

    def write(self, values: list[Any], numbers: dict[int, int]) -> None:
        self.writer.send((self.key, values, numbers))
        self.row += 1

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def copy_to(self, out: IO[bytes]) -> None:
        with self.path.open("rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)

    def close(self) -> None:
        pass  # the folder goes with the writer


# The module file itself, not ``tracker.ledger_xml``: importing the package would load the whole
# application (~100 MB) into a process that needs the standard library and this file.
WRITER_CODE = ("import importlib.util, sys; "
               "spec = importlib.util.spec_from_file_location('ledger_xml', sys.argv[1]); "
               "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
               "module.write_rows_main()")


def _export_xlsx(ctx: _Context, path: Path) -> LedgerSummary:
    """One pass over the tasks writes the rows of every list; then XlsxWriter makes the workbook around
    them (汇总, titles, headers, widths, print setup) and the rows are put into their sheets."""
    skeleton = io.BytesIO()
    book = xlsxwriter.Workbook(skeleton, {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
        "strings_to_urls": False, "default_date_format": "yyyy-mm-dd"})
    fmt = _Formats(book)
    ctx.total = _candidates(ctx)
    writer = _Writer(fmt) if ctx.total >= WRITER_FROM else None
    lists = {name: _LedgerSheets(fmt, name, columns, (MEASURES_HEADER,) if name == OVERDUE else (), writer)
             for name, columns in ((LEDGER, LEDGER_COLUMNS), *LIST_COLUMNS.items())}
    try:
        counts = _Counts(ctx)
        for line in _lines(ctx, counts):
            lists[LEDGER].add(line.values)
            for name, wanted, extra in ((CLOSED, line.closed_in_month, []),
                                        (OVERDUE, line.overdue or line.measures, [line.measures]),
                                        (UNREPORTED, line.unreported, [])):
                if wanted:
                    lists[name].add(line.values, extra)
        if writer is not None:
            writer.finish()  # the rows' widths and files, from the writer process
        tallies = counts.tallies()
        heading = title(ctx.region, ctx.as_of)
        summary = _Sheet(book, fmt, SUMMARY, heading, len(SUMMARY_HEADER))
        rows: dict[str, _Rows] = {}
        for sheets in lists.values():
            for sheet, part in sheets.sheets(book, heading):
                sheet.finish()
                rows[sheet.name] = part
        _write_summary(summary, [t.report() for t in tallies])
        book.close()
        _assemble(skeleton, path, rows)
    finally:
        for sheets in lists.values():
            sheets.close()
        if writer is not None:
            writer.close()
    names = [SUMMARY, *(name for sheets in lists.values() for name, _rows in sheets.parts)]
    return LedgerSummary(ctx.as_of, lists[LEDGER].count, names, path, _figures(tallies[0].report()))


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELATIONSHIP = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PACKAGE = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DIMENSION = re.compile(r'<dimension ref="([A-Z]+)1(?::([A-Z]+)\d+)?"/>')


def _assemble(skeleton: io.BytesIO, path: Path, rows: dict[str, _Rows]) -> None:
    """Copy the workbook XlsxWriter made to ``path``, each sheet of ``rows`` with those rows appended to its
    ``sheetData`` and its ``dimension`` reaching the last of them."""
    with zipfile.ZipFile(skeleton) as book, zipfile.ZipFile(path, "w") as out:
        members = _sheet_members(book)
        parts = {members[name]: part for name, part in rows.items()}
        for info in book.infolist():
            part = parts.get(info.filename)
            if part is None:
                out.writestr(info, book.read(info))
                continue
            head, tail = book.read(info).decode().split("</sheetData>")
            found = _DIMENSION.search(head)
            if found is not None and part.row > HEADER_ROWS:
                last = found[2] or found[1]
                head = head.replace(found[0], f'<dimension ref="{found[1]}1:{last}{part.row}"/>', 1)
            head, tail = head.encode(), ("</sheetData>" + tail).encode()
            info.file_size = len(head) + part.size + len(tail)  # ZIP64 only when that needs it, as XlsxWriter
            with out.open(info, "w") as fh:
                fh.write(head)
                part.copy_to(fh)
                fh.write(tail)


def _sheet_members(book: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → its XML member, from the workbook and its relationships."""
    targets = {rel.get("Id"): rel.get("Target") for rel in
               ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels")).iter(f"{_PACKAGE}Relationship")}
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    return {sheet.get("name"): "xl/" + targets[sheet.get(_RELATIONSHIP)].lstrip("/").removeprefix("xl/")
            for sheet in workbook.iter(f"{_MAIN}sheet")}


def _write_summary(sheet: _Sheet, reports: list[Report]) -> None:
    sheet.freeze()
    for report in reports:
        sheet.write([GROUPINGS[report.by]], sheet.fmt.group)
        sheet.header(SUMMARY_HEADER)
        for row in [*report.rows, report.total]:
            sheet.write([" · ".join(row.group), row.total, row.completed, row.on_schedule, row.behind,
                         row.overdue, row.extended, row.closure_rate], number_formats={RATE_COL: sheet.fmt.rate})
        sheet.blank_row()
    sheet.finish()
