"""The scheduler: the schedule, working days only for the daily scan, missed runs caught up once,
one scheduler per database (the second stands by and takes over), and ``make run``'s launcher."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update

from config import TestConfig
from tracker import calendars, create_app, launcher, scheduler, settings
from tracker.models import EscalationRecord, Setting, Task
from tracker.scheduler import JobSpec, job, next_run, run_daily, run_job, runs_on
from tracker.timeutil import SHANGHAI

ROOT = Path(__file__).resolve().parent.parent


def shanghai(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


def wait_until(predicate, timeout=5.0, step=0.02) -> bool:
    """Poll briefly (never one long sleep) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def second_app(app, database_url):
    """Another app on the same database and instance folder: a scheduler started by mistake."""
    other = create_app(TestConfig(database_url, app.instance_path))
    yield other
    other.extensions["tracker.engine"].dispose()


class Described(str):
    def describe(self) -> str:
        return str(self)


# --- which days, which times ---------------------------------------------------------------------


@pytest.mark.parametrize("day, expected", [
    (dt.date(2026, 9, 20), True),  # a Sunday worked for 国庆节 (调休上班)
    (dt.date(2026, 10, 10), True),  # a Saturday worked for 国庆节
    *[(dt.date(2026, 10, d), False) for d in range(1, 8)],  # 国庆节
    (dt.date(2026, 9, 12), False),  # an ordinary Saturday
    (dt.date(2026, 9, 21), True),  # an ordinary Monday
])
def test_the_daily_scan_runs_on_working_days_by_the_calendar_table(s, day, expected):
    assert runs_on(calendars.load(s), day) is expected


def test_the_schedule_is_one_list_with_the_daily_scan_and_the_mail_flush(s):
    assert [spec.name for spec in scheduler.JOBS] == ["daily_scan", "monthly_ledger", "mail_flush", "background_jobs",
                                                      "jobs_cleanup", "security_log_cleanup", "tally_fold",
                                                      "period_catch_up"]
    daily, flush = job("daily_scan"), job("mail_flush")
    assert daily.workdays_only and not flush.workdays_only
    assert all(spec.description and spec.when for spec in scheduler.JOBS)
    fire = daily.trigger.get_next_fire_time(None, shanghai(2026, 9, 19, 9, 0))
    assert fire == shanghai(2026, 9, 20, 8, 30) and runs_on(calendars.load(s), fire.date())
    assert flush.trigger.get_next_fire_time(None, shanghai(2026, 9, 19, 9, 0, 10)) == shanghai(2026, 9, 19, 9, 1)


def test_the_next_run_skips_the_national_day_holiday_but_not_the_make_up_saturday(s):
    cal, daily = calendars.load(s), job("daily_scan")
    assert next_run(daily, cal, shanghai(2026, 9, 30, 9, 0)) == shanghai(2026, 10, 8, 8, 30)
    assert next_run(daily, cal, shanghai(2026, 10, 9, 9, 0)) == shanghai(2026, 10, 10, 8, 30)
    assert next_run(job("mail_flush"), cal, shanghai(2026, 10, 3, 12, 0, 1)) == shanghai(2026, 10, 3, 12, 1)


def test_the_monthly_ledger_runs_on_the_first_working_day_of_each_month(s):
    cal, monthly = calendars.load(s), job("monthly_ledger")
    assert next_run(monthly, cal, shanghai(2025, 12, 15, 9, 0)) == shanghai(2026, 1, 4, 7, 30)  # a Sunday worked
    assert next_run(monthly, cal, shanghai(2026, 4, 30, 9, 0)) == shanghai(2026, 5, 6, 7, 30)
    assert next_run(monthly, cal, shanghai(2026, 9, 30, 9, 0)) == shanghai(2026, 10, 8, 7, 30)


def started_paused(app, now):
    sched = scheduler.build_scheduler(app, now=now)
    sched.start(paused=True)
    jobs = {j.id: j for j in sched.get_jobs()}
    sched.shutdown(wait=False)
    return jobs


def test_missed_runs_are_caught_up_once_and_never_overlap(app):
    jobs = started_paused(app, shanghai(2026, 9, 20, 9, 0, 30))  # started half an hour after 08:30
    daily, flush = jobs["daily_scan"], jobs["mail_flush"]
    assert (daily.coalesce, daily.max_instances, daily.misfire_grace_time) == (True, 1, 3600)
    assert (flush.coalesce, flush.max_instances, flush.misfire_grace_time) == (True, 1, 60)
    assert daily.next_run_time == shanghai(2026, 9, 20, 8, 30)  # missed within the grace: run at once
    assert flush.next_run_time == shanghai(2026, 9, 20, 9, 0)
    later = started_paused(app, shanghai(2026, 9, 20, 10, 0, 30))  # more than an hour late: tomorrow
    assert later["daily_scan"].next_run_time == shanghai(2026, 9, 21, 8, 30)


# --- the jobs ------------------------------------------------------------------------------------


