"""What an action could touch, read back from the database, to show a refusal changed nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tracker.models import Complainant, Event, Evidence, Milestone, ProgressReport, Task, TaskLink, TaskUnit
from tracker.operations import ActionError

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def snapshot(s, task_id: int) -> dict[str, Any]:
    """The task row, its units, milestones, reports, evidence and events, and the size of every
    table an action writes to — as the database holds them now (queries autoflush the session)."""
    row = dict(s.execute(select(Task.__table__).where(Task.id == task_id)).mappings().one())

    def rows(*cols):
        return sorted(tuple(r) for r in s.execute(select(*cols).where(cols[0].table.c.task_id == task_id)))

    return {
        "task": row,
        "task_units": rows(TaskUnit.task_id, TaskUnit.unit_id, TaskUnit.role, TaskUnit.position),
        "milestones": rows(Milestone.task_id, Milestone.id, Milestone.due_on, Milestone.description,
                           Milestone.met_on),
        "reports": rows(ProgressReport.task_id, ProgressReport.id),
        "evidence": rows(Evidence.task_id, Evidence.id),
        "events": rows(Event.task_id, Event.id),
        "totals": dict(s.execute(select(*(
            select(func.count()).select_from(model).scalar_subquery().label(model.__name__)
            for model in (Task, Event, TaskUnit, Milestone, ProgressReport, Evidence, TaskLink, Complainant)
        ))).mappings().one()),
    }


def refused_and_unchanged(s, task: Task, expected: str, call: Callable[..., Any], *args: Any,
                          **kwargs: Any) -> ActionError:
    """``call(*args, **kwargs)`` raises ActionError with a Chinese message containing ``expected``,
    and the task is unchanged both before and after the rollback the views do. Returns the error.

    What came before is committed first, as the view of the previous step did.
    """
    s.commit()
    before = snapshot(s, task.id)
    with pytest.raises(ActionError) as refused:
        call(*args, **kwargs)
    message = str(refused.value)
    assert expected in message
    assert CHINESE.search(message), message
    # Nothing changed even before the rollback: operations validate before they change anything.
    assert snapshot(s, task.id) == before
    s.rollback()
    assert snapshot(s, task.id) == before
    assert (task.state, task.version) == (before["task"]["state"], before["task"]["version"])
    return refused.value
