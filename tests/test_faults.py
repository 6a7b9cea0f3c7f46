"""Faults, each really done (issue 9 item 5): an SMTP server down, slow and refusing for hours; PostgreSQL
restarted in the middle of a scan and of a request (a private cluster this file starts itself); a gunicorn worker
and the scheduler SIGKILLed in the middle of their transactions; the disk full while an upload is saved.

What each test does and what it found is written up in docs/RELIABILITY.md, "Faults".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import functools
import hashlib
import io
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from email.policy import default as default_policy
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from config import TestConfig
from tests import pgcluster
from tests.conftest import NOW, PASSWORD, build_world, csrf_token, login
from tests.test_api import api_for, problem
from tracker import create_app, escalation, migrate, outbox, scheduler
from tracker.models import BackgroundJob, EscalationRecord, Event, Evidence, Notification, OutboxMail, ScanRun, Task
from tracker.scheduler import job, run_daily, run_job
from tracker.timeutil import SHANGHAI, local_date, utcnow

MINUTE = dt.timedelta(minutes=1)
LATER = local_date(utcnow()) + dt.timedelta(days=200)  # a deadline still ahead whenever the tests run


def utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --- 1. SMTP down, slow, refusing -------------------------------------------------------------------


class Moody:
    """An aiosmtpd handler whose mood the test sets: ``up``; ``slow`` (DATA answered only after
    ``slow_seconds``, longer than the client's timeout); ``busy`` (451 to every recipient). Some addresses
    are refused for good (550) whatever the mood. Keeps how often each Message-ID arrived."""

    def __init__(self, slow_seconds: float) -> None:
        self.mood = "up"
        self.slow_seconds = slow_seconds
        self.refused_for_good: dict[str, str] = {}
        self.arrived: Counter[str] = Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused_for_good:
            return self.refused_for_good[address]
        if self.mood == "busy":
            return "451 4.3.2 System busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mood == "slow":
            await asyncio.sleep(self.slow_seconds)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        self.arrived[message["Message-ID"]] += 1
        return "250 Message accepted for delivery"


class Relay:
    """The SMTP relay on a fixed loopback port, switched off (the port closed) and on again."""

    def __init__(self, handler: Moody, port: int) -> None:
        self.handler, self.port = handler, port
        self.controller: Controller | None = None

    def up(self, mood: str = "up") -> None:
        self.handler.mood = mood
        if self.controller is None:
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def relay(app):
    timeout = 0.4
    relay = Relay(Moody(slow_seconds=timeout * 4), pgcluster.free_port())
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=relay.port, MAIL_TIMEOUT=timeout,
                      MAIL_FROM="湖南省整改台账 <zhenggai@hn.example.cn>")
    yield relay
    relay.down()


def queue_mail(s, to: str, subject: str, now: dt.datetime) -> OutboxMail:
    text = "雨湖区人民政府：\n双马填埋场整改任务已逾期，请尽快报送整改进展。\n"
    mail = outbox.enqueue(s, [to], subject, text, now=now)
    s.commit()
    return mail


# The relay's day: down for five hours (port closed), slow for an hour, refusing every recipient with 451 for
# two hours, then up. The scheduler's mail_flush job runs every minute throughout. (Until this test, a mail
# was failed after its 12th attempt, about six hours in: all of them would have been.)
PHASES = [(0, "down"), (300, "slow"), (360, "busy"), (480, "up")]
END_MINUTE = 600


def mood_at(minute: int) -> str:
    return [mood for start, mood in PHASES if start <= minute][-1]


@pytest.mark.slow
def test_smtp_down_slow_and_refusing_for_hours_loses_nothing_and_sends_nothing_twice(app, s, world, relay, client):
    relay.handler.refused_for_good["nobody@example.cn"] = "550 5.1.1 Mailbox unavailable"
    arrivals = {0: ["unit_yh@example.cn", "sup_xt@example.cn", "nobody@example.cn", "unit_xx@example.cn"],
                30: ["sup_hn@example.cn"], 200: ["unit_yx@example.cn"], 300: ["viewer_xt@example.cn"]}
    mails: list[OutboxMail] = []
    first_waits: list[dt.timedelta] = []  # the first mail's waits between attempts: the backoff
    slow_flushes: list[float] = []  # seconds each flush took while the relay was slow
    for minute in range(END_MINUTE):
        now = NOW + minute * MINUTE
        for to in arrivals.get(minute, ()):
            mails.append(queue_mail(s, to, f"【督办提醒】双马填埋场渗滤液处理不到位（{to}）", now))
        mood = mood_at(minute)
        relay.down() if mood == "down" else relay.up(mood)
        before = _attempts(s, mails[0])
        started = time.monotonic()
        run_job(app, job("mail_flush"), now)
        if mood == "slow":
            slow_flushes.append(time.monotonic() - started)
        s.expire_all()
        first = s.get(OutboxMail, mails[0].id)
        if first.attempts > before and first.status == "pending":  # tried this minute, and put back
            first_waits.append(utc(first.next_attempt_at) - now)
        if minute == 100:  # during the outage the admin sees what waits, and why
            login(client, "admin_hn")
            page = client.get("/admin/mail").get_data(as_text=True)
            assert "待发送 5 封" in page and "其中待重试 5 封" in page and "无法连接邮件服务器" in page

    # A slow relay costs one timeout per flush, not one per mail due (several were due at once).
    assert max(slow_flushes) < 3 * app.config["MAIL_TIMEOUT"], slow_flushes
    # Backoff: 1, 2, 4 … minutes, at most an hour, whatever the failure (port closed, timeout, 451).
    assert [w / MINUTE for w in first_waits] == [1, 2, 4, 8, 16, 32] + [60] * 7, first_waits
    s.expire_all()
    rows = {m.recipients[0]: s.get(OutboxMail, m.id) for m in mails}
    good = {to: row for to, row in rows.items() if to != "nobody@example.cn"}
    # Nothing lost, nothing twice: every good mail arrived exactly once, under its own Message-ID.
    assert relay.handler.arrived == Counter({row.message_id: 1 for row in good.values()})
    assert {row.status for row in good.values()} == {"sent"}
    # The permanent refusal (550) is marked failed at its first real conversation and shown to the admin.
    bad = rows["nobody@example.cn"]
    assert bad.status == "failed" and "550 5.1.1 Mailbox unavailable" in bad.last_error
    assert s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == "pending")) == 0
    page = client.get("/admin/mail").get_data(as_text=True)
    assert "发送失败 1 封" in page and "nobody@example.cn" in page and "Mailbox unavailable" in page
    assert "重试" in page


def _attempts(s, mail: OutboxMail) -> int:
    s.expire_all()
    return s.get(OutboxMail, mail.id).attempts


# --- 2. PostgreSQL restarted mid-scan and mid-request (a private cluster) -----------------------------------

SCAN_DAY = dt.date(2026, 4, 2)  # the tasks' deadline was 2026-03-31: 函告 is due for each
SCAN_NOW = dt.datetime(2026, 4, 2, 8, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.fixture(scope="module")
def cluster():
    """A private cluster for this module, with a migrated template database the tests copy."""
    reason = pgcluster.unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = pgcluster.Cluster()
    try:
        cluster.start()
        url = cluster.create_database("tracker_template")
        engine = create_engine(TestConfig(url, "/tmp").SQLALCHEMY_DATABASE_URI)
        migrate.upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_app(cluster, tmp_path):
    """The app on a fresh copy of the migrated database in the private cluster."""
    name = f"tracker_{uuid.uuid4().hex[:10]}"
    url = cluster.create_database(name, template="tracker_template")
    application = create_app(TestConfig(url, str(tmp_path / "instance")))
    yield application
    application.extensions["tracker.engine"].dispose()
    cluster.drop_database(name)


def overdue_tasks(w, s) -> list[Task]:
    """Three tasks in 雨湖区 and three in 湘乡市, rectifying, due 2026-03-31: the scan of 2026-04-02 proposes
    函告 for each and tells their units and supervisors."""
    tasks = []
    for i in range(3):
        task = w.assigned(title=f"双马填埋场渗滤液处理不到位（{i + 1}）", deadline=dt.date(2026, 3, 31))
        tasks.append(w.advance(task, "rectifying"))
    for i in range(3):
        task = w.assigned(title=f"涓水直排口整治不到位（{i + 1}）", region="湘乡市", lead="湘乡市人民政府",
                          deadline=dt.date(2026, 3, 31))
        tasks.append(w.advance(task, "rectifying", lead_user="unit_xx"))
    s.commit()
    return tasks


def scan_outcome(s, mails_before: int) -> dict:
    """What the scans left: records, their events, notifications, digests (the mails after id
    ``mails_before``: the setup's notices come first) and the scan's bookkeeping."""
    s.expire_all()
    records = s.execute(select(EscalationRecord.task_id, EscalationRecord.cycle_started_on,
                               EscalationRecord.level)).all()
    notes = s.execute(select(Notification.user_id, Notification.record_id, Notification.notified_at)
                      .where(Notification.record_id.is_not(None))).all()
    mails = s.scalars(select(OutboxMail).where(OutboxMail.id > mails_before)).all()
    run = s.get(ScanRun, SCAN_DAY)
    return {
        "records": Counter(records),
        "events": s.scalar(select(func.count()).select_from(Event).where(Event.action.in_(["escalate", "remind"]))),
        "notes": Counter((user, record) for user, record, _ in notes),
        "unnotified": sum(1 for *_, at in notes if at is None),
        "recipients": Counter(to for mail in mails for to in mail.recipients),
        "mails": len(mails),
        "run": None if run is None else (run.runs, run.finished_at is not None, run.summary),
    }


def assert_nothing_scanned(outcome: dict) -> None:
    assert (len(outcome["records"]), outcome["events"], len(outcome["notes"]), outcome["mails"]) == (0, 0, 0, 0)
    assert outcome["run"] is None  # not even the scan's bookkeeping: its row was written in the same transaction


def assert_scanned_once(outcome: dict, expected_records: int, runs: int, candidates: int = 6) -> None:
    assert len(outcome["records"]) == expected_records and set(outcome["records"].values()) == {1}
    assert outcome["events"] == expected_records  # one 督办升级/提醒 history event per record, none from the crash
    assert outcome["notes"] and set(outcome["notes"].values()) == {1} and outcome["unnotified"] == 0
    assert outcome["mails"] and set(outcome["recipients"].values()) == {1}  # one digest per person, ever
    runs_done, finished, summary = outcome["run"]  # scan_run: how often the date was scanned, the last run's figures
    assert (runs_done, finished, summary["candidates"]) == (runs, True, candidates)
    assert summary["mails"] == (outcome["mails"] if candidates else 0)


@pytest.mark.slow
@pytest.mark.postgres_only
def test_postgres_restarted_mid_scan_fails_the_scan_and_the_next_run_completes_once(private_app, cluster):
    app = private_app
    s = app.extensions["tracker.sessionmaker"]()
    w = build_world(s)
    s.commit()
    overdue_tasks(w, s)
    expected = escalation.scan(s, SCAN_DAY, SCAN_NOW, dry_run=True)
    s.rollback()
    mails_before = s.scalar(select(func.max(OutboxMail.id))) or 0
    s.rollback()  # our own connection goes back to the pool (and dies there in the restart)
    expected_records = sum(expected.levels.values()) + expected.implied + expected.reminders
    assert expected_records >= 6

    # The daily job runs in a thread of its own; at its 4th record the scan stops and the server is restarted
    # (-m fast: every session ended) by the main thread; then the scan's next statement goes to a dead server.
    reached, restarted = threading.Event(), threading.Event()
    inserts = []

    def pause_at_fourth_record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO escalation_record") and threading.current_thread().name == "scan":
            inserts.append(statement)
            if len(inserts) == 4:
                reached.set()
                restarted.wait(60)

    engine = app.extensions["tracker.engine"]
    event.listen(engine, "before_cursor_execute", pause_at_fourth_record)
    failures: list[BaseException] = []

    def daily_job():
        try:
            run_daily(app, SCAN_DAY, SCAN_NOW)
        except BaseException as exc:
            failures.append(exc)

    started_before = cluster.start_time()
    thread = threading.Thread(target=daily_job, name="scan")
    thread.start()
    try:
        assert reached.wait(60), "the scan never reached its 4th record"
        cluster.restart("fast")
    finally:
        restarted.set()
        thread.join(60)
        event.remove(engine, "before_cursor_execute", pause_at_fourth_record)
    assert cluster.start_time() != started_before  # really restarted
    assert len(failures) == 1 and isinstance(failures[0], OperationalError), failures

    # Nothing of the failed scan is left: no record, no message, no mail, no bookkeeping.
    assert_nothing_scanned(scan_outcome(s, mails_before))

    run_daily(app, SCAN_DAY, SCAN_NOW)  # the next run, on the restarted server (the pool reconnects)
    assert_scanned_once(scan_outcome(s, mails_before), expected_records, runs=1)
    run_daily(app, SCAN_DAY, SCAN_NOW)  # and once more: nothing twice
    assert_scanned_once(scan_outcome(s, mails_before), expected_records, runs=2, candidates=0)
    s.close()


def detail_form(client, task_id: int, action: str) -> dict:
    """The CSRF token and task version of an action form on the task page, as the browser would post them."""
    html = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    match = re.search(rf'name="{action}-version"[^>]*value="(\d+)"', html) or re.search(
        rf'value="(\d+)"[^>]*name="{action}-version"', html)
    assert match, f"no {action} form on the task page"
    return {f"{action}-csrf_token": csrf_token(html), f"{action}-version": match.group(1)}


PHOTO = b"\xff\xd8\xff\xe0" + "涓水直排口整治后现场照片".encode() * 200


def submit_form(fields: dict) -> dict:
    """The 申请销号 form with one photo (made anew for every post: a stream is read once)."""
    return {**fields, "submit-text": "涓水直排口已完成截污纳管，申请销号", "submit-evidence_kind": "after",
            "submit-files": [(io.BytesIO(PHOTO), "整改后现场照片.jpg")]}


def lock_row(engine, table: str, row_id: int):
    """Hold ``SELECT … FOR UPDATE`` on one row in a transaction of our own (returns the open connection). A
    foreign key check on that row (KEY SHARE) then waits: a request that inserts a row referring to it stops
    there, half way through its transaction, until we let go."""
    conn = engine.connect()
    conn.execute(text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
    return conn


def waiting_writer(engine) -> bool:
    """A session of this database (not ours) that has written in its transaction and waits on a lock."""
    with engine.connect() as conn:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_xid IS NOT NULL "
            "AND pid <> pg_backend_pid() AND datname = current_database()")))


@dataclass(frozen=True)
class Before:
    """A task as the form was made from it (plain values: the test's session may be rolled back meanwhile)."""

    id: int
    version: int
    mails: int  # outbox rows before the post

    @classmethod
    def of(cls, s, task: Task) -> Before:
        return cls(task.id, task.version, s.scalar(select(func.count()).select_from(OutboxMail)))


def untouched(s, task: Before, folder: Path) -> None:
    """Nothing of a failed 申请销号 is left: state, version, evidence, history, messages, mail, files."""
    untouched_rows(s, task)
    assert not folder.exists() or list(folder.iterdir()) == []


def untouched_rows(s, task: Before) -> None:
    s.expire_all()
    again = s.get(Task, task.id)
    assert (again.state, again.version) == ("rectifying", task.version)
    assert s.scalars(select(Evidence).where(Evidence.task_id == task.id)).all() == []
    assert s.scalars(select(Event).where(Event.task_id == task.id, Event.action == "submit")).all() == []
    assert s.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "notice",
                                                                          Notification.title.contains("申请销号"))) == 0
    assert s.scalar(select(func.count()).select_from(OutboxMail)) == task.mails
    s.rollback()


def submitted(s, task: Before, folder: Path) -> None:
    """The 申请销号 went through exactly once, and its evidence row has its file (and no other file is left)."""
    s.expire_all()
    again = s.get(Task, task.id)
    assert again.state == "verifying" and again.version == task.version + 1
    [evidence] = s.scalars(select(Evidence).where(Evidence.task_id == task.id)).all()
    assert (folder / evidence.stored_name).read_bytes() == PHOTO  # the row's file is there
    assert evidence.sha256 == hashlib.sha256(PHOTO).hexdigest()
    assert [p.name for p in folder.iterdir()] == [evidence.stored_name]  # and no other
    assert len(s.scalars(select(Event).where(Event.task_id == task.id, Event.action == "submit")).all()) == 1
    assert s.scalar(select(func.count()).select_from(OutboxMail)) == task.mails + 1  # the supervisor's notice
    s.rollback()


@pytest.mark.slow
@pytest.mark.postgres_only
def test_postgres_restarted_mid_request_answers_a_clean_503_and_the_form_resubmits(private_app, cluster):
    app = private_app
    s = app.extensions["tracker.sessionmaker"]()
    w = build_world(s)
    s.commit()
    task = w.advance(w.assigned(title="涓水直排口污水直排", deadline=LATER), "rectifying")
    s.commit()
    folder = Path(app.config["UPLOAD_FOLDER"])
    client = app.test_client()
    login(client, "unit_yh")
    fields = detail_form(client, task.id, "submit")
    task = Before.of(s, task)

    # 申请销号 tells 雨湖区's supervisor: the request stops at that message, after the task, its event and the
    # evidence were written in its transaction, because we hold the supervisor's row. Then the server restarts.
    engine = app.extensions["tracker.engine"]
    supervisor_id = w.user("sup_yh").id
    s.rollback()  # our own connection back to the pool (where the restart ends it)
    locker = lock_row(engine, "user_account", supervisor_id)
    answers = []
    request = threading.Thread(target=lambda: answers.append(
        client.post(f"/tasks/{task.id}/act/submit", data=submit_form(fields))))
    request.start()
    try:
        assert pgcluster.wait_until(lambda: waiting_writer(engine), timeout=30), "the request never waited"
        assert len(list(folder.iterdir())) == 1  # its photo is on disk already
        cluster.restart("fast")
        request.join(60)
    finally:
        with contextlib.suppress(SQLAlchemyError):
            locker.close()
    [answer] = answers
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "数据库暂时无法连接" in page and "重新提交" in page and "Traceback" not in page
    assert "psycopg" not in page and "SELECT" not in page and "INSERT" not in page
    untouched(s, task, folder)  # nothing half-written, the stored photo discarded

    # The same form, posted again as it was (same token, same version): it goes through once.
    again = client.post(f"/tasks/{task.id}/act/submit", data=submit_form(fields))
    assert again.status_code == 302, again.get_data(as_text=True)
    submitted(s, task, folder)
    s.close()


@pytest.mark.postgres_only
def test_the_database_stopped_answers_a_chinese_503_everywhere_and_the_pages_come_back(private_app, cluster):
    app = private_app
    s = app.extensions["tracker.sessionmaker"]()
    w = build_world(s)
    s.commit()
    client = app.test_client()
    login(client, "unit_yh")
    api = api_for(client, s, w, "unit_yh")
    s.close()
    cluster.stop()
    try:
        for path in ("/todo", "/tasks", "/messages"):  # the user, the page, the counts in the top bar: none can load
            page = client.get(path)
            text_ = page.get_data(as_text=True)
            assert page.status_code == 503 and page.headers["Retry-After"] == "30", path
            assert "服务暂时不可用" in text_ and "数据库暂时无法连接" in text_ and "Traceback" not in text_
        assert "数据库暂时无法连接" in problem(api.get("/tasks"), 503, "SERVICE_UNAVAILABLE")["detail"]
        assert client.get("/healthz").status_code == 503
    finally:
        cluster.start()
    assert client.get("/todo").status_code == 200  # the pool reconnects: no restart of the app needed
    assert api.get("/tasks").status_code == 200


def test_an_unexpected_failure_answers_a_chinese_500_without_a_traceback(app, world):
    """Production does not propagate exceptions: whatever fails unexpectedly gets the Chinese 500 page."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken():
        raise RuntimeError("SELECT secret FROM somewhere")

    app.add_url_rule("/_fault/broken", view_func=broken)  # this test's app only
    client = app.test_client()
    login(client, "unit_yh")
    answer = client.get("/_fault/broken")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "服务器内部错误" in page and "请稍后重试" in page
    assert "RuntimeError" not in page and "SELECT secret" not in page and "Traceback" not in page


# --- 3. a gunicorn worker SIGKILLed inside its transaction ---------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def is_postgres(app) -> bool:
    return app.extensions["tracker.engine"].dialect.name == "postgresql"


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Server:
    """A real gunicorn (one sync worker) serving the app on the test's database, with fault_hooks loaded."""

    def __init__(self, app, database_url: str, tmp_path: Path, file_size_limit: int | None = None,
                 **environ: str) -> None:
        self.port = pgcluster.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "gunicorn.log"
        env = {**os.environ, "DATABASE_URL": database_url, "TRACKER_INSTANCE": str(app.instance_path),
               "SECRET_KEY": "test-secret", "MAIL_SERVER": "", **environ}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{self.port}",
                 "--config", "tests/fault_hooks.py", "tracker:create_app()"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=None if file_size_limit is None else functools.partial(
                    resource.setrlimit, resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit)))
        assert self.wait_ready(), self.log.read_text()

    def wait_ready(self) -> bool:
        def answers() -> bool:
            try:
                return requests.get(self.base + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        return pgcluster.wait_until(answers, timeout=30, step=0.2)

    def worker(self) -> int:
        [pid] = children(self.process.pid)
        return pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def http_login(base: str, username: str) -> requests.Session:
    http = requests.Session()
    token = csrf_token(http.get(base + "/login", timeout=10).text)
    answer = http.post(base + "/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                       allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return http


def http_form(http: requests.Session, base: str, task_id: int) -> dict:
    html = http.get(f"{base}/tasks/{task_id}", timeout=10).text
    match = re.search(r'name="submit-version"[^>]*value="(\d+)"', html) or re.search(
        r'value="(\d+)"[^>]*name="submit-version"', html)
    assert match, "no 申请销号 form on the task page"
    return {"submit-csrf_token": csrf_token(html), "submit-version": match.group(1),
            "submit-text": "涓水直排口已完成截污纳管，申请销号", "submit-evidence_kind": "after"}


def http_submit(http: requests.Session, base: str, task_id: int, fields: dict) -> requests.Response:
    return http.post(f"{base}/tasks/{task_id}/act/submit", data=fields, allow_redirects=False, timeout=60,
                     files={"submit-files": ("整改后现场照片.jpg", PHOTO, "image/jpeg")})


def sessions_in_transaction(engine) -> int:
    """Other sessions of this database with a transaction that wrote (a killed client's backend lives on until it
    notices)."""
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                                "AND pid <> pg_backend_pid() AND datname = current_database()"))