def overdue_task(world, s, deadline):
    task = world.advance(world.assigned(deadline=deadline), "rectifying")
    s.commit()
    assert task.overdue is False
    return task


def test_the_daily_run_refreshes_and_commits_without_bumping_versions(app, world, s):
    task = overdue_task(world, s, dt.date(2026, 3, 31))
    run_daily(app, dt.date(2026, 4, 30))
    s.expire_all()
    refreshed = s.get(Task, task.id)  # read in a new transaction: the job committed
    assert refreshed.overdue is True and refreshed.schedule == "behind"
    assert refreshed.version == task.version  # a new day is not an edit


def test_the_scan_gets_the_tasks_still_due_and_its_writes_are_committed(app, world, s, monkeypatch):
    task = overdue_task(world, s, dt.date(2026, 3, 31))
    today, now = dt.date(2026, 4, 30), shanghai(2026, 4, 30, 8, 30).astimezone(dt.UTC)
    seen = []

    def scan(session, day, at):
        # a refresh before the scan would have moved next_check_on past today: nothing left to scan
        seen.append((day, at, session.scalar(select(Task.next_check_on).where(Task.id == task.id))))
        session.execute(update(Task).where(Task.id == task.id).values(overdue=True, next_check_on=None))
        return Described("扫描1项任务")

    monkeypatch.setattr(scheduler.escalation, "scan", scan)
    run_daily(app, today, now)
    assert seen[0][:2] == (today, now) and seen[0][2] <= today
    s.expire_all()
    assert s.get(Task, task.id).overdue is True


def test_a_failing_scan_is_rolled_back_whole_so_the_next_run_sees_the_same_tasks(app, world, s, monkeypatch):
    task = overdue_task(world, s, dt.date(2026, 3, 31))
    due_on = task.next_check_on

    def broken_scan(session, day, at):
        session.execute(update(Task).values(title="扫描改写的标题", next_check_on=None))
        raise RuntimeError("scan failed half way")

    monkeypatch.setattr(scheduler.escalation, "scan", broken_scan)
    with pytest.raises(RuntimeError):
        run_daily(app, dt.date(2026, 4, 30))
    s.expire_all()
    again = s.get(Task, task.id)
    assert (again.title, again.next_check_on, again.overdue) == (task.title, due_on, False)


def test_the_daily_run_with_the_real_scan_proposes_the_first_escalation(app, world, s):
    task = overdue_task(world, s, dt.date(2026, 3, 31))
    run_daily(app, dt.date(2026, 4, 2), shanghai(2026, 4, 2, 8, 30).astimezone(dt.UTC))
    s.expire_all()
    assert s.get(Task, task.id).overdue is True
    levels = s.scalars(select(EscalationRecord.level).where(EscalationRecord.task_id == task.id)).all()
    assert 2 in levels  # 函告: overdue by one working day


def test_the_daily_job_does_nothing_on_a_holiday_and_runs_on_a_make_up_saturday(app, world, s):
    task = overdue_task(world, s, dt.date(2026, 9, 30))
    assert run_job(app, job("daily_scan"), shanghai(2026, 10, 3, 8, 30).astimezone(dt.UTC)) is False
    s.expire_all()
    assert s.get(Task, task.id).overdue is False
    assert run_job(app, job("daily_scan"), shanghai(2026, 10, 10, 8, 30).astimezone(dt.UTC)) is True
    s.expire_all()
    assert s.get(Task, task.id).overdue is True


def test_mail_flush_hands_the_outbox_its_session_now_and_config_and_commits(app, s, monkeypatch):
    calls = []

    def deliver_due(session, now, config):
        calls.append((now, config))
        session.add(Setting(key="schedule_tolerance", value={"points": 7}))
        return 1

    monkeypatch.setattr(scheduler.outbox, "deliver_due", deliver_due)
    now = shanghai(2026, 3, 2, 9, 1).astimezone(dt.UTC)
    assert run_job(app, job("mail_flush"), now) is True
    assert calls == [(now, app.config)] and settings.time_settings(s).tolerance == 7


# --- one scheduler per database ------------------------------------------------------------------


def test_a_second_scheduler_cannot_take_the_lock_until_the_first_releases_it(app, second_app):
    first = scheduler.acquire_leader_lock(app)
    assert first is not None and first.is_held()
    expected = scheduler.AdvisoryLock if app.extensions["tracker.engine"].dialect.name == "postgresql" \
        else scheduler.FileLock
    assert isinstance(first, expected)
    assert scheduler.acquire_leader_lock(second_app) is None
    assert scheduler.is_running(second_app) is True
    first.release()
    second = scheduler.acquire_leader_lock(second_app)
    assert second is not None
    second.release()
    assert scheduler.is_running(app) is False


def test_the_file_lock_excludes_another_open_file_and_names_its_process(tmp_path):
    path = tmp_path / "instance" / "scheduler.lock"
    first, second = scheduler.FileLock(path), scheduler.FileLock(path)
    assert first.acquire() and not second.acquire()
    assert path.read_text().strip() == str(os.getpid())
    first.release()
    assert second.acquire()
    second.release()


