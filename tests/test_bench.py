"""The benchmarks at a small scale, so that they never rot: the generator (COPY on PostgreSQL,
executemany on SQLite) and every benchmark of ``bench.run`` run against the test database. No timing
is asserted here (DESIGN §9: speed is measured in benchmarks, not timed tests); what is asserted is
that each figure is produced beside its floor, and that the generated ledger is one the app itself
would have made — its kept values are what ``schedule.compute`` gives, and today's report counted from
them equals the report replayed from the history."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select

from bench import run as bench_run
from bench.generate import generate
from tracker import reports, schedule, settings, tally
from tracker.models import EscalationRecord, Event, Milestone, ProgressReport, Region, Task, TaskTally, TaskUnit
from tracker.timeutil import local_date, utcnow

SCALE = 300


@pytest.fixture
def ledger(app):
    summary = generate(app.extensions["tracker.engine"], SCALE, seed=7, log=lambda _line: None)
    return summary


def test_the_generator_writes_a_ledger_in_every_state_with_its_history(s, ledger):
    assert ledger.tasks == SCALE == s.scalar(select(func.count()).select_from(Task))
    states = dict(s.execute(select(Task.state, func.count()).group_by(Task.state)).all())
    assert set(states) == {"pending", "assigned", "signed", "rectifying", "verifying", "closed", "cancelled"}
    assert states["closed"] > states["rectifying"] > states["verifying"]
    events = s.scalar(select(func.count()).select_from(Event))
    assert events == ledger.events and 7 * SCALE < events < 14 * SCALE  # about ten per task
    for table in (Milestone, ProgressReport, EscalationRecord, TaskUnit):
        assert s.scalar(select(func.count()).select_from(table)) > 0, table.__tablename__
    # Every task is registered first, and every open task that was handed out has its lead unit.
    first = s.scalars(select(Event.action).where(Event.id.in_(
        select(func.min(Event.id)).group_by(Event.task_id)))).all()
    assert set(first) == {"register"}
    leaderless = s.scalar(select(func.count()).select_from(Task).where(
        Task.assigned_on.is_not(None), ~Task.task_units.any(TaskUnit.role == "lead")))
    assert leaderless == 0


def test_the_same_seed_gives_the_same_ledger(app, s):
    engine = app.extensions["tracker.engine"]
    generate(engine, 40, seed=3, log=lambda _line: None)
    first = s.execute(select(Task.title, Task.state, Task.deadline).order_by(Task.id)).all()
    s.rollback()
    generate(engine, 40, seed=3, log=lambda _line: None)  # the same organisation is reused, not duplicated
    second = s.execute(select(Task.title, Task.state, Task.deadline).order_by(Task.id).offset(40)).all()
    assert first == second
    assert s.scalar(select(func.count()).select_from(Region).where(Region.name == "雨湖区")) == 1


def test_kept_values_are_what_the_app_computes(s, ledger):
    today = local_date(utcnow())
    ctx = schedule.load_context(s)
    tasks = s.scalars(select(Task).where(Task.next_check_on.is_(None) | (Task.next_check_on > today))).all()
    assert len(tasks) > SCALE // 2
    for task in tasks:
        values = schedule.compute(task, today, ctx)
        kept = {k: getattr(task, k) for k in ("schedule", "overdue", "not_reported", "next_check_on")}
        assert kept == {k: values[k] for k in kept}, task.code


def test_the_tallies_count_the_generated_ledger(s, ledger):
    """The generator loads with the database's triggers off (PostgreSQL) and recounts the tallies."""
    assert s.scalar(select(func.count()).select_from(TaskTally)) > 0
    assert tally.differences(s) == []


@pytest.mark.parametrize("by", ["channel-round", "region", "unit"])
def test_todays_report_from_kept_values_equals_the_replay(s, ledger, by):
    today = local_date(utcnow())
    province = s.scalar(select(Region).where(Region.level == 0))
    time = settings.time_settings(s)
    counted = reports.build(s, province, today, by, time, today=today)
    replayed = reports.build(s, province, today, by, time)
    assert [r.as_json() for r in counted.rows] == [r.as_json() for r in replayed.rows]
    assert counted.total.as_json() == replayed.total.as_json()
    assert counted.total.total > SCALE // 2


def test_every_benchmark_runs_and_prints_its_floor(database_url, ledger, tmp_path, capsys):
    out = tmp_path / "figures.json"
    bench_run.main(["--database-url", database_url, "--repeat", "2", "--wrk-seconds", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())["figures"]
    groups = {f["group"] for f in figures}
    assert {"pages", "reports", "scan", "export", "import"} <= groups
    if shutil.which("wrk"):
        assert "wrk" in groups
    else:
        assert "wrk 未安装" in printed
    for figure in figures:
        if figure["name"].startswith(("空路由", "今日首次扫描")):
            continue
        assert figure["floors"], figure["name"]
        if figure["group"] == "wrk":  # requests finished within a short run on a busy machine: maybe none
            assert figure["value"] is not None
            continue
        assert all(f["value"] > 0 for f in figure["floors"]), figure
        assert (figure["p50"] or figure["value"]) > 0, figure
    scans = [f for f in figures if f["group"] == "scan" and f["name"].startswith("扫描")]
    assert [f["name"] for f in scans][0] == "扫描：0项跨越阈值"
    assert len(scans) == 3
    assert "floor:" in printed and "p95" in printed
