"""月度整改销号台账: the monthly closure ledger of a region's subtree as of a month's end (DESIGN §7 Export).

A workbook builder: it reads through the session and writes one file, nothing else (no Flask, no
commit). The tasks are read in batches in the ledger's order (keyset pagination) and each row is
written as soon as it is known — XlsxWriter's ``constant_memory`` mode for ``.xlsx``, ``csv`` for
``.csv`` — so memory does not grow with the number of tasks. Every value is the one in force at the
as-of date D (DESIGN §3): state, deadline, 序时进度, latest progress and percent, closure dates.

Sheets: 汇总 (the §5 report by channel × round, region and unit), 整改台账 (continued on 整改台账(2) …
past ``MAX_ROWS``), 本月销号, 逾期及督办, 本期未报送. Rows of the last three are spooled to temporary
files during the one pass over the tasks and copied after, so the ledger's continuation sheets sit
right after it. User text is always written as text: never a formula (CSV cells that start with
= + - @ get a leading quote).
"""

from __future__ import annotations

import csv
import datetime as dt
import pickle
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import xlsxwriter
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, load_only, selectinload

from tracker.ladder import WARNING
from tracker.ledger_columns import LEDGER_COLUMNS, Column, MilestoneLine, format_milestone
from tracker.models import (
    Channel,
    EscalationRecord,
    EscalationRule,
    Event,
    Milestone,
    ProgressReport,
    Region,
    Round,
    Task,
    TaskUnit,
    Unit,
)
from tracker.progress import (
    BUCKET_LABELS,
    Classification,
    Snapshot,
    is_unreported,
    last_due_period,
    reporting_period,
)
from tracker.reports import GROUPINGS, Report, Tally, cell_counts
from tracker.schedule import classify_as_of, counted_candidates, snapshots_as_of
from tracker.settings import TimeSettings
from tracker.workflow import STATE_LABELS, State

MAX_ROWS = 1_048_576  # rows of an Excel sheet (title and header included); tests monkeypatch it small
BATCH = 2000  # tasks read, replayed and written at a time
MAX_WIDTH = 60  # column width cap, in Latin characters
HEADER_ROWS = 2  # title + column headers on every ledger-like sheet

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
    context.load()
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
    progress: Callable[[int, int | None], None] | None = None  # (tasks read, candidates) after each batch
    total: int = 0  # the candidates, known once the groups are counted

    def load(self) -> None:
        """The reference rows, held here so that every task's channel, round and region is a dict lookup."""
        self.channels = {c.id: c for c in self.s.scalars(select(Channel))}
        self.rounds = {r.id: r for r in self.s.scalars(select(Round))}
        self.regions = {r.id: r for r in self.s.scalars(select(Region).where(
            Region.path.startswith(self.region.path, autoescape=True)))}

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
_LOADED = (Task.id, Task.code, Task.channel_id, Task.round_id, Task.region_id, Task.kind, Task.problem_id, Task.title,
           Task.description, Task.category, Task.responsible_leader, Task.contact, Task.target, Task.measures,
           Task.deadline_text, Task.accountability, Task.remarks)


def _batches(ctx: _Context) -> Iterator[list[Task]]:
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
    query = candidates.options(
        load_only(*_LOADED), selectinload(Task.task_units).selectinload(TaskUnit.unit).selectinload(Unit.region),
        selectinload(Task.problem))
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


def _whole(ctx: _Context, query, groups: list[tuple]) -> Iterator[list[Task]]:
    """Every candidate of these (channel, round, region) groups, in their order, then by code."""
    if not groups:
        return
    rank = {tuple(g[:3]): i for i, g in enumerate(groups)}
    # Three IN lists, which the unique (channel, round, region, code) index answers (a row-value IN list is
    # no index condition: it scanned the whole table once per batch). Groups come in channel and round
    # order, so a batch spans few channels and rounds and the lists select (almost) exactly its groups.
    channels, rounds, regions = ({g[i] for g in rank} for i in range(3))
    found = ctx.s.scalars(query.where(Task.channel_id.in_(channels), Task.round_id.in_(rounds),
                                      Task.region_id.in_(regions))).all()
    tasks = [t for t in found if (t.channel_id, t.round_id, t.region_id) in rank]
    yield sorted(tasks, key=lambda t: (rank[(t.channel_id, t.round_id, t.region_id)], t.code, t.id))