@pytest.mark.slow
def test_a_worker_killed_inside_its_transaction_leaves_no_partial_write(app, s, world, database_url, tmp_path):
    task = world.advance(world.assigned(title="涓水直排口污水直排", deadline=LATER), "rectifying")
    s.commit()
    before = Before.of(s, task)
    supervisor_id = world.user("sup_yh").id
    s.rollback()
    folder = Path(app.config["UPLOAD_FOLDER"])
    engine = app.extensions["tracker.engine"]
    postgres = is_postgres(app)
    marker = tmp_path / "paused"
    # PostgreSQL: the request waits on the supervisor's row we hold (its notice), after writing the task, its
    # event and the evidence. SQLite: the worker pauses itself just before that notice (tests/fault_hooks.py).
    server = Server(app, database_url, tmp_path,
                    **({} if postgres else {"FAULT_PAUSE_AT": "INSERT INTO notification", "FAULT_MARKER": str(marker)}))
    locker = None
    try:
        http = http_login(server.base, "unit_yh")
        fields = http_form(http, server.base, before.id)
        if postgres:
            locker = lock_row(engine, "user_account", supervisor_id)
        outcome: list[object] = []

        def post() -> None:
            try:
                outcome.append(http_submit(http, server.base, before.id, fields))
            except requests.RequestException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=post)
        thread.start()
        paused = (lambda: waiting_writer(engine)) if postgres else marker.exists
        assert pgcluster.wait_until(paused, timeout=30), server.log.read_text()
        worker = server.worker()
        assert len(list(folder.iterdir())) == 1  # its photo is stored: the request is well inside
        os.kill(worker, signal.SIGKILL)
        thread.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError), outcome
        if locker is not None:
            locker.close()  # let go: the dead worker's session finds its client gone and rolls back
            locker = None
            assert pgcluster.wait_until(lambda: sessions_in_transaction(engine) == 0, timeout=30)

        # Nothing of it in the database. Its stored photo is left behind, referred to by no row; the daily
        # clean-up removes such files once they are a day old.
        [orphan] = list(folder.iterdir())
        untouched_rows(s, before)
        run_job(app, job("jobs_cleanup"), utcnow() + dt.timedelta(days=2))
        assert list(folder.iterdir()) == []

        # gunicorn has started a new worker: the same form, posted again, goes through once.
        assert pgcluster.wait_until(lambda: len(children(server.process.pid)) == 1 and server.worker() != worker)
        assert server.wait_ready()
        again = http_submit(http, server.base, before.id, fields)
        assert again.status_code == 302, again.text
        submitted(s, before, folder)
        assert orphan.name not in {p.name for p in folder.iterdir()}
        run_job(app, job("jobs_cleanup"), utcnow() + dt.timedelta(days=2))
        submitted(s, before, folder)  # a file a row refers to is never swept, however old
    finally:
        if locker is not None:
            locker.close()
        server.stop()


