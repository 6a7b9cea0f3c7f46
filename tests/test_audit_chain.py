"""The tamper-evident history (``tracker.chain``): every event hash-chained per task or per entity, the
chains verified by ``tracker audit verify`` naming the first broken link, events append-only on
PostgreSQL, concurrent appends serialised, the events of other writers (migration, generator, restore)
chained the same way."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bench.generate import generate
from config import TestConfig
from tests.conftest import NOW, _postgres_url, migrated_database
from tracker import backup, chain, migrate, settings
from tracker.audit import record_event
from tracker.db import make_engine
from tracker.models import Event, Membership, Task
from tracker.operations import perform

EVENT = Event.__table__


def verify(engine, task_ids=None) -> tuple[list[chain.Break], chain.Tally]:
    tally = chain.Tally()
    with engine.connect() as conn:
        chain.begin_snapshot(conn)
        found = list(chain.verify(conn, tally, task_ids))
    return found, tally


def events_of(engine, task_id: int) -> list:
    with engine.connect() as conn:
        return conn.execute(select(EVENT).where(EVENT.c.task_id == task_id).order_by(EVENT.c.id)).all()


def tamper(engine, *statements) -> None:
    """Change the event table behind the app's back (on PostgreSQL with the append-only trigger off for
    this transaction only: DDL is transactional, so it is back on when the transaction ends)."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(text("ALTER TABLE event DISABLE TRIGGER event_append_only"))
        for statement in statements:
            conn.execute(statement)
        if postgres:
            conn.execute(text("ALTER TABLE event ENABLE ALWAYS TRIGGER event_append_only"))


@pytest.fixture
def engine(app):
    return app.extensions["tracker.engine"]


@pytest.fixture
def history(s, world):
    """Two tasks with their chains (双马填埋场: five events, 涓水: two) and the world's entity chains."""
    shuangma = world.assigned(title="双马填埋场渗滤液处理不到位")
    world.advance(shuangma, "rectifying")
    juanshui = world.assigned(title="涓水直排口整治不到位", region="湘乡市", lead="湘乡市人民政府")
    s.commit()
    s.close()
    return shuangma, juanshui


