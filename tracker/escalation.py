"""The escalation scan (DESIGN §6): record the levels and reminders the ladder says are due, tell
the people concerned, and mail one digest per recipient — all in one transaction.

Candidates come from ``next_check_on`` (set-based: the scan's cost grows with the tasks that may
change, not with the ledger). Scans of one date queue on their ``ScanRun`` row; each level is
recorded at most once per task and cycle, which a unique constraint enforces, so a scan run twice,
two started together or one that crashed half way never record or mail a level twice.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import ladder, notify, schedule
from tracker.audit import ActionError, record_event
from tracker.models import EscalationRecord, EscalationRule, Membership, Region, ScanRun, Task
from tracker.permissions import can_admin_province
from tracker.progress import reporting_period
from tracker.schedule import TimeContext
from tracker.timeutil import local_date


class _People:
    """Who is told, looked up once per region and per set of units in a scan: many tasks of a scan share
    their region's supervisors and their lead units' users (the scan's cost per crossing stays small)."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self._nearest: dict[int | None, tuple[Region | None, list]] = {}
        self._units: dict[tuple[int, ...], list] = {}

    def nearest_supervisors(self, region: Region | None) -> tuple[Region | None, list]:
        key = region.id if region is not None else None
        if key not in self._nearest:
            self._nearest[key] = notify.nearest_supervisors(self.s, region)
        return self._nearest[key]

    def unit_users(self, unit_ids: list[int]) -> list:
        key = tuple(sorted(unit_ids))
        if key not in self._units:
            self._units[key] = notify.unit_users(self.s, key)
        return self._units[key]


@dataclass
class ScanSummary:
    scan_date: dt.date
    dry_run: bool = False
    candidates: int = 0
    levels: Counter = field(default_factory=Counter)  # level name -> newly recorded (proposed or applied)
    implied: int = 0
    reminders: int = 0
    notifications: int = 0
    mails: int = 0

    def describe(self) -> str:
        levels = "，".join(f"{name}{n}项" for name, n in sorted(self.levels.items())) or "无新增督办等级"
        prefix = "（试运行，未写入）" if self.dry_run else ""
        return (f"{prefix}{self.scan_date.isoformat()} 扫描{self.candidates}项任务：{levels}；"
                f"跨级记录{self.implied}项，提醒{self.reminders}项，消息{self.notifications}条，邮件{self.mails}封")


def level_names(ctx: TimeContext) -> dict[int, str]:
    return {**{r.level: r.name for r in ctx.rules.values()}, **ladder.REMINDER_NAMES}


def _lock_scan_date(s: Session, day: dt.date, now: dt.datetime) -> ScanRun:
    """Take this date's scan row (made if missing) for the whole transaction: scans of a date queue.

    The first statement is a write: PostgreSQL locks the row, and SQLite takes its write lock before
    anything was read — a transaction that read first could not upgrade once another scan committed,
    and would fail with "database is locked" instead of waiting its turn.
    """
    bump = update(ScanRun).where(ScanRun.scan_date == day).values(runs=ScanRun.runs + 1, started_at=now)
    if s.execute(bump).rowcount == 0:
        try:
            with s.begin_nested():
                s.add(ScanRun(scan_date=day, runs=1, started_at=now, summary={}))
        except IntegrityError:  # made by a scan that started at the same moment: queue behind it
            s.execute(bump)
    return s.get(ScanRun, day, populate_existing=True)


def scan(s: Session, today: dt.date, now: dt.datetime, *, dry_run: bool = False) -> ScanSummary:
    """One scan as of ``today``. The caller commits (or, for a dry run, rolls back)."""
    summary = ScanSummary(today, dry_run)
    run = None if dry_run else _lock_scan_date(s, today, now)
    ctx = schedule.load_context(s)
    people = _People(s)
    last_id = 0
    while batch := schedule.due_tasks(s, today, last_id, escalation=True):
        values = []
        recorded = _recorded_levels(s, batch)
        for task in batch:
            computed = schedule.compute(task, today, ctx)
            values.append({"task_id": task.id, **computed,
                           "escalation_check_on": schedule.escalation_check(task, computed, today, ctx)})
            _escalate(s, task, computed, today, now, ctx, summary, people, recorded)
        if not dry_run:
            schedule.write_values(s, values)
        summary.candidates += len(batch)
        last_id = batch[-1].id
    if not dry_run:
        summary.mails = notify.send_digests(s, now, today, level_names(ctx))
        run.finished_at = now
        run.summary = {"candidates": summary.candidates, "levels": dict(summary.levels), "mails": summary.mails}
        s.flush()
    return summary


def _recorded_levels(s: Session, batch: list[Task]) -> dict[tuple[int, dt.date | None], set[int]]:
    """The levels already recorded for the tasks of a batch, by (task, cycle): one query per batch."""
    found: dict[tuple[int, dt.date | None], set[int]] = {}
    rows = s.execute(select(EscalationRecord.task_id, EscalationRecord.cycle_started_on, EscalationRecord.level)
                     .where(EscalationRecord.task_id.in_([t.id for t in batch])))
    for task_id, cycle, level in rows:
        found.setdefault((task_id, cycle), set()).add(level)
    return found


def _escalate(s: Session, task: Task, computed: dict, today: dt.date, now: dt.datetime, ctx: TimeContext,
              summary: ScanSummary, people: _People, recorded_levels: dict) -> None:
    facts = schedule.ladder_facts(task, computed["schedule"] == "behind", computed["not_reported"])
    due = ladder.assess(ctx.calendar, facts, today, ctx.rules, ctx.thresholds)
    if not due:
        return
    cycle = task.cycle_started_on or task.assigned_on
    recorded = recorded_levels.get((task.id, cycle), set())
    top, implied = ladder.highest_first(due, recorded)
    for item in implied:
        if summary.dry_run or _record(s, task, item, cycle, "implied", today, now, summary) is not None:
            summary.implied += 1
    if top is not None:
        _raise_to(s, task, top, cycle, today, now, ctx, summary, people)
    for item in (d for d in due if d.level < ladder.WARNING):
        _remind(s, task, item, today, now, ctx, summary, people)


def _record(s: Session, task: Task, item: ladder.Due, cycle: dt.date | None, status: str, today: dt.date,
            now: dt.datetime, summary: ScanSummary, deciding: Region | None = None, *,
            savepoint: bool = True) -> EscalationRecord | None:
    """Insert one record; None when it exists already (the unique constraint decides). Without
    ``savepoint`` (a task created in this transaction, which has no records yet) it is just added."""
    if summary.dry_run:
        return None
    record = EscalationRecord(**record_row(task.id, item, cycle, status, today, deciding.id if deciding else None))
    if not savepoint:
        s.add(record)
    else:
        try:
            with s.begin_nested():
                s.add(record)
        except IntegrityError:
            return None
    # The scan's changes are history too (履责留痕), written by the system on the scan's date.
    action, data = record_event_data(item, status)
    record_event(s, None, now, action, task=task, effective_on=today, data=data)
    return record


def _raise_to(s: Session, task: Task, item: ladder.Due, cycle: dt.date | None, today: dt.date, now: dt.datetime,
              ctx: TimeContext, summary: ScanSummary, people: _People) -> None:
    rule = ctx.rules[item.level]
    start = task.region.parent if rule.decided_above and task.region.parent else task.region
    deciding, supervisors = people.nearest_supervisors(start)
    status = "proposed" if rule.mode == "proposed" else "applied"
    record = _record(s, task, item, cycle, status, today, now, summary, deciding)
    if summary.dry_run or record is not None:
        summary.levels[rule.name] += 1
    if record is None:
        return
    if status == "applied":
        _set_level(s, task, item.level)
    users = people.unit_users(notify.lead_unit_ids(task))
    _near, nearest = people.nearest_supervisors(task.region)
    title = f"【{rule.name}】{task.code} {task.title}"
    made = notify.tell(s, [*users, *nearest, *supervisors], kind="escalation", task=task, title=title,
                       body=item.reason, now=now, record_id=record.id)
    summary.notifications += len(made)


def _set_level(s: Session, task: Task, level: int) -> None:
    """The task's 督办等级 (a plain UPDATE: the scan is not an edit and keeps ``version``)."""
    table = Task.__table__
    s.execute(update(table).where(table.c.id == task.id, table.c.escalation_level < level)
              .values(escalation_level=level))


def _remind(s: Session, task: Task, item: ladder.Due, today: dt.date, now: dt.datetime, ctx: TimeContext,
            summary: ScanSummary, people: _People) -> None:
    """催报 (once per reporting period, to the lead units) and 验收提醒 (once per application, to the
    supervisors) — the cycle key of a reminder is the period start or the 申请销号 date."""
    if item.level == ladder.REMIND_REPORT:
        key, _due = reporting_period(ctx.settings.reporting, today)
        users = people.unit_users(notify.lead_unit_ids(task))
    else:
        key = task.closure_applied_on
        _region, users = people.nearest_supervisors(task.region)
    if summary.dry_run:
        summary.reminders += not s.scalar(select(EscalationRecord.id).where(
            EscalationRecord.task_id == task.id, EscalationRecord.cycle_started_on == key,
            EscalationRecord.level == item.level))
        return
    record = _record(s, task, item, key, "applied", today, now, summary)
    if record is None:
        return
    summary.reminders += 1
    name = ladder.REMINDER_NAMES[item.level]
    made = notify.tell(s, users, kind="reminder", task=task, title=f"【{name}】{task.code} {task.title}",
                       body=item.reason, now=now, record_id=record.id)
    summary.notifications += len(made)


def baseline(s: Session, task: Task, today: dt.date, now: dt.datetime | None = None,
             ctx: TimeContext | None = None, *, new: bool = False) -> int:
    """An imported task's starting point: the levels already passed are recorded as 导入基线, with no
    message, so nothing is sent retroactively for the past (DESIGN §6).

    An import of many tasks passes one ``ctx`` for all, and ``new=True`` for tasks it created in this
    transaction (they have no records yet, so no savepoint per record is needed)."""
    ctx = ctx or schedule.load_context(s)
    now = now or dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
    count = 0
    for item, key in baseline_levels(task, today, ctx):
        count += _record(s, task, item, key, "baseline", today, now, ScanSummary(today), savepoint=not new) is not None
    return count


def baseline_levels(task: Task, today: dt.date, ctx: TimeContext) -> list[tuple[ladder.Due, dt.date | None]]:
    """The levels an imported task has already passed, each with the cycle key it is recorded under (the
    cycle's start for 预警 and above, the period for 催报, the application for 验收提醒). ``task`` may be any
    object with the task's columns (an import writing rows in bulk)."""
    computed = schedule.compute(task, today, ctx)
    facts = schedule.ladder_facts(task, computed["schedule"] == "behind", computed["not_reported"])
    cycle = task.cycle_started_on or task.assigned_on
    return [(item, cycle if item.level >= ladder.WARNING else (
        reporting_period(ctx.settings.reporting, today)[0] if item.level == ladder.REMIND_REPORT
        else task.closure_applied_on)) for item in ladder.assess(ctx.calendar, facts, today, ctx.rules, ctx.thresholds)]


def record_row(task_id: int, item: ladder.Due, cycle: dt.date | None, status: str, today: dt.date,
               deciding_region_id: int | None = None) -> dict:
    """The columns of the record of ``item`` (``_record``; an import inserts its baselines in bulk)."""
    return {"task_id": task_id, "level": item.level, "cycle_started_on": cycle, "status": status,
            "reason": item.reason, "overdue_workdays": item.overdue_workdays, "scan_date": today,
            "deciding_region_id": deciding_region_id}


def record_event_data(item: ladder.Due, status: str) -> tuple[str, dict]:
    """The action and data of the event written with the record of ``item``."""
    return ("remind" if item.level < ladder.WARNING else "escalate",
            {"level": item.level, "status": status, "reason": item.reason, "overdue_workdays": item.overdue_workdays})


# --- measures confirmed by hand ----------------------------------------------------------------------


def restrict_region(s: Session, actor: Membership, now: dt.datetime, region: Region, doc_no: str,
                    note: str = "") -> EscalationRecord:
    """区域限批: decided by the province, recorded against a region, not a task."""
    if actor.role != "supervisor" or actor.unit.region.level != 0:
        raise ActionError("区域限批只能由省级督办人员决定")
    if not doc_no.strip():
        raise ActionError("请填写文号")
    if region.level == 0:
        raise ActionError("区域限批须针对市州或县市区")
    today = local_date(now)
    record = EscalationRecord(task_id=None, region_id=region.id, level=8, status="confirmed", reason=note.strip(),
                              decided_on=today, doc_no=doc_no.strip(), membership_id=actor.id)
    s.add(record)
    s.flush()
    record_event(s, actor, now, "restrict_region", entity="region", entity_id=region.id,
                 data={"region": region.name, "doc_no": doc_no.strip(), "note": note.strip()})
    return record


def open_proposals(s: Session, region: Region) -> int:
    return s.scalar(select(func.count()).select_from(EscalationRecord).where(
        EscalationRecord.status == "proposed", EscalationRecord.deciding_region_id == region.id)) or 0


def update_rule(s: Session, actor: Membership | None, now: dt.datetime, level: int, threshold: int | None,
                mode: str) -> None:
    """An admin changes a rung's threshold (working days) or whether it applies at once (函告 … 约谈)."""
    if not can_admin_province(actor):
        raise ActionError("只有省级管理员可以修改督办规则")
    rule = s.get(EscalationRule, level)
    if rule is None or rule.mode in ("manual",) and threshold is not None:
        raise ActionError("该督办措施只能人工决定")
    if threshold is not None and threshold < (0 if level == ladder.WARNING else 1):
        raise ActionError("逾期工作日须为正数")
    if level > ladder.WARNING and mode not in ("proposed", "auto"):
        raise ActionError("生效方式无效")
    before = {"threshold": rule.threshold_workdays, "mode": rule.mode}
    rule.threshold_workdays = threshold
    if level > ladder.WARNING:
        rule.mode = mode
    after = {"threshold": rule.threshold_workdays, "mode": rule.mode}
    if before != after:
        record_event(s, actor, now, "rule", entity="escalation_rule", entity_id=level,
                     data={"level": rule.name, "before": before, "after": after})
    s.flush()
