"""The scheduler process (DESIGN §8): the whole schedule in one list, and the lock that keeps it single.

Jobs are thin boundaries like the CLI: each opens its own app context and session, calls the domain
code with ``now`` from the clock, and owns the commit. Every job is idempotent (STYLE habit 4), so a
run caught up after downtime, or repeated after a crash, leaves the world the same.

Exactly one scheduler runs per database. The one that runs holds the leader lock — a session-level
advisory lock on PostgreSQL, a file lock in the instance folder with SQLite; a second scheduler
started by mistake stands by, retries the lock every 30 seconds and takes over when the first dies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tracker import archive, calendars, db, escalation, jobs, outbox, periods, securitylog, settings, storage, tally
from tracker.models import Evidence
from tracker.timeutil import SHANGHAI, local_date, utcnow
from tracker.workdays import WorkCalendar

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0  # a standby scheduler tries the lock this often
CHECK_SECONDS = 30.0  # the leader makes sure it still holds the lock this often
LOCK_FILE = "scheduler.lock"  # in the instance folder (SQLite)
# Any fixed 64-bit number: names "the 整改台账 scheduler" among the advisory locks of the database.
ADVISORY_LOCK_KEY = 7_421_202_608_300_001
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


@dataclass(frozen=True)
class JobSpec:
    """One line of the schedule."""

    name: str
    description: str  # 中文，给运维人员看
    when: str  # the trigger in words
    trigger: BaseTrigger
    func: Callable[[Flask, dt.datetime], None]
    misfire_grace_time: int  # seconds late a missed run may still start; missed runs coalesce into one
    workdays_only: bool = False  # skip days that are not 工作日 in the calendar table (调休 included)
    # A stricter rule for the days it runs (e.g. the first working day of a month); implies workdays_only.
    day_rule: Callable[[WorkCalendar, dt.date], bool] | None = None
    max_instances: int = 1  # runs of this job allowed at once (a tick may start while a long one runs)


def spec_runs_on(spec: JobSpec, calendar: WorkCalendar, day: dt.date) -> bool:
    if spec.day_rule is not None:
        return spec.day_rule(calendar, day)
    return not spec.workdays_only or runs_on(calendar, day)


# --- the jobs ------------------------------------------------------------------------------------


def runs_on(calendar: WorkCalendar, day: dt.date) -> bool:
    """Does a working-days-only job run on ``day``? Yes on 工作日, 调休上班日 included; no on holidays."""
    return calendar.is_workday(day)


def run_daily(app: Flask, today: dt.date, now: dt.datetime | None = None) -> None:
    """The working day's run: the escalation scan (督办扫描), which also refreshes the 序时进度 kept on
    the tasks it looks at.

    Never the refresh before the scan: both take the tasks whose ``next_check_on`` has come, and the
    refresh moves it past today — the scan would then find nothing to escalate. For the same reason
    a failed scan is rolled back whole, refresh included, so the next run still sees those tasks.
    """
    now = now or utcnow()
    with app.app_context():
        s = db.session()
        with _transaction(s):
            log.info("督办扫描完成：%s", escalation.scan(s, today, now).describe())


def daily_scan(app: Flask, now: dt.datetime) -> None:
    run_daily(app, local_date(now), now)


def monthly_ledger(app: Flask, now: dt.datetime) -> None:
    """Archive last month's ledger for every region with a supervisor or viewer, and mail it."""
    with app.app_context():
        s = db.session()
        with _transaction(s):
            run = archive.archive_month(s, archive.previous_month(local_date(now)), now,
                                        Path(app.config["LEDGER_FOLDER"]), settings.time_settings(s),
                                        base_url=app.config["BASE_URL"])
    log.info("%s", run.describe())


def mail_flush(app: Flask, now: dt.datetime) -> None:
    """Deliver what is due in the outbox (retries with backoff are the outbox's business)."""
    with app.app_context():
        s = db.session()
        with _transaction(s):
            result = outbox.deliver_due(s, now, app.config)
    if result:
        log.info("邮件投递：%s", result)


def background_jobs(app: Flask, now: dt.datetime) -> None:
    """Run the queued background jobs (后台任务: ledger exports, imports) until none is left. Runs may
    overlap (``max_instances``): each claims its own job, so a long export does not hold up a small one."""
    summary = jobs.run_pending(app)
    if summary.count or summary.recovered:
        log.info("%s", summary.describe())


