"""Errors shown to users and the one way history events are written (履责留痕).

Every operation module imports these; they import nothing of the app but the models and ``chain``
(the hash chain every event is linked into).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from tracker import chain
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
    """Append one history event, linked into its chain (``tracker.chain``); the only way events are written
    (tasks created in bulk start their chains with ``record_first_events``)."""
    if task is not None and task.id is None:
        s.flush()
    task_id = task.id if task is not None else None
    fields = event_fields(actor, now, action, task_id=task_id, entity=entity, entity_id=entity_id, data=data,
                          from_state=from_state, to_state=to_state, effective_on=effective_on)
    prev_hash = chain.head(s, task_id, entity, fields["entity_id"])
    digest = chain.event_hash(prev_hash, **fields)
    event = Event(**fields, prev_hash=prev_hash, hash=digest)
    s.add(event)
    chain.appended(s, task_id, entity, fields["entity_id"], digest)
    return event


def event_fields(actor: Membership | None, now: dt.datetime, action: str, *, task_id: int | None = None,
                 entity: str = "task", entity_id: int | None = None, data: dict[str, Any] | None = None,
                 from_state: str | None = None, to_state: str | None = None,
                 effective_on: dt.date | None = None) -> dict[str, Any]:
    """The columns of one event as ``record_event`` writes them, before its link into the chain."""
    return dict(
        task_id=task_id,
        entity=entity,
        entity_id=entity_id if entity_id is not None else task_id,
        action=action,
        membership_id=actor.id if actor is not None else None,
        user_id=actor.user_id if actor is not None else None,
        from_state=from_state,
        to_state=to_state,
        # as the database will give it back, so the hash computed now is the one verify recomputes
        data=json.loads(chain.canonical_json(jsonable(data or {}))),
        recorded_at=chain.as_utc(now),
        effective_on=effective_on or local_date(now),
    )


def record_first_events(s: Session, events: list[dict[str, Any]]) -> None:
    """Append the first events of tasks created in this transaction (``event_fields`` of each, every task's
    in order) in one statement — an import of 10⁴ tasks writes ~3·10⁴. Their chains are empty, so each
    starts from nothing, with no lock or read per chain; the heads are noted for ``record_event`` after."""
    heads: dict[int, str] = {}
    for fields in events:
        if fields["task_id"] is None or fields["entity"] != "task":
            raise ValueError("record_first_events appends the events of new tasks only")
        fields["prev_hash"] = heads.get(fields["task_id"])
        fields["hash"] = heads[fields["task_id"]] = chain.event_hash(fields["prev_hash"], **{
            k: v for k, v in fields.items() if k not in ("prev_hash", "hash")})
    if events:
        s.execute(insert(Event.__table__), events)
    for task_id, digest in heads.items():
        chain.appended(s, task_id, "task", task_id, digest)


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: string keys, lists, ISO dates (events and the security log)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