@pytest.fixture
def postgres_only(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger and row locks are PostgreSQL's")


# --- the chain as written ----------------------------------------------------------------------------


def test_every_event_links_to_the_one_before_it_in_its_chain(engine, history):
    shuangma, juanshui = history
    rows = events_of(engine, shuangma.id)
    assert [r.action for r in rows] == ["register", "assign", "sign", "submit_plan", "approve_plan"]
    assert rows[0].prev_hash is None
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash  # written in one transaction, each onto the one before
    for row in rows:  # read back from the database, the fields give the stored hash
        assert chain.hash_of_row(row.prev_hash, row) == row.hash and len(row.hash) == 64
    assert events_of(engine, juanshui.id)[0].prev_hash is None  # another task: another chain
    found, tally = verify(engine)
    assert found == [] and tally.broken == 0
    assert tally.events > 7 and tally.chains > 2  # the world's regions, units and users are chains too


def test_a_session_reads_the_head_again_after_each_commit(app, s, world):
    task = world.assigned()
    s.commit()
    first = record_event(s, world.m["sup_xt"], NOW, "note", task=task, data={"n": 1})
    s.commit()
    with app.extensions["tracker.sessionmaker"]() as other:
        second = record_event(other, None, NOW, "note", task=other.get(Task, task.id), data={"n": 2})
        other.commit()
    third = record_event(s, world.m["sup_xt"], NOW, "note", task=task, data={"n": 3})
    s.commit()
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert verify(app.extensions["tracker.engine"])[0] == []


def test_an_event_rolled_back_with_its_savepoint_is_not_linked_to(engine, s, world):
    task = world.assigned()
    s.commit()
    head = events_of(engine, task.id)[-1].hash
    savepoint = s.begin_nested()
    record_event(s, world.m["sup_xt"], NOW, "note", task=task, data={"kept": False})
    savepoint.rollback()
    kept = record_event(s, world.m["sup_xt"], NOW, "note", task=task, data={"kept": True})
    s.commit()
    assert kept.prev_hash == head
    assert verify(engine)[0] == []


def test_a_released_savepoint_keeps_the_head_and_the_next_event_reads_nothing(engine, s, world):
    task = world.assigned()
    s.commit()
    with s.begin_nested():
        inner = record_event(s, world.m["sup_xt"], NOW, "note", task=task, data={"in": "savepoint"})
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        after = record_event(s, world.m["sup_xt"], NOW, "note", task=task, data={"in": "transaction"})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    s.commit()
    assert sent == [] and after.prev_hash == inner.hash  # the head kept in the session, no lock or read again
    assert verify(engine)[0] == []


def test_a_chain_without_a_task_links_its_events_too(engine, s, world):
    for days in (5, 7):
        settings.set_number(s, world.m["admin_hn"], NOW, "immediate_workdays", "days", days, 1, 30, "立行立改工作日数")
    s.commit()
    with engine.connect() as conn:
        rows = conn.execute(select(EVENT).where(EVENT.c.entity == "setting").order_by(EVENT.c.id)).all()
    assert len(rows) == 2 and rows[0].prev_hash is None and rows[1].prev_hash == rows[0].hash
    assert verify(engine)[0] == []


# --- tampering is found, and the first broken link named ---------------------------------------------


def _changed_data(rows):
    return [update(EVENT).where(EVENT.c.id == rows[2].id).values(data={"opinion": "同意", "forged": True})], \
        (rows[2].id, "hash", rows[2].hash)


def _deleted_in_the_middle(rows):
    return [delete(EVENT).where(EVENT.c.id == rows[2].id)], (rows[3].id, "link", rows[2].hash)


def _forged_in_the_middle(rows):
    """A well-made forgery: linked to its predecessor and hashed as the app would, slipped in before
    the fourth event (the later events renumbered to make room)."""
    forged = {k: getattr(rows[2], k) for k in ("task_id", "entity", "entity_id", "membership_id", "user_id",
                                                "recorded_at", "effective_on")}
    forged |= dict(action="report", from_state="rectifying", to_state="rectifying", data={"percent": 100})
    digest = chain.event_hash(rows[2].hash, **forged)
    moved = rows[3].id + 100_000
    return [update(EVENT).where(EVENT.c.id >= rows[3].id).values(id=EVENT.c.id + 100_000),
            insert(EVENT).values(id=rows[3].id, prev_hash=rows[2].hash, hash=digest, **forged)], \
        (moved, "link", rows[2].hash)


def _appended_with_a_made_up_hash(rows):
    fields = {k: getattr(rows[-1], k) for k in ("task_id", "entity", "entity_id", "action", "membership_id",
                                                 "user_id", "from_state", "to_state", "data", "recorded_at",
                                                 "effective_on", "prev_hash")}
    fields["prev_hash"] = rows[-1].hash
    return [insert(EVENT).values(id=rows[-1].id + 100_000, hash="0" * 64, **fields)], \
        (rows[-1].id + 100_000, "hash", "0" * 64)


def _reordered(rows):
    first, second = rows[1].id, rows[2].id
    return [update(EVENT).where(EVENT.c.id == first).values(id=-1),
            update(EVENT).where(EVENT.c.id == second).values(id=first),
            update(EVENT).where(EVENT.c.id == -1).values(id=second)], \
        (first, "link", rows[2].prev_hash)


def _two_tamperings(rows):
    """The data of the fourth event changed and the second deleted: the second's gap comes first."""
    return [update(EVENT).where(EVENT.c.id == rows[3].id).values(data={}),
            delete(EVENT).where(EVENT.c.id == rows[1].id)], (rows[2].id, "link", rows[1].hash)


@pytest.mark.parametrize("tampering", [_changed_data, _deleted_in_the_middle, _forged_in_the_middle,
                                       _appended_with_a_made_up_hash, _reordered, _two_tamperings],
                         ids=lambda f: f.__name__.strip("_"))
def test_tampering_is_found_at_its_first_broken_link(app, engine, history, tampering):
    shuangma, juanshui = history
    rows = events_of(engine, shuangma.id)
    statements, (event_id, problem, stored) = tampering(rows)
    tamper(engine, *statements)
    found, tally = verify(engine)
    assert len(found) == 1 and tally.broken == 1  # the other chains are intact
    broken = found[0]
    assert (broken.task_id, broken.task_code, broken.event_id, broken.problem, broken.stored) == (
        shuangma.id, shuangma.code, event_id, problem, stored)
    if problem == "link":  # expected: the hash of the event now before it
        with engine.connect() as conn:
            before = conn.scalar(select(EVENT.c.hash).where(EVENT.c.task_id == shuangma.id, EVENT.c.id < event_id)
                                 .order_by(EVENT.c.id.desc()).limit(1))
        assert broken.expected == before
    else:  # expected: the hash of the fields as they are now
        assert broken.expected != stored and len(broken.expected) == 64

    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"任务{shuangma.code}（#{shuangma.id}）：第{event_id}号事件" in result.output
    assert f"实为 {stored}" in result.output and "1条链断裂" in result.output
    assert shuangma.code == juanshui.code  # 2026-0001 in 雨湖区 and in 湘乡市: --task checks both
    one = runner.invoke(args=["audit", "verify", "--task", shuangma.code])
    assert one.exit_code == 1 and f"第{event_id}号事件" in one.output and "已核验2条链" in one.output
    assert verify(engine, [juanshui.id])[0] == []


def test_an_event_without_a_hash_is_named(engine, history):
    shuangma, _ = history
    last = events_of(engine, shuangma.id)[-1]
    tamper(engine, insert(EVENT).values(task_id=shuangma.id, entity="task", entity_id=shuangma.id, action="note",
                                        data={}, recorded_at=NOW, effective_on=NOW.date(), prev_hash=last.hash))
    found, _ = verify(engine)
    assert [(b.problem, b.stored) for b in found] == [("hash", None)] and "缺少哈希" in found[0].describe()


def test_the_cli_verifies_a_clean_database_and_refuses_an_unknown_task(app, history):
    shuangma, _ = history
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "全部完整" in result.output
    one = runner.invoke(args=["audit", "verify", "--task", shuangma.code])  # and 涓水, the same code elsewhere
    assert one.exit_code == 0 and "已核验2条链、7条事件：全部完整" in one.output, one.output
    unknown = runner.invoke(args=["audit", "verify", "--task", "99-9999999"])
    assert unknown.exit_code == 1 and "没有编号为“99-9999999”的任务" in unknown.output


# --- PostgreSQL: append-only, and appends to one chain take turns -------------------------------------


def test_postgresql_refuses_update_and_delete_of_events(engine, s, history, postgres_only):
    shuangma, _ = history
    row = events_of(engine, shuangma.id)[1]
    for statement in (update(EVENT).where(EVENT.c.id == row.id).values(data={}),
                      delete(EVENT).where(EVENT.c.id == row.id),
                      update(EVENT).values(action="forged")):
        with pytest.raises(DBAPIError, match="履责留痕只能追加"), engine.begin() as conn:
            conn.execute(statement)
    with pytest.raises(DBAPIError, match="履责留痕只能追加"), engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # ENABLE ALWAYS: fires anyway
        conn.execute(delete(EVENT).where(EVENT.c.id == row.id))
    event = s.get(Event, row.id)  # through the ORM too
    event.data = {"opinion": "forged"}
    with pytest.raises(DBAPIError, match="履责留痕只能追加"):
        s.flush()
    s.rollback()
    with engine.connect() as conn:  # TRUNCATE (restore --force, the tests' reset) stays possible
        conn.execute(text("TRUNCATE event"))
        assert conn.scalar(select(EVENT.c.id).limit(1)) is None
        conn.rollback()
    assert events_of(engine, shuangma.id)[1] == row


def _waits_for_a_lock(engine, pid: int | None, thread: threading.Thread) -> bool:
    """Whether the other transaction is blocked: on PostgreSQL waiting on a lock, on SQLite still running."""
    if pid is None:
        thread.join(1.5)
        return thread.is_alive()
    with engine.connect() as conn:
        for _ in range(100):
            waiting = conn.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                  {"pid": pid})
            if waiting in ("Lock", "advisory"):
                return True
            conn.rollback()
            time.sleep(0.1)
    return False


