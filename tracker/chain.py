"""The tamper-evident history (履责留痕防篡改): every ``Event`` is hash-chained, and ``verify`` checks the chains.

A chain is the events of one task (``task_id``), or, for events without a task, of one
``(entity, entity_id)`` — a user, a unit, a setting … — in ``id`` order. Each event stores
``prev_hash`` (the ``hash`` of the event before it in its chain; NULL for the first) and
``hash = SHA-256(prev_hash or "" + "\\n" + canonical JSON of its fields)``. Changing, deleting,
inserting or reordering any event but the newest breaks the link at the next one.

The ``id`` is not hashed: it is assigned by the database at flush (hashing it would cost a flush per
event), and the links already fix the order — each event names its predecessor's hash — so ids only
say where a chain's events sit among the others. ``task_id``, ``entity`` and ``entity_id`` are hashed,
so an event cannot be moved to another chain.

``audit.record_event`` is the one writer: ``next_link`` gives it the chain's current head, kept per
session in ``Session.info`` and read from the database (after locking the chain) the first time in a
transaction. The other writers of events — ``bench/generate.py`` and the migration that back-fills
existing rows — compute the same ``event_hash``; ``backup.restore`` keeps the stored hashes as they are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, event, func, select, text
from sqlalchemy.orm import Session, SessionTransaction

from tracker.models import Event, Task

HEADS = "tracker.event_chain_heads"  # Session.info key: chain key -> hash of its newest event
BATCH = 5000  # rows fetched at a time by verify


# --- the hash ------------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The one JSON spelling hashed: sorted keys, no spaces, Chinese kept as it is."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def as_utc(instant: dt.datetime) -> dt.datetime:
    """An instant as aware UTC (naive datetimes, as SQLite returns them, are UTC)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)


def event_hash(prev_hash: str | None, *, task_id: int | None, entity: str, entity_id: int | None, action: str,
               membership_id: int | None, user_id: int | None, from_state: str | None, to_state: str | None,
               data: Any, recorded_at: dt.datetime, effective_on: dt.date) -> str:
    """SHA-256 (hex) over the previous hash of the chain ("" for its first event) and the event's fields."""
    body = canonical_json({
        "task_id": task_id, "entity": entity, "entity_id": entity_id, "action": action,
        "membership_id": membership_id, "user_id": user_id, "from_state": from_state, "to_state": to_state,
        "data": data, "recorded_at": as_utc(recorded_at).isoformat(timespec="microseconds"),
        "effective_on": effective_on.isoformat(),
    })
    return hashlib.sha256(f"{prev_hash or ''}\n{body}".encode()).hexdigest()


def hash_of_row(prev_hash: str | None, row: Any) -> str:
    """``event_hash`` of a row (or object) with the event's columns as attributes."""
    return event_hash(
        prev_hash, task_id=row.task_id, entity=row.entity, entity_id=row.entity_id, action=row.action,
        membership_id=row.membership_id, user_id=row.user_id, from_state=row.from_state, to_state=row.to_state,
        data=row.data, recorded_at=row.recorded_at, effective_on=row.effective_on)


# --- appending -----------------------------------------------------------------------------------


def chain_key(task_id: int | None, entity: str, entity_id: int | None) -> tuple:
    return ("task", task_id) if task_id is not None else ("entity", entity, entity_id)


def head(s: Session, task_id: int | None, entity: str, entity_id: int | None) -> str | None:
    """The hash the next event of this chain links to (None: the chain is empty).

    The first time in a transaction the chain is locked — the task row ``FOR NO KEY UPDATE``, or a
    transaction advisory lock for a chain without a task, on PostgreSQL; SQLite's write lock — and its
    newest event read, so two transactions appending to one chain take turns and never fork it. Then
    the head is kept in ``s.info`` so the events of one transaction chain onto each other.
    """
    heads = s.info.setdefault(HEADS, {})
    key = chain_key(task_id, entity, entity_id)
    if key not in heads:
        # No autoflush: the caller's pending changes go in its own one flush (a task's version moves by
        # one per action). Unflushed events of this chain cannot be missed: heads are forgotten only when
        # the transaction ends or something rolls back, and a savepoint flushes when it begins.
        with s.no_autoflush:
            _lock(s, task_id, entity, entity_id)
            heads[key] = s.scalar(_chain(select(Event.hash), task_id, entity, entity_id)
                                  .order_by(Event.id.desc()).limit(1))
    return heads[key]