def _large_group(ctx: _Context, query, group: tuple) -> Iterator[list[Task]]:
    channel_id, round_id, region_id = group
    query = query.where(Task.channel_id == channel_id, Task.round_id == round_id, Task.region_id == region_id)
    query = query.order_by(Task.code, Task.id).limit(BATCH)
    last: tuple | None = None
    while batch := ctx.s.scalars(query if last is None else query.where(
            tuple_(Task.code, Task.id) > tuple_(*last))).all():
        yield batch
        last = (batch[-1].code, batch[-1].id)


@dataclass
class _Facts:
    """Per batch, what the snapshot does not hold: one query each."""

    progress: dict[int, str]  # latest report text on or before D
    closures: dict[int, dict]  # the closing event in force at D: closed_on, verifier, closure_doc_no
    milestones: dict[int, str]  # 阶段目标, met as of D
    levels: dict[int, int]  # 督办等级 in force at D
    measures: dict[int, list[str]]  # escalation acts (level ≥ 2) within the month
    names: dict[int, str]  # 督办等级 → its measure (预警, 函告 …)


def _facts(ctx: _Context, ids: list[int], rule_names: dict[int, str]) -> _Facts:
    return _Facts(_latest_progress(ctx, ids), _closures(ctx, ids), _milestones(ctx, ids),
                  *_escalations(ctx, ids, rule_names), rule_names)


def _milestones(ctx: _Context, ids: list[int]) -> dict[int, str]:
    found: dict[int, list[str]] = {}
    rows = ctx.s.scalars(select(Milestone).where(Milestone.task_id.in_(ids))
                         .order_by(Milestone.task_id, Milestone.due_on, Milestone.description, Milestone.id))
    for m in rows:
        met_on = m.met_on if m.met_on is not None and m.met_on <= ctx.as_of else None
        found.setdefault(m.task_id, []).append(
            format_milestone(MilestoneLine(m.due_on, m.description, m.planned_percent, met_on)))
    return {task_id: "\n".join(lines) for task_id, lines in found.items()}


def _latest_progress(ctx: _Context, ids: list[int]) -> dict[int, str]:
    rank = func.row_number().over(partition_by=ProgressReport.task_id,
                                  order_by=(ProgressReport.reported_on.desc(), ProgressReport.id.desc()))
    ranked = (select(ProgressReport.task_id, ProgressReport.text, rank.label("rank"))
              .where(ProgressReport.task_id.in_(ids), ProgressReport.reported_on <= ctx.as_of,
                     ProgressReport.purpose.in_(("progress", "closure")))
              .subquery())
    found = dict(ctx.s.execute(select(ranked.c.task_id, ranked.c.text).where(ranked.c.rank == 1)).all())
    # A task imported from a ledger has its latest progress as a dated "report" event (导入历史) and no
    # report row: its text is the latest progress until a report is filed here.
    missing = [i for i in ids if i not in found]
    if missing:
        rows = ctx.s.execute(
            select(Event.task_id, Event.data)
            .where(Event.task_id.in_(missing), Event.action == "report", Event.effective_on <= ctx.as_of)
            .order_by(Event.task_id, Event.effective_on, Event.id))
        for task_id, data in rows:  # the last one wins
            found[task_id] = (data or {}).get("text") or ""
    return found


def _closures(ctx: _Context, ids: list[int]) -> dict[int, dict]:
    rows = ctx.s.execute(
        select(Event.task_id, Event.effective_on, Event.data)
        .where(Event.task_id.in_(ids), Event.to_state == State.closed.value, Event.effective_on <= ctx.as_of)
        .order_by(Event.task_id, Event.effective_on, Event.id))
    found = {}
    for task_id, effective_on, data in rows:  # the last one wins
        data = data or {}
        closed_on = data.get("closed_on")
        found[task_id] = {"closed_on": dt.date.fromisoformat(closed_on[:10]) if closed_on else effective_on,
                          "verifier": data.get("verifier") or "", "closure_doc_no": data.get("closure_doc_no") or ""}
    return found


def _escalations(ctx: _Context, ids: list[int], rule_names: dict[int, str]):
    when = func.coalesce(EscalationRecord.decided_on, EscalationRecord.scan_date)
    rows = ctx.s.execute(
        select(EscalationRecord.task_id, EscalationRecord.level, EscalationRecord.status, when,
               EscalationRecord.doc_no)
        .where(EscalationRecord.task_id.in_(ids), EscalationRecord.level >= WARNING,
               EscalationRecord.status.in_(tuple(RECORD_STATUS)), when <= ctx.as_of)
        .order_by(EscalationRecord.task_id, when, EscalationRecord.level))
    levels: dict[int, int] = {}
    measures: dict[int, list[str]] = {}
    for task_id, level, status, on, doc_no in rows:
        if status != "proposed":
            levels[task_id] = max(levels.get(task_id, 0), level)
        if level >= 2 and on >= ctx.month_start:
            note = "，".join(part for part in (RECORD_STATUS[status], doc_no) if part)
            measures.setdefault(task_id, []).append(f"{on.isoformat()} {rule_names.get(level, level)}（{note}）")
    return levels, measures


