"""Errors shown to users and the one way history events are written (履责留痕).

Every operation module imports these; they import nothing of the app but the models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from tracker.i18n import N_, Msg
from tracker.models import Event, Membership, Task
from tracker.timeutil import local_date

CONFLICT_MESSAGE = N_("已被他人修改，请刷新后重试")


class ActionError(Exception):
    """Refused input or action. The message is a Chinese msgid with named ``{}`` parameters
    (``ActionError("{region}下已有“{name}”", region=…, name=…)``): ``str(exc)`` is the Chinese text
    (CLI), ``exc.msg`` keeps msgid and parameters apart for pages to translate (``babel.translate``)."""

    def __init__(self, message: str, **params: Any) -> None:
        self.msg = message if isinstance(message, Msg) and not params else Msg(message, **params)
        super().__init__(self.msg)


class ConflictError(ActionError):
    """The form was made from an older version of the task."""

    def __init__(self) -> None:
        super().__init__(CONFLICT_MESSAGE)


# --- events -------------------------------------------------------------------------------------


def record_event(
    s: Session,
    actor: Membership | None,
    now: dt.datetime,
    action: str,
    *,
    task: Task | None = None,
    entity: str = "task",
    entity_id: int | None = None,
    data: dict[str, Any] | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    effective_on: dt.date | None = None,
) -> Event:
    """Append one history event; the only way events are written."""
    event = Event(
        task_id=task.id if task is not None else None,
        entity=entity,
        entity_id=entity_id if entity_id is not None else (task.id if task is not None else None),
        action=action,
        membership_id=actor.id if actor is not None else None,
        user_id=actor.user_id if actor is not None else None,
        from_state=from_state,
        to_state=to_state,
        data=_jsonable(data or {}),
        recorded_at=now,
        effective_on=effective_on or local_date(now),
    )
    s.add(event)
    return event


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