# --- 4. the scheduler SIGKILLed mid-scan ----------------------------------------------------------------


def start_scheduler(app, database_url: str, log: Path, **environ: str) -> subprocess.Popen:
    """The real scheduler process (leader lock, APScheduler, the daily job) scanning SCAN_DAY at once."""
    env = {**os.environ, "DATABASE_URL": database_url, "TRACKER_INSTANCE": str(app.instance_path),
           "SECRET_KEY": "test-secret", "MAIL_SERVER": "", **environ}
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.fault_hooks", "scheduler", SCAN_DAY.isoformat(),
                                 SCAN_NOW.isoformat()], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def scan_finished(s) -> bool:
    s.expire_all()
    run = s.get(ScanRun, SCAN_DAY)
    s.rollback()
    return run is not None and run.finished_at is not None


@pytest.mark.slow
def test_the_scheduler_killed_mid_scan_leaves_nothing_and_the_next_one_scans_once(app, s, world, database_url,
                                                                                   tmp_path):
    overdue_tasks(world, s)
    expected = escalation.scan(s, SCAN_DAY, SCAN_NOW, dry_run=True)
    s.rollback()
    expected_records = sum(expected.levels.values()) + expected.implied + expected.reminders
    mails_before = s.scalar(select(func.max(OutboxMail.id))) or 0
    unit_xx = world.user("unit_xx").id
    s.rollback()
    engine = app.extensions["tracker.engine"]
    postgres = is_postgres(app)
    marker, log = tmp_path / "paused", tmp_path / "scheduler.log"
    # PostgreSQL: we hold 湘乡市人民政府's user, so the scan stops at the first message for the 湘乡市 tasks, with the
    # three 雨湖区 tasks recorded and told. SQLite: the scheduler pauses itself before its 4th record.
    locker = lock_row(engine, "user_account", unit_xx) if postgres else None
    fault = {} if postgres else {"FAULT_PAUSE_AT": "INSERT INTO escalation_record", "FAULT_OCCURRENCE": "4",
                                 "FAULT_MARKER": str(marker)}
    first = start_scheduler(app, database_url, log, **fault)
    second = None
    try:
        paused = (lambda: waiting_writer(engine)) if postgres else marker.exists
        assert pgcluster.wait_until(paused, timeout=60), log.read_text()
        first.kill()  # SIGKILL: no handler runs, the leader lock is not released by the process
        assert first.wait(10) == -signal.SIGKILL
        if locker is not None:
            locker.close()
            locker = None
            assert pgcluster.wait_until(lambda: sessions_in_transaction(engine) == 0, timeout=30)

        # Nothing of the killed scan is left, and its leader lock died with it.
        assert_nothing_scanned(scan_outcome(s, mails_before))
        assert pgcluster.wait_until(lambda: not scheduler.is_running(app), timeout=30)

        second = start_scheduler(app, database_url, log)  # the next scheduler takes the lock and scans
        assert pgcluster.wait_until(lambda: scan_finished(s), timeout=60), log.read_text()
        second.terminate()
        assert second.wait(20) == 0, log.read_text()
        assert_scanned_once(scan_outcome(s, mails_before), expected_records, runs=1)
        assert "已取得调度锁" in log.read_text() and "本进程待命" not in log.read_text()
    finally:
        if locker is not None:
            locker.close()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