def probe(ran: list, event: threading.Event) -> JobSpec:
    """A job firing every second (missed runs within a minute are caught up at start)."""
    def record(app, now):
        ran.append(app)
        event.set()
    return JobSpec("probe", "测试", "每秒", CronTrigger(second="*", timezone=SHANGHAI), record, misfire_grace_time=60)


def test_the_standby_scheduler_runs_nothing_and_takes_over_when_the_leader_stops(app, second_app, caplog):
    caplog.set_level(logging.INFO, logger="tracker.scheduler")
    ran, first_ran, second_ran = [], threading.Event(), threading.Event()
    leader = scheduler.Runner(app, [probe(ran, first_ran)], retry_seconds=0.05, check_seconds=0.05).start()
    standby = None
    try:
        assert wait_until(lambda: leader.leading) and first_ran.wait(2)
        standby = scheduler.Runner(second_app, [probe(ran, second_ran)], retry_seconds=0.05, check_seconds=0.05)
        standby.start()
        assert wait_until(lambda: "另一个调度进程正在运行，本进程待命" in caplog.text)
        assert not standby.leading and second_app not in ran
        leader.stop(timeout=5)
        assert not leader.thread.is_alive() and not leader.leading
        assert wait_until(lambda: standby.leading) and second_ran.wait(2)
    finally:
        leader.stop(timeout=5)
        if standby is not None:
            standby.stop(timeout=5)
    assert not standby.leading and scheduler.is_running(app) is False


def test_scheduler_jobs_lists_the_schedule_with_next_runs_and_whether_one_runs(app, second_app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["scheduler", "jobs"])
    assert result.exit_code == 0, result.output
    assert "daily_scan" in result.output and "mail_flush" in result.output and "下次运行 20" in result.output
    assert "调度进程：未运行" in result.output
    held = scheduler.acquire_leader_lock(second_app)
    try:
        assert "调度进程：正在运行" in runner.invoke(args=["scheduler", "jobs"]).output
    finally:
        held.release()


def test_a_scheduler_process_started_by_mistake_stands_by_and_stops_on_sigterm(app, database_url, tmp_path):
    held = scheduler.acquire_leader_lock(app)
    log_path = tmp_path / "scheduler.log"
    env = {**os.environ, "DATABASE_URL": database_url, "TRACKER_INSTANCE": app.instance_path}
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(launcher.default_commands("127.0.0.1", 0)["scheduler"], cwd=ROOT, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: "本进程待命" in log_path.read_text(encoding="utf-8"), timeout=15), \
            log_path.read_text(encoding="utf-8")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert "调度进程已停止" in log_path.read_text(encoding="utf-8")
    finally:
        if process.poll() is None:
            process.kill()
        held.release()


# --- make run's launcher -------------------------------------------------------------------------

CHILD = """
import os, signal, sys, time
folder, name = sys.argv[1], sys.argv[2]
def stop(signum, frame):
    open(os.path.join(folder, name + ".stopped"), "w").write(str(os.getpid()))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(folder, name + ".ready"), "w").write(str(os.getpid()))
time.sleep(30)
"""

EXIT_WHEN_READY = """
import os, sys, time
ready = os.path.join(sys.argv[1], "long.ready")
while not os.path.exists(ready):
    time.sleep(0.02)
sys.exit(3)
"""


def test_the_launcher_stops_the_other_process_when_one_exits(tmp_path):
    commands = {"long": [sys.executable, "-c", CHILD, str(tmp_path), "long"],
                "short": [sys.executable, "-c", EXIT_WHEN_READY, str(tmp_path)]}
    started = time.monotonic()
    assert launcher.supervise(commands, grace=5) == 3
    assert (tmp_path / "long.stopped").exists() and time.monotonic() - started < 5


def test_the_launcher_stops_both_processes_on_ctrl_c(tmp_path):
    commands = {name: [sys.executable, "-c", CHILD, str(tmp_path), name] for name in ("web", "scheduler")}
    script = "import json, sys; from tracker import launcher; sys.exit(launcher.main([], json.loads(sys.argv[1])))"
    process = subprocess.Popen([sys.executable, "-c", script, json.dumps(commands)], cwd=ROOT)
    try:
        assert wait_until(lambda: all((tmp_path / f"{n}.ready").exists() for n in commands), timeout=15)
        process.send_signal(signal.SIGINT)  # to the launcher alone: the children have process groups of their own
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
    for name in commands:
        pid = int((tmp_path / f"{name}.ready").read_text())
        assert (tmp_path / f"{name}.stopped").read_text() == str(pid)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_launcher_serves_the_app_with_gunicorn_and_runs_the_scheduler():
    commands = launcher.default_commands("127.0.0.1", 5123, workers=2)
    assert commands["web"][1:3] == ["-m", "gunicorn"] and "127.0.0.1:5123" in commands["web"]
    assert commands["web"][-1] == "tracker:create_app()"
    assert commands["scheduler"][-2:] == ["scheduler", "run"]