def jobs_cleanup(app: Flask, now: dt.datetime) -> None:
    """Delete the background jobs' files older than JOBS_KEEP_DAYS, and uploaded files no evidence row refers
    to (left by a process killed between storing an upload and committing) once a day old."""
    with app.app_context():
        s = db.session()
        with _transaction(s):
            removed = jobs.cleanup(s, now, Path(app.config["JOBS_FOLDER"]), app.config["JOBS_KEEP_DAYS"])
        swept = storage.sweep(Path(app.config["UPLOAD_FOLDER"]), now, functools.partial(_evidence_names, s))
        s.rollback()
    if removed:
        log.info("已删除%d个过期的后台任务文件", removed)
    if swept:
        log.info("已删除%d个没有记录引用的上传文件", swept)


def _evidence_names(s: Session, names: list[str]) -> set[str]:
    return set(s.scalars(select(Evidence.stored_name).where(Evidence.stored_name.in_(names))))


def security_log_cleanup(app: Flask, now: dt.datetime) -> None:
    """Delete security-log entries older than SECURITY_LOG_KEEP_DAYS (never fewer than six months)."""
    with app.app_context():
        s = db.session()
        with _transaction(s):
            removed = securitylog.cleanup(s, now, app.config["SECURITY_LOG_KEEP_DAYS"])
    if removed:
        log.info("已删除%d条超过保留期的安全日志", removed)


def tally_fold(app: Flask, now: dt.datetime) -> None:
    """Merge the rows the tallies' triggers appended into one per key (today's figures stay exact either way)."""
    with app.app_context():
        s = db.session()
        with _transaction(s):
            merged = tally.fold(s)
    if merged:
        log.info("统计计数：合并%d行", merged)


def period_catch_up(app: Flask, now: dt.datetime) -> None:
    """Compute the spans of 序时进度 of the tasks changed since the last run (past-date reports replay
    them until then), a bounded number per run so that a mass change (new settings, a restore) cannot
    hold one transaction for long."""
    with app.app_context():
        s = db.session()
        with _transaction(s):
            done = periods.catch_up(s, settings.time_settings(s), limit=PERIOD_CATCH_UP_LIMIT)
    if done:
        log.info("序时进度时段：补算%d项任务", done)


PERIOD_CATCH_UP_LIMIT = 20_000

JOBS: list[JobSpec] = [
    JobSpec("daily_scan", "刷新序时进度，执行督办扫描（预警，提出函告等督办建议并通知）",
            "每个工作日 08:30（北京时间；按工作日历，含调休上班日）",
            CronTrigger(hour=8, minute=30, timezone=SHANGHAI), daily_scan,
            misfire_grace_time=3600, workdays_only=True),
    JobSpec("monthly_ledger", "归档上月整改销号台账并发送给各地区督办和查阅人员",
            "每月第一个工作日 07:30（北京时间）", CronTrigger(hour=7, minute=30, timezone=SHANGHAI), monthly_ledger,
            misfire_grace_time=6 * 3600, workdays_only=True, day_rule=archive.is_first_workday_of_month),
    JobSpec("mail_flush", "投递发件箱中到期的邮件", "每分钟",
            CronTrigger(minute="*", timezone=SHANGHAI), mail_flush, misfire_grace_time=60),
    JobSpec("background_jobs", "运行排队的后台任务（台账导出、台账导入）", "每5秒",
            CronTrigger(second="*/5", timezone=SHANGHAI), background_jobs, misfire_grace_time=5, max_instances=2),
    JobSpec("jobs_cleanup", "删除超过保留天数的后台任务文件，以及没有记录引用的上传文件", "每天 03:00（北京时间）",
            CronTrigger(hour=3, minute=0, timezone=SHANGHAI), jobs_cleanup, misfire_grace_time=6 * 3600),
    JobSpec("security_log_cleanup", "删除超过保留天数（至少六个月）的安全日志", "每天 03:10（北京时间）",
            CronTrigger(hour=3, minute=10, timezone=SHANGHAI), security_log_cleanup, misfire_grace_time=6 * 3600),
    JobSpec("tally_fold", "合并总览和当日报表所用统计计数的增量行", "每10分钟",
            CronTrigger(minute="*/10", timezone=SHANGHAI), tally_fold, misfire_grace_time=600),
    JobSpec("period_catch_up", "补算有变动任务的序时进度时段（历史日期报表所用）", "每2分钟",
            CronTrigger(minute="*/2", timezone=SHANGHAI), period_catch_up, misfire_grace_time=120),
]