# --- 5. the disk full while an upload is saved ------------------------------------------------------------

ONE_MB = 1024 * 1024


@pytest.fixture
def small_disk(app, tmp_path):
    """A 1 MB tmpfs as the upload folder (and the jobs folder): a disk that fills up."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); "
                    "test_a_file_size_limit_on_the_server_refuses_the_upload_cleanly covers a full disk without it")
    app.config.update(UPLOAD_FOLDER=folder, JOBS_FOLDER=folder)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def post_submit(client, task_id: int, fields: dict, files: list[tuple[bytes, str]]):
    data = {**fields, "submit-text": "涓水直排口已完成截污纳管，申请销号", "submit-evidence_kind": "after",
            "submit-files": [(io.BytesIO(content), name) for content, name in files]}
    return client.post(f"/tasks/{task_id}/act/submit", data=data, content_type="multipart/form-data")


def test_the_disk_full_while_saving_an_upload_refuses_it_cleanly_and_keeps_nothing(app, s, world, client,
                                                                                   small_disk):
    task = world.advance(world.assigned(title="涓水直排口污水直排", deadline=LATER), "rectifying")
    s.commit()
    before = Before.of(s, task)
    login(client, "unit_yh")
    fields = detail_form(client, before.id, "submit")
    big = b"\xff\xd8\xff\xe0" + os.urandom(2 * ONE_MB)  # does not fit
    small = b"\xff\xd8\xff\xe0" + os.urandom(300 * 1024)  # fits, and is stored first

    answer = post_submit(client, before.id, fields, [(small, "整改后全景.jpg"), (big, "整改后航拍.jpg")])

    page = answer.get_data(as_text=True)
    assert answer.status_code == 507
    assert "服务器存储空间不足，文件未能保存，本次提交未生效" in page
    assert "涓水直排口已完成截污纳管，申请销号" in page  # the form is shown again with what was typed
    assert os.listdir(small_disk) == []  # neither the partial file nor the one stored before it
    untouched(s, before, small_disk)  # no evidence row (none pointing at a missing file), no event, no message

    # In English too.
    client.post("/locale", data={"locale": "en", "csrf_token": csrf_token(page)})
    english = post_submit(client, before.id, fields, [(big, "整改后航拍.jpg")])
    assert english.status_code == 507 and "storage is full" in english.get_data(as_text=True)
    client.post("/locale", data={"locale": "zh_Hans_CN", "csrf_token": csrf_token(english.get_data(as_text=True))})

    # With a file that fits, the same form goes through.
    ok = post_submit(client, before.id, fields, [(PHOTO, "整改后现场照片.jpg")])
    assert ok.status_code == 302, ok.get_data(as_text=True)
    submitted(s, before, small_disk)


def test_the_disk_full_under_an_api_upload_answers_507_and_keeps_nothing(app, s, world, client, small_disk):
    task = world.advance(world.assigned(title="涓水直排口污水直排", deadline=LATER), "rectifying")
    s.commit()
    api = api_for(client, s, world, "unit_yh")
    before = Before.of(s, task)
    big = b"\xff\xd8\xff\xe0" + os.urandom(2 * ONE_MB)
    answer = api.act(before.id, "submit", text="涓水直排口已完成截污纳管，申请销号", evidence_kind="after",
                     files=[("整改后全景.jpg", PHOTO), ("整改后航拍.jpg", big)])
    assert "服务器存储空间不足" in problem(answer, 507, "INSUFFICIENT_STORAGE")["detail"]
    untouched(s, before, small_disk)
    answer = api.act(before.id, "submit", text="涓水直排口已完成截污纳管，申请销号", evidence_kind="after",
                     files=[("整改后现场照片.jpg", PHOTO)])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    submitted(s, before, small_disk)


def test_the_disk_full_while_saving_an_import_queues_no_job(app, s, world, client, small_disk):
    login(client, "sup_xt")
    token = csrf_token(client.get("/import").get_data(as_text=True))
    workbook = b"PK\x03\x04" + os.urandom(2 * ONE_MB)
    answer = client.post("/import", data={"csrf_token": token, "file": (io.BytesIO(workbook), "湘潭市整改台账.xlsx")},
                         content_type="multipart/form-data")
    assert answer.status_code == 507 and "服务器存储空间不足" in answer.get_data(as_text=True)
    assert os.listdir(small_disk) == []
    assert s.scalar(select(func.count()).select_from(BackgroundJob)) == 0


@pytest.mark.slow
def test_a_file_size_limit_on_the_server_refuses_the_upload_cleanly(app, s, world, database_url, tmp_path):
    """The disk full for the whole server process: gunicorn under RLIMIT_FSIZE (the way to fill a disk where no
    tmpfs can be mounted). The request body is spooled to a temporary file first, and that write fails: 507 with
    the reason in Chinese, nothing stored, nothing written; a smaller upload then goes through."""
    task = world.advance(world.assigned(title="涓水直排口污水直排", deadline=LATER), "rectifying")
    s.commit()
    before = Before.of(s, task)
    s.rollback()
    folder = Path(app.config["UPLOAD_FOLDER"])
    database = make_url(database_url)
    database_size = Path(database.database).stat().st_size if database.get_backend_name() == "sqlite" else 0
    limit = max(16 * ONE_MB, 4 * database_size)  # the SQLite file (and its journal) must still be writable
    server = Server(app, database_url, tmp_path, file_size_limit=limit, MAX_UPLOAD_MB=str(2 * limit // ONE_MB))
    try:
        http = http_login(server.base, "unit_yh")
        fields = http_form(http, server.base, before.id)
        big = b"\xff\xd8\xff\xe0" + os.urandom(limit + ONE_MB)
        answer = http.post(f"{server.base}/tasks/{before.id}/act/submit", data=fields, allow_redirects=False,
                           timeout=60, files={"submit-files": ("整改后航拍.jpg", big, "image/jpeg")})
        assert answer.status_code == 507, answer.text
        assert "服务器存储空间不足，文件未能保存，本次提交未生效" in answer.text and "Traceback" not in answer.text
        assert "磁盘空间不足：POST" in server.log.read_text()  # and the operator is told
        untouched(s, before, folder)
        assert http_submit(http, server.base, before.id, fields).status_code == 302
        submitted(s, before, folder)
    finally:
        server.stop()