@pytest.mark.parametrize("kind", ["task", "entity"])
def test_two_transactions_appending_to_one_chain_take_turns(app, engine, s, world, kind):
    """A task's chain is locked through its row, a chain without a task by an advisory lock (SQLite:
    its one write lock); the second append waits for the first to commit and links to it: no fork."""
    task = world.assigned()
    s.commit()
    maker = app.extensions["tracker.sessionmaker"]

    def append(session, who: str) -> Event:
        if kind == "task":
            return record_event(session, None, NOW, "note", task=session.get(Task, task.id), data={"by": who})
        return record_event(session, None, NOW, "setting", entity="setting", data={"by": who})

    with maker() as a, maker() as b:
        pid = b.scalar(text("SELECT pg_backend_pid()")) if engine.dialect.name == "postgresql" else None
        first = append(a, "a")
        a.flush()
        done: dict = {}

        def second() -> None:
            try:
                event = append(b, "b")
                b.commit()
                done["event"] = event
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                done["error"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        try:
            assert _waits_for_a_lock(engine, pid, thread), "the second append did not wait for the first"
        finally:
            a.commit()
            thread.join(30)
    assert "error" not in done, done.get("error")
    assert done["event"].prev_hash == first.hash
    assert verify(engine)[0] == []


# --- the other writers: the migration, the generator, restore -----------------------------------------


def test_the_migration_links_the_events_written_before_it_as_the_app_would(app, engine, s, history, database_url):
    """Down to 0009 (no hash columns) and up again: the back-fill gives every event the hash
    ``record_event`` gave it, task chains and chains without a task alike."""
    settings.set_number(s, None, NOW, "immediate_workdays", "days", 5, 1, 30, "立行立改工作日数")  # entity_id NULL
    s.commit()
    s.close()
    with engine.connect() as conn:
        before = conn.execute(select(EVENT.c.id, EVENT.c.prev_hash, EVENT.c.hash).order_by(EVENT.c.id)).all()
    engine.dispose()
    migrating = make_engine(database_url)
    cfg = migrate.alembic_config(migrating)
    try:
        command.downgrade(cfg, "0009")
        command.upgrade(cfg, "0010")
    finally:
        command.upgrade(cfg, "head")
    migrating.dispose()
    with engine.connect() as conn:
        after = conn.execute(select(EVENT.c.id, EVENT.c.prev_hash, EVENT.c.hash).order_by(EVENT.c.id)).all()
    assert after == before and all(r.hash for r in after)
    assert verify(engine)[0] == []


def test_the_generated_ledger_is_chained(engine):
    summary = generate(engine, 30, seed=11, log=lambda _line: None)
    found, tally = verify(engine)
    assert found == [] and tally.events == summary.events and tally.chains == summary.tasks


def test_a_restored_database_keeps_the_stored_hashes_and_verifies(app, engine, history, tmp_path):
    shuangma, _ = history
    folders = backup.Folders(Path(app.config["UPLOAD_FOLDER"]), Path(app.config["LEDGER_FOLDER"]))
    out = tmp_path / "backup.tar.gz"
    backup.backup(engine, folders, out, NOW)
    with migrated_database(_postgres_url(), tmp_path) as target_url:
        target = make_engine(TestConfig(target_url, str(tmp_path)).SQLALCHEMY_DATABASE_URI)
        backup.restore(target, backup.Folders(tmp_path / "u", tmp_path / "l"), out)
        assert [r.hash for r in events_of(target, shuangma.id)] == [r.hash for r in events_of(engine, shuangma.id)]
        assert verify(target)[0] == []
        with target.connect() as conn:
            member = conn.scalar(text("SELECT m.id FROM membership m JOIN user_account u ON u.id = m.user_id "
                                      "WHERE u.username = 'unit_yh'"))
        with Session(target) as session:  # the restored chain goes on
            perform(session, session.get(Task, shuangma.id), "report", session.get(Membership, member), NOW,
                    text="渗滤液处理站主体完工")
            session.commit()
        assert verify(target)[0] == []
        target.dispose()


def test_the_cli_lists_every_broken_chain(app, engine, history):
    shuangma, juanshui = history
    one, two = events_of(engine, shuangma.id), events_of(engine, juanshui.id)
    tamper(engine, update(EVENT).where(EVENT.c.id == one[0].id).values(action="forged"),
           delete(EVENT).where(EVENT.c.id == two[0].id))
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"第{one[0].id}号事件内容与所存哈希不符" in result.output
    assert f"第{two[1].id}号事件前序哈希与上一条事件的哈希不符" in result.output and "2条链断裂" in result.output