@contextlib.contextmanager
def _transaction(s: Session) -> Iterator[None]:
    try:
        yield
        s.commit()
    except BaseException:
        s.rollback()
        raise


def run_job(app: Flask, spec: JobSpec, now: dt.datetime | None = None) -> bool:
    """Run one job now as the scheduler does; False when today is not one of its days."""
    now = now or utcnow()
    if (spec.workdays_only or spec.day_rule) and not _is_run_day(app, spec, local_date(now)):
        log.info("%s：%s不是运行日，不运行", spec.name, local_date(now).isoformat())
        return False
    started = time.monotonic()
    spec.func(app, now)
    log.debug("%s 完成，用时%.1f秒", spec.name, time.monotonic() - started)
    return True


def _is_run_day(app: Flask, spec: JobSpec, day: dt.date) -> bool:
    with app.app_context():
        return spec_runs_on(spec, calendars.load(db.session()), day)


def _scheduled(app: Flask, spec: JobSpec) -> None:
    """What APScheduler calls: a failure is logged and the schedule goes on."""
    try:
        run_job(app, spec)
    except Exception:
        log.exception("定时任务 %s 失败", spec.name)


def job(name: str) -> JobSpec:
    return next(spec for spec in JOBS if spec.name == name)


def next_run(spec: JobSpec, calendar: WorkCalendar, now: dt.datetime, horizon: int = 366) -> dt.datetime | None:
    """When ``spec`` will next really run after ``now`` (days it skips are skipped), in Beijing time."""
    fire = spec.trigger.get_next_fire_time(None, now)
    for _ in range(horizon):
        if fire is None or spec_runs_on(spec, calendar, fire.date()):
            return fire
        fire = spec.trigger.get_next_fire_time(None, fire + dt.timedelta(seconds=1))
    return None


def missed_run(spec: JobSpec, now: dt.datetime) -> dt.datetime | None:
    """The latest fire time within the grace period before ``now``: run at start, so a run missed
    while no scheduler was running (a restart, a takeover) is caught up once."""
    earliest = now - dt.timedelta(seconds=spec.misfire_grace_time)
    fire, latest = spec.trigger.get_next_fire_time(None, earliest), None
    while fire is not None and fire <= now:
        latest, fire = fire, spec.trigger.get_next_fire_time(None, fire + dt.timedelta(seconds=1))
    return latest


def build_scheduler(app: Flask, jobs: Sequence[JobSpec] | None = None, now: dt.datetime | None = None
                    ) -> BackgroundScheduler:
    """An APScheduler scheduler (not started) with every job of the schedule."""
    now = now or utcnow()
    scheduler = BackgroundScheduler(timezone=SHANGHAI, job_defaults=dict(JOB_DEFAULTS))
    for spec in JOBS if jobs is None else jobs:
        first = missed_run(spec, now) or spec.trigger.get_next_fire_time(None, now)
        scheduler.add_job(functools.partial(_scheduled, app, spec), spec.trigger, id=spec.name,
                          name=spec.description, misfire_grace_time=spec.misfire_grace_time, next_run_time=first,
                          max_instances=spec.max_instances)
    return scheduler


# --- the leader lock -----------------------------------------------------------------------------


class LeaderLock(Protocol):
    def acquire(self) -> bool: ...  # non-blocking; True when this process holds the lock

    def is_held(self) -> bool: ...

    def release(self) -> None: ...