def appended(s: Session, task_id: int | None, entity: str, entity_id: int | None, digest: str) -> None:
    """Note ``digest`` as the chain's new head (the event is added to the session by the caller)."""
    s.info.setdefault(HEADS, {})[chain_key(task_id, entity, entity_id)] = digest


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, transaction: SessionTransaction) -> None:
    """Heads are valid only inside the transaction that read them: after it others may append."""
    if transaction.parent is None:
        session.info.pop(HEADS, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_heads_rolled_back(session: Session, _previous: SessionTransaction) -> None:
    """After any rollback — a savepoint's too — the events behind a head may be gone: read again.
    (A savepoint released keeps them: its events are the transaction's now.)"""
    session.info.pop(HEADS, None)


def _chain(stmt: Select, task_id: int | None, entity: str, entity_id: int | None) -> Select:
    if task_id is not None:
        return stmt.where(Event.task_id == task_id)
    entity_clause = Event.entity_id.is_(None) if entity_id is None else Event.entity_id == entity_id
    return stmt.where(Event.task_id.is_(None), Event.entity == entity, entity_clause)


def _lock(s: Session, task_id: int | None, entity: str, entity_id: int | None) -> None:
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        if task_id is not None:
            # NO KEY UPDATE: the lock an UPDATE of the task takes anyway; rows referring to the task
            # (their foreign-key checks take KEY SHARE) can still be written by others meanwhile.
            s.execute(select(Task.id).where(Task.id == task_id).with_for_update(key_share=True))
        else:
            s.execute(select(func.pg_advisory_xact_lock(advisory_key(entity, entity_id))))
    elif dialect == "sqlite":
        # pysqlite runs a SELECT outside any transaction until the first write; a write that changes
        # nothing opens the transaction and takes SQLite's one write lock before the head is read.
        s.execute(text("UPDATE event SET id = id WHERE 1 = 0"))


def advisory_key(entity: str, entity_id: int | None) -> int:
    """A signed 64-bit key naming a chain without a task among PostgreSQL's advisory locks."""
    digest = hashlib.sha256(f"event-chain:{entity}:{entity_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- verifying -----------------------------------------------------------------------------------


@dataclass
class Break:
    """The first broken link of one chain."""

    task_id: int | None
    task_code: str | None
    entity: str
    entity_id: int | None
    event_id: int
    problem: str  # "link": prev_hash is not the previous event's hash; "hash": the fields do not match
    expected: str | None
    stored: str | None

    def chain(self) -> str:
        if self.task_id is not None:
            return f"任务{self.task_code or '?'}（#{self.task_id}）"
        return f"{self.entity} #{self.entity_id if self.entity_id is not None else '-'}"

    def describe(self) -> str:
        what = ("前序哈希与上一条事件的哈希不符" if self.problem == "link"
                else "内容与所存哈希不符" if self.stored else "缺少哈希")
        return (f"{self.chain()}：第{self.event_id}号事件{what}，"
                f"应为 {self.expected or '（空）'}，实为 {self.stored or '（空）'}")


@dataclass
class Tally:
    chains: int = 0
    events: int = 0
    broken: int = 0

    def describe(self) -> str:
        if self.broken:
            return f"已核验{self.chains}条链、{self.events}条事件：{self.broken}条链断裂"
        return f"已核验{self.chains}条链、{self.events}条事件：全部完整"


COLUMNS = (Event.id, Event.task_id, Event.entity, Event.entity_id, Event.action, Event.membership_id,
           Event.user_id, Event.from_state, Event.to_state, Event.data, Event.recorded_at, Event.effective_on,
           Event.prev_hash, Event.hash)


def begin_snapshot(conn: Connection) -> None:
    """One read-only snapshot for the whole walk (PostgreSQL; SQLite reads one anyway)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def task_ids_of(conn: Connection, code: str) -> list[int]:
    """The tasks of a 问题编号 (unique within a channel, round and region only)."""
    return list(conn.scalars(select(Task.id).where(Task.code == code).order_by(Task.id)))


def verify(conn: Connection, tally: Tally, task_ids: list[int] | None = None) -> Iterator[Break]:
    """Walk every chain (or those of the given tasks) in id order, recomputing each hash; yield the first
    broken link of each broken chain. Rows are streamed (a server-side cursor on PostgreSQL), one chain's
    head held at a time."""
    if task_ids is not None:
        yield from _walk(conn, tally, select(*COLUMNS).where(Event.task_id.in_(task_ids))
                         .order_by(Event.task_id, Event.id))
        return
    yield from _walk(conn, tally, select(*COLUMNS).where(Event.task_id.is_not(None))
                     .order_by(Event.task_id, Event.id))
    yield from _walk(conn, tally, select(*COLUMNS).where(Event.task_id.is_(None))
                     .order_by(Event.entity, Event.entity_id, Event.id))


def _walk(conn: Connection, tally: Tally, stmt: Select) -> Iterator[Break]:
    key, previous, broken = None, None, False
    for row in conn.execute(stmt, execution_options={"stream_results": True, "yield_per": BATCH}):
        tally.events += 1
        row_key = chain_key(row.task_id, row.entity, row.entity_id)
        if row_key != key:
            key, previous, broken = row_key, None, False
            tally.chains += 1
        if broken:
            continue
        found = _check(row, previous)
        if found is not None:
            broken = True
            tally.broken += 1
            found.task_code = _task_code(conn, row.task_id)
            yield found
        previous = row.hash


def _check(row: Any, previous: str | None) -> Break | None:
    def broken(problem: str, expected: str | None, stored: str | None) -> Break:
        return Break(row.task_id, None, row.entity, row.entity_id, row.id, problem, expected, stored)

    if row.prev_hash != previous:
        return broken("link", previous, row.prev_hash)
    expected = hash_of_row(previous, row)
    if row.hash != expected:
        return broken("hash", expected, row.hash)
    return None


def _task_code(conn: Connection, task_id: int | None) -> str | None:
    if task_id is None:
        return None
    return conn.scalar(select(Task.code).where(Task.id == task_id))