def _lines(ctx: _Context, tallies: list[Tally]) -> Iterator[_Line]:
    """Every task counted at D, in ledger order, each also counted into the 汇总 tallies."""
    rule_names = {r.level: r.name for r in ctx.s.scalars(select(EscalationRule))}
    # Past months: the period due in the month; the current month: today's period, as the task's flag
    # (computed here from the history, so the export does not depend on when the day's refresh ran).
    period = reporting_period if ctx.current else last_due_period
    period_start, _due = period(ctx.settings.reporting, ctx.as_of)
    done = 0
    for batch in _batches(ctx):
        if ctx.progress is not None:
            ctx.progress(done, ctx.total)
        done += len(batch)
        snapshots = snapshots_as_of(ctx.s, batch, ctx.as_of)
        results = classify_as_of(snapshots, ctx.as_of, ctx.settings)
        facts = _facts(ctx, [t.id for t in batch], rule_names)
        for task in batch:
            if task.id not in results:
                continue
            snap, result = snapshots[task.id], results[task.id]
            counts = cell_counts(snap, result)  # worked out once for the three tallies
            for tally in tallies:
                tally.add_counts(task, counts)
            unreported = is_unreported(snap, period_start)
            yield _line(ctx, task, snap, result, facts, unreported)
    if ctx.progress is not None:
        ctx.progress(done, ctx.total)


def _line(ctx: _Context, task: Task, snap: Snapshot, result: Classification, facts: _Facts,
          unreported: bool) -> _Line:
    closure = facts.closures.get(task.id) if snap.state == State.closed.value else None
    values = _fields(ctx, task) | _as_of_fields(snap, result, facts, task.id) | {
        "closed_on": closure["closed_on"] if closure else None,
        "verifier": closure["verifier"] if closure else "",
        "closure_doc_no": closure["closure_doc_no"] if closure else "",
        "not_reported": "是" if unreported else "",
    }
    closed_in_month = closure is not None and ctx.month_start <= closure["closed_on"] <= ctx.as_of
    measures = facts.measures.get(task.id, [])
    return _Line(values, closed_in_month, result.overdue, "\n".join(measures), unreported)


def _fields(ctx: _Context, task: Task) -> dict[str, Any]:
    """The ledger record's own fields (DESIGN §3); never 信访人信息."""
    return {
        "code": task.code, "channel": ctx.channels[task.channel_id].name,
        "round": ctx.rounds[task.round_id].name, "kind": task.kind,
        "problem": task.problem.title if task.problem else "", "title": task.title,
        "description": task.description, "region": ctx.regions[task.region_id].name, "category": task.category,
        "leads": "、".join(u.name for u in task.lead_units),
        "participants": "、".join(u.name for u in task.participant_units),
        "leader": task.responsible_leader, "contact": task.contact, "target": task.target,
        "measures": task.measures, "deadline_text": task.deadline_text,
        "accountability": task.accountability, "remarks": task.remarks,
    }


def _as_of_fields(snap: Snapshot, result: Classification, facts: _Facts, task_id: int) -> dict[str, Any]:
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
        "escalation": facts.names.get(level, str(level)) if level else "",
    }


def _tallies(ctx: _Context) -> list[Tally]:
    return [Tally(ctx.s, ctx.region, ctx.as_of, by, ids=False) for by in GROUPINGS]  # counts only


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
    tallies = _tallies(ctx)
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([_csv_cell(title(ctx.region, ctx.as_of))])
        writer.writerow(HEADERS)
        for count, line in enumerate(_lines(ctx, tallies), start=1):
            writer.writerow([_csv_cell(v) for v in _row(count, line.values, KEYS)])
    return LedgerSummary(ctx.as_of, count, [LEDGER], path, _figures(tallies[0].report()))


def _row(seq: int, values: dict[str, Any], keys: list[str]) -> list[Any]:
    return [seq if key == "seq" else values.get(key) for key in keys]