class FileLock:
    """An exclusive non-blocking ``flock`` (SQLite): the OS releases it when the process ends."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="ascii")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")  # for operators: which process runs the schedule
        handle.flush()
        self._file = handle
        return True

    def is_held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class AdvisoryLock:
    """``pg_try_advisory_lock`` on a connection of its own, kept open while the lock is held:
    PostgreSQL releases a session-level advisory lock when the session ends, whatever ends it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            held = conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        except BaseException:
            conn.close()
            raise
        if not held:
            conn.close()
            return False
        self._conn = conn
        return True

    def is_held(self) -> bool:
        """True while the lock's session is alive (the query also keeps it from idling out)."""
        if self._conn is None:
            return False
        try:
            self._conn.scalar(text("SELECT 1"))
        except SQLAlchemyError:
            log.exception("调度锁所在的数据库连接已断开")
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        except SQLAlchemyError:
            pass  # the session is gone, and the lock with it
        finally:
            conn.close()


def leader_lock(app: Flask) -> LeaderLock:
    """The lock (not yet acquired) that makes this app's scheduler the only one."""
    engine = app.extensions["tracker.engine"]
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return FileLock(Path(app.instance_path) / LOCK_FILE)


def acquire_leader_lock(app: Flask) -> LeaderLock | None:
    """The leader lock, held, or None when another scheduler holds it."""
    lock = leader_lock(app)
    return lock if lock.acquire() else None


def is_running(app: Flask) -> bool:
    """Does some scheduler hold the lock right now? (Takes and returns it when free.)"""
    lock = acquire_leader_lock(app)
    if lock is None:
        return True
    lock.release()
    return False


# --- the process ---------------------------------------------------------------------------------


class Runner:
    """Stand by until the leader lock is ours, then run the schedule; step down if the lock is lost."""

    def __init__(self, app: Flask, jobs: Sequence[JobSpec] | None = None, retry_seconds: float = RETRY_SECONDS,
                 check_seconds: float = CHECK_SECONDS):
        self.app = app
        self.jobs = list(JOBS if jobs is None else jobs)
        self.lock = leader_lock(app)
        self.retry_seconds, self.check_seconds = retry_seconds, check_seconds
        self.stopping = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self.thread: threading.Thread | None = None
        self._announced = False

    @property
    def leading(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    def run_forever(self) -> None:
        """Until ``stop()`` (or KeyboardInterrupt in the main thread)."""
        try:
            while not self.stopping.is_set():
                held = self._try_lock()
                if held:
                    self._lead()
                else:
                    self._stand_by(announce=held is False)
        finally:
            self._step_down()

    def start(self) -> Runner:
        self.thread = threading.Thread(target=self.run_forever, name="tracker-scheduler", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _try_lock(self) -> bool | None:
        """True: ours. False: another scheduler has it. None: could not ask (database unreachable)."""
        try:
            return self.lock.acquire()
        except (SQLAlchemyError, OSError):
            log.exception("无法取得调度锁，%d秒后重试", self.retry_seconds)
            return None

    def _stand_by(self, announce: bool) -> None:
        if announce and not self._announced:
            log.warning("另一个调度进程正在运行，本进程待命")
            self._announced = True
        self.stopping.wait(self.retry_seconds)

    def _lead(self) -> None:
        self._announced = False
        log.info("已取得调度锁，开始运行%d个定时任务：%s", len(self.jobs), "、".join(j.name for j in self.jobs))
        self.scheduler = build_scheduler(self.app, self.jobs)
        self.scheduler.start()
        while not self.stopping.wait(self.check_seconds):
            if not self.lock.is_held():
                log.error("调度锁已丢失，停止定时任务，重新待命")
                break
        self._step_down()

    def _step_down(self) -> None:
        """Stop the jobs (letting a running one finish), then give the lock back — in that order."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)
        self.lock.release()


def run(app: Flask, *, block: bool = True, jobs: Sequence[JobSpec] | None = None) -> Runner:
    """Run the scheduler: the jobs while this process holds the leader lock, standby otherwise.

    ``block=True`` (the ``tracker scheduler run`` process) runs in this thread until Ctrl-C or
    SIGTERM; ``block=False`` runs in a background thread and returns the runner (``.stop()`` it).
    """
    runner = Runner(app, jobs)
    if not block:
        return runner.start()
    with _sigterm_interrupts():
        try:
            runner.run_forever()
        except KeyboardInterrupt:
            log.info("收到停止信号，调度进程退出")
    return runner


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the process as Ctrl-C does: the jobs wind down and the lock is released."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
