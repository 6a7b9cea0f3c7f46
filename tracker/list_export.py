"""导出任务列表: the task list as the user filtered it, as CSV (UTF-8 with BOM, so Excel opens it).

A builder, like ``ledger``: it reads through the session and yields text, nothing else. The tasks are
read with ``yield_per`` (a server-side cursor on PostgreSQL) and written in chunks, so memory does not
grow with the number of rows. The rows are the list's own: the same filters within the same scope
(``queries.filtered_tasks`` starts from ``visible_tasks``), in the same order. User text never becomes a
formula (the ledger's cell rule). 信访人信息 is never exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session, selectinload

from tracker.ledger import _csv_cell as csv_cell
from tracker.models import Membership, Task, TaskUnit
from tracker.queries import SCHEDULE_FILTERS, TaskFilter, filtered_tasks, list_order
from tracker.schedule import load_rules
from tracker.workflow import STATE_LABELS, State

HEADERS = ("任务ID", "问题编号", "问题名称", "问题来源", "批次/轮次", "问题类型", "所在地区", "问题领域",
           "责任单位（牵头）", "参与单位", "状态", "序时进度", "本期未报送", "督办等级", "时限要求", "现行时限",
           "交办日期", "最新报送日期", "完成进度", "销号日期")
BOM = "\ufeff"
BATCH = 500


def ordered_query(s: Session, membership: Membership, f: TaskFilter) -> Select[tuple[Task]]:
    """The list's tasks in the list's order, built now: the statement carries the scope as values, so it
    can run later (a streamed response runs it after the view has returned)."""
    _key, order, _descending = list_order(membership, f)
    return filtered_tasks(s, membership, f).order_by(*order)


def csv_chunks(s: Session, query: Select[tuple[Task]], batch: int = BATCH) -> Iterator[str]:
    """The CSV text of ``query``'s tasks in chunks of ``batch`` rows: the BOM and header first."""
    levels = {level: rule.name for level, rule in load_rules(s).items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    yield BOM + _take(buffer)
    for count, task in enumerate(_tasks(s, query, batch), start=1):
        writer.writerow([csv_cell(v) for v in row(task, levels)])
        if count % batch == 0:
            yield _take(buffer)
    rest = _take(buffer)
    if rest:
        yield rest


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _tasks(s: Session, query: Select[tuple[Task]], batch: int) -> Iterator[Task]:
    """The tasks with what a row shows, ``batch`` at a time from one cursor (flat memory)."""
    loaded = query.options(selectinload(Task.task_units).selectinload(TaskUnit.unit), selectinload(Task.region),
                           selectinload(Task.channel), selectinload(Task.round))
    yield from s.scalars(loaded.execution_options(yield_per=batch))


def row(task: Task, levels: dict[int, str]) -> list[Any]:
    """One task's cells, in the order of ``HEADERS``."""
    leads = "、".join(tu.unit.name for tu in task.task_units if tu.role == "lead")
    participants = "、".join(tu.unit.name for tu in task.task_units if tu.role == "participant")
    return [
        task.id, task.code, task.title, task.channel.name, task.round.name, task.kind, task.region.name,
        task.category, leads, participants, STATE_LABELS[State(task.state)], _schedule(task),
        "是" if task.not_reported else "", levels.get(task.escalation_level, "") if task.escalation_level else "",
        task.deadline_text, task.deadline, task.assigned_on, task.latest_report_on,
        "" if task.latest_percent is None else f"{task.latest_percent}%", task.closed_on,
    ]


def _schedule(task: Task) -> str:
    if not task.schedule:
        return ""
    label = SCHEDULE_FILTERS[task.schedule][0] if task.schedule in SCHEDULE_FILTERS else task.schedule
    return f"{label}（逾期）" if task.overdue else label
