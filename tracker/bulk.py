"""Bulk actions (批量办理) of a supervisor on a selection of tasks: 交办, 改派, 督办措施, 审批延期.

All or none: every selected task goes through ``operations.perform`` (so each gets its own event,
notice and schedule refresh) inside one savepoint; when any task is refused — out of scope, not
allowed now, bad input for it, or changed by someone else since the list was shown — every change is
rolled back and the reason is given per task. Each task runs in a savepoint of its own inside that
one, so one refusal does not hide the reasons of the tasks after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from tracker.audit import CONFLICT_MESSAGE, ActionError
from tracker.i18n import N_, Msg
from tracker.models import Membership, Task, TaskUnit
from tracker.operations import perform
from tracker.permissions import visible_tasks
from tracker.queries import TODO_OPTIONS

# The actions a supervisor may take on several tasks at once.
BULK_ACTIONS = ("assign", "reassign", "confirm_measure", "decide_extension")
# A selection comes from one page of the list; a cap keeps one request's work bounded.
MAX_TASKS = 200
NOT_FOUND = N_("任务不存在或不在您的管辖范围内")


@dataclass(frozen=True)
class Refusal:
    """Why one selected task was refused."""

    task_id: int
    code: str
    title: str
    reason: str  # a Msg when it came from a refused action: pages translate it


@dataclass
class BulkResult:
    action: str
    done: list[Task] = field(default_factory=list)  # changed (and kept only when nothing was refused)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def selected_ids(task_ids: Iterable[int]) -> list[int]:
    """The selection without repeats, in the order given; checked for size."""
    ids = list(dict.fromkeys(int(i) for i in task_ids))
    if not ids:
        raise ActionError(N_("请至少选择一个任务"))
    if len(ids) > MAX_TASKS:
        raise ActionError("一次最多批量办理{n}个任务", n=MAX_TASKS)
    return ids


def load_selection(s: Session, actor: Membership, task_ids: Iterable[int]) -> tuple[list[Task], list[int]]:
    """The selected tasks the actor can see (in the order given) and the ids it cannot: one query."""
    ids = selected_ids(task_ids)
    # what ``can`` and the forms read (units, children, extensions, the assigning level): one query each
    query = visible_tasks(actor).where(Task.id.in_(ids)).options(
        *TODO_OPTIONS, selectinload(Task.task_units).selectinload(TaskUnit.unit))
    found = {t.id: t for t in s.scalars(query)}
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


def bulk_perform(
    s: Session,
    actor: Membership,
    now: dt.datetime,
    task_ids: Iterable[int],
    action: str,
    params: Mapping[str, Any],
    versions: Mapping[int, int | None],
) -> BulkResult:
    """Take ``action`` with the same ``params`` on every selected task, or on none of them.

    ``versions`` maps a task id to the version the list showed; a task changed since is refused with
    the conflict message. The caller commits when ``result.ok`` (and may roll back otherwise: nothing
    of the selection is left in the session's transaction either way but the successes).
    """
    if action not in BULK_ACTIONS:
        raise ActionError(N_("该操作不能批量办理"))
    tasks, missing = load_selection(s, actor, task_ids)
    result = BulkResult(action)
    result.refused.extend(Refusal(i, f"#{i}", "", NOT_FOUND) for i in missing)
    outer = s.begin_nested()
    try:
        for task in tasks:
            _one(s, actor, now, task, action, params, versions.get(task.id), result)
    except BaseException:
        outer.rollback()
        raise
    if result.refused:
        outer.rollback()
    else:
        outer.commit()
    return result


def _one(s: Session, actor: Membership, now: dt.datetime, task: Task, action: str, params: Mapping[str, Any],
         version: int | None, result: BulkResult) -> None:
    task_id, code, title = task.id, task.code, task.title  # read before a rollback expires the task
    try:
        with s.begin_nested():
            perform(s, task, action, actor, now, expected_version=version, **params)
    except ActionError as exc:
        result.refused.append(Refusal(task_id, code, title, getattr(exc, "msg", None) or str(exc)))
    except StaleDataError:
        result.refused.append(Refusal(task_id, code, title, Msg(CONFLICT_MESSAGE)))
    else:
        result.done.append(task)