# --- writing: XLSX ----------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Display width in Latin characters: a CJK (wide) character counts two."""
    longest = max((line for line in text[:MAX_WIDTH * 2].split("\n")), key=len, default="")
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in longest)


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


class _Sheet:
    """One worksheet written top to bottom (constant_memory): a merged title row, then rows; widths
    follow the widest text seen, and the print setup is A3 landscape, one page wide, with gridlines.

    Text cells carry no format of their own: the column's (wrapped, top-aligned) applies, which keeps
    the per-cell work — the bulk of a 10⁵-row export — small. Empty cells are not written at all."""

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
    ``MAX_ROWS``; 序号 runs on across them."""

    def __init__(self, book: xlsxwriter.Workbook, fmt: _Formats, name: str, heading: str,
                 columns: tuple[Column, ...], extra: tuple[str, ...] = ()) -> None:
        self.book, self.fmt, self.base, self.heading = book, fmt, name, heading
        self.keys = [c.key for c in columns]
        self.headers = [c.header for c in columns] + list(extra)
        self.designed = [c.width for c in columns] + [30] * len(extra)
        self.numbers = {self.keys.index("percent"): fmt.percent} if "percent" in self.keys else {}
        self.sheets: list[_Sheet] = []
        self.count = 0
        self._open()

    def _open(self) -> None:
        if self.sheets:
            self.sheets[-1].finish()
        name = self.base if not self.sheets else f"{self.base}({len(self.sheets) + 1})"
        sheet = _Sheet(self.book, self.fmt, name, self.heading, len(self.headers), self.designed)
        sheet.header(self.headers)
        sheet.freeze()
        self.sheets.append(sheet)

    def add(self, values: dict[str, Any], extra: list[Any] = ()) -> None:
        if self.sheets[-1].row >= MAX_ROWS:
            self._open()
        self.count += 1
        self.sheets[-1].write([*_row(self.count, values, self.keys), *extra], number_formats=self.numbers)

    def close(self) -> list[str]:
        self.sheets[-1].finish()
        return [sheet.name for sheet in self.sheets]


class _Spool:
    """Rows for a later sheet, kept on disk until the ledger pass is done."""

    def __init__(self) -> None:
        self.fh: IO[bytes] = tempfile.TemporaryFile()

    def put(self, item: Any) -> None:
        pickle.dump(item, self.fh, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[Any]:
        self.fh.seek(0)
        while True:
            try:
                yield pickle.load(self.fh)  # our own temporary file, written just above
            except EOFError:
                return

    def close(self) -> None:
        self.fh.close()


def _export_xlsx(ctx: _Context, path: Path) -> LedgerSummary:
    book = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
        "strings_to_urls": False, "default_date_format": "yyyy-mm-dd"})
    spools = {CLOSED: _Spool(), OVERDUE: _Spool(), UNREPORTED: _Spool()}
    try:
        fmt = _Formats(book)
        heading = title(ctx.region, ctx.as_of)
        summary = _Sheet(book, fmt, SUMMARY, heading, len(SUMMARY_HEADER))
        ledger = _LedgerSheets(book, fmt, LEDGER, heading, LEDGER_COLUMNS)
        tallies = _tallies(ctx)
        for line in _lines(ctx, tallies):
            ledger.add(line.values)
            _spool(line, spools)
        sheets = [SUMMARY, *ledger.close()]
        for name, spool in spools.items():
            extra = (MEASURES_HEADER,) if name == OVERDUE else ()
            sheets += _copy(book, fmt, name, heading, LIST_COLUMNS[name], extra, spool)
        _write_summary(summary, [t.report() for t in tallies])
    finally:
        for spool in spools.values():
            spool.close()
        book.close()
    return LedgerSummary(ctx.as_of, ledger.count, sheets, path, _figures(tallies[0].report()))


def _spool(line: _Line, spools: dict[str, _Spool]) -> None:
    for name, wanted, extra in ((CLOSED, line.closed_in_month, []), (OVERDUE, line.overdue or line.measures,
                                [line.measures]), (UNREPORTED, line.unreported, [])):
        if wanted:
            spools[name].put(({c.key: line.values.get(c.key) for c in LIST_COLUMNS[name]}, extra))


def _copy(book, fmt: _Formats, name: str, heading: str, columns: tuple[Column, ...], extra: tuple[str, ...],
          spool: _Spool) -> list[str]:
    sheets = _LedgerSheets(book, fmt, name, heading, columns, extra)
    for values, cells in spool:
        sheets.add(values, cells)
    return sheets.close()


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

