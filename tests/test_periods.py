"""序时进度 over time (``progress.periods``) and the past-date report read from the kept spans
(``tracker.periods``): the spans must give, for every date, exactly what the replay of the events gives."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from tests.conftest import NOW
from tests.test_dashboard import EARLY, TODAY, ledger  # noqa: F401  (the 湘潭市 ledger fixture)
from tests.test_tally import triggers
from tracker import periods as kept
from tracker import reports, scheduler
from tracker import settings as settings_module
from tracker.models import Milestone, PeriodStale, Task, TaskPeriod
from tracker.operations import perform
from tracker.progress import (
    HistoryEvent,
    MilestoneFact,
    ReportingRule,
    classify,
    periods,
    replay,
    reporting_period,
)

D = dt.date
START = D(2024, 12, 20)

# The actions the replay knows, with the state each leads to and what its data may say.
ACTIONS = ["assign", "sign", "approve_plan", "report", "submit", "return", "close", "reopen",
           "decide_extension", "decline", "cancel", "import", "comment", "change_deadline"]
TO_STATE = {"assign": "assigned", "sign": "signed", "approve_plan": "rectifying", "submit": "verifying",
            "return": "rectifying", "close": "closed", "reopen": "rectifying", "decline": "pending",
            "cancel": "cancelled"}


def _date(offset: int | None):
    return None if offset is None else (START + dt.timedelta(days=offset)).isoformat()


@st.composite
def histories(draw):
    """A task's events (in replay order: by day, then as written) and its milestones."""
    count = draw(st.integers(0, 9))
    days = sorted(draw(st.lists(st.integers(0, 400), min_size=count, max_size=count)))
    events = []
    for day in days:
        action = draw(st.sampled_from(ACTIONS))
        data: dict = {}
        if action in ("assign", "reopen", "change_deadline", "import"):
            kind = draw(st.sampled_from(["date", "long_term", "date_and_long_term", "immediate"]))
            data["deadline_kind"] = kind
            data["deadline"] = None if kind == "long_term" else _date(draw(st.integers(0, 500)))
        if action == "report":
            data["percent"] = draw(st.one_of(st.none(), st.integers(0, 100)))
        if action == "decide_extension":
            data = {"approved": draw(st.booleans()), "new_deadline": _date(draw(st.integers(0, 600)))}
        if action == "import":
            state = draw(st.sampled_from(["rectifying", "verifying", "closed", "signed"]))
            data.update(assigned_on=_date(draw(st.integers(0, 300))), percent=draw(st.integers(0, 100)),
                        extended=draw(st.booleans()))
            events.append(HistoryEvent(action, START + dt.timedelta(days=day), state, data))
            continue
        events.append(HistoryEvent(action, START + dt.timedelta(days=day), TO_STATE.get(action), data))
    milestones = [MilestoneFact(START + dt.timedelta(days=draw(st.integers(0, 500))),
                                draw(st.one_of(st.none(), st.integers(0, 100))),
                                draw(st.one_of(st.none(), st.builds(lambda d: START + dt.timedelta(days=d),
                                                                    st.integers(0, 500)))))
                  for _ in range(draw(st.integers(0, 3)))]
    return events, milestones


def _at(spans, day):
    found = [(p.bucket, p.overdue, p.extended) for p in spans if p.start <= day and (p.end is None or day < p.end)]
    assert len(found) <= 1, f"spans overlap on {day}"
    return found[0] if found else None


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from([ReportingRule("month", 25), ReportingRule("quarter", 10),
                                     ReportingRule("month", 31)]), st.sampled_from([0, 10]))
def test_spans_give_the_replay_of_every_day(history, rule, tolerance):
    events, milestones = history
    spans = periods(events, milestones, rule, tolerance)
    for offset in range(-3, 760, 1):
        day = START + dt.timedelta(days=offset)
        snap = replay(events, day, milestones)
        expected = None
        if snap.counted:
            result = classify(snap, reporting_period(rule, day)[0], tolerance)
            expected = (result.bucket, result.overdue, snap.extended)
        assert _at(spans, day) == expected, (day, spans)


def test_spans_are_merged_and_the_last_is_open():
    events = [HistoryEvent("assign", D(2025, 1, 6), "assigned",
                           {"deadline": "2025-03-31", "deadline_kind": "date", "assigned_on": "2025-01-06"}),
              HistoryEvent("sign", D(2025, 1, 8), "signed", {}),
              HistoryEvent("comment", D(2025, 2, 1), None, {})]
    spans = periods(events, [], ReportingRule())
    assert [(p.start, p.end, p.bucket.value, p.overdue) for p in spans] == [
        (D(2025, 1, 6), D(2025, 4, 1), "on_schedule", False),
        (D(2025, 4, 1), None, "behind", True),  # 逾期 from the day after the deadline, for good
    ]
    assert periods([], [], ReportingRule()) == []


def test_a_long_term_task_turns_unreported_once_a_period_passes_without_a_report():
    events = [HistoryEvent("assign", D(2025, 1, 6), "assigned", {"deadline_kind": "long_term", "deadline": None}),
              HistoryEvent("approve_plan", D(2025, 1, 10), "rectifying", {})]
    spans = periods(events, [], ReportingRule("month", 25))
    # the plan's approval counts as the period's activity; the next period (26 Jan on) has none
    assert [(p.start, p.end, p.bucket.value) for p in spans] == [
        (D(2025, 1, 6), D(2025, 1, 26), "on_schedule"), (D(2025, 1, 26), None, "behind")]


# --- kept in the database ---------------------------------------------------------------------------


TRIGGERS = {"sqlite": {"period_event_insert", "period_milestone_insert", "period_milestone_update",
                       "period_milestone_delete"},
            "postgresql": {"period_event_insert", "period_milestone_change"}}
# Dates across the ledger's history: before anything, 交办 of the overdue tasks, around their deadlines
# (2026-01-15, 01-30), month ends, today and later.
DATES = [D(2025, 10, 1), EARLY.date(), D(2025, 11, 30), D(2026, 1, 15), D(2026, 1, 16), D(2026, 1, 31),
         D(2026, 2, 28), TODAY - dt.timedelta(days=1), TODAY, D(2026, 12, 31), D(2027, 6, 30)]


def stale(s) -> set[int]:
    return set(s.scalars(select(PeriodStale.task_id)))


def _rows(report):
    return [row.as_json() for row in [*report.rows, report.total]]


def assert_reports_equal_the_replay(s, region):
    """Every grouping at every date: from the spans (with whatever is stale) and with each cell's ids,
    equal to replaying every task."""
    time = settings_module.time_settings(s)
    for as_of in DATES:
        for by in reports.GROUPINGS:
            replayed = reports.Tally(s, region, as_of, by)
            reports.replayed(s, replayed, region, as_of, time)
            expected = _rows(replayed.report())
            assert _rows(reports.build(s, region, as_of, by, time)) == expected, (as_of, by)
            assert _rows(reports.build(s, region, as_of, by, time, ids=True)) == expected, (as_of, by)


def test_the_triggers_are_there_at_head(s):
    """A later migration that rebuilds ``event`` or ``milestone`` on SQLite would drop them silently."""
    assert TRIGGERS[s.get_bind().dialect.name] <= triggers(s)


def test_every_write_marks_the_task_and_a_catch_up_computes_it(s, world, ledger):  # noqa: F811
    every = set(s.scalars(select(Task.id)))
    assert stale(s) == every  # every task was written through the operations: all stale, none computed yet
    time = settings_module.time_settings(s)
    assert kept.catch_up(s, time) == len(every)
    assert stale(s) == set() and kept.differences(s, time) == []
    assert s.scalar(select(func.count()).select_from(TaskPeriod)) > 0
    # an operation writes events: its task only
    shuangma, pige = ledger["shuangma"], ledger["pige"]
    perform(s, shuangma, "report", world.m["unit_yh"], NOW, text="渗滤液处理站主体完工", percent=60)
    s.flush()
    assert stale(s) == {shuangma.id}
    # milestones changed by any writer: added, changed, removed
    kept.catch_up(s, time)
    s.add(Milestone(task_id=pige.id, due_on=D(2026, 2, 1), description="完成污水处理厂提标改造", planned_percent=80))
    s.flush()
    assert stale(s) == {pige.id}
    kept.catch_up(s, time)
    s.execute(update(Milestone).where(Milestone.task_id == pige.id).values(met_on=D(2026, 2, 10)))
    assert stale(s) == {pige.id}
    kept.catch_up(s, time)
    s.execute(delete(Milestone).where(Milestone.task_id == pige.id))
    assert stale(s) == {pige.id}
    kept.catch_up(s, time)
    assert kept.differences(s, time) == []
    # the time settings the spans are computed with: every task
    settings_module.set_number(s, None, NOW, "schedule_tolerance", "points", 5, 0, 50, "容差")
    assert stale(s) == every
    s.commit()


def test_a_bounded_catch_up_leaves_the_rest_for_the_next(s, world, ledger):  # noqa: F811
    time = settings_module.time_settings(s)
    every = set(s.scalars(select(Task.id)))
    assert kept.catch_up(s, time, limit=3) == 3
    assert len(stale(s)) == len(every) - 3
    assert kept.catch_up(s, time) == len(every) - 3 and stale(s) == set()
    assert kept.differences(s, time) == []


def test_past_reports_equal_the_replay_whatever_is_stale(s, world, ledger):  # noqa: F811
    xiangtan, province = world.regions["湘潭市"], world.regions["湖南省"]
    assert_reports_equal_the_replay(s, xiangtan)  # everything stale: all replayed
    time = settings_module.time_settings(s)
    kept.catch_up(s, time)
    assert_reports_equal_the_replay(s, xiangtan)  # nothing stale: all from the spans
    assert_reports_equal_the_replay(s, province)
    # some stale: a report, an extension approved, a closure applied for with a past effective date
    perform(s, ledger["shuangma"], "report", world.m["unit_yh"], NOW, text="渗滤液处理站调试中", percent=30)
    perform(s, ledger["heichou"], "cancel", world.m["sup_xt"], NOW, reason="与黑臭水体专项重复")
    s.flush()
    assert stale(s)
    assert_reports_equal_the_replay(s, xiangtan)
    kept.catch_up(s, time)
    assert_reports_equal_the_replay(s, xiangtan)
    s.commit()


def test_a_changed_tolerance_changes_past_reports_exactly(s, world, ledger):  # noqa: F811
    time = settings_module.time_settings(s)
    kept.catch_up(s, time)
    settings_module.set_reporting_period(s, None, NOW, "quarter", 10)
    assert_reports_equal_the_replay(s, world.regions["湘潭市"])  # all stale again, all replayed
    kept.catch_up(s, settings_module.time_settings(s))
    assert_reports_equal_the_replay(s, world.regions["湘潭市"])


def test_the_cli_catches_up_checks_and_rebuilds(app, s, world, ledger):  # noqa: F811
    runner = app.test_cli_runner()
    result = runner.invoke(args=["periods", "catch-up"])
    assert result.exit_code == 0 and "已补算" in result.output
    assert runner.invoke(args=["periods", "check"]).exit_code == 0
    s.execute(update(TaskPeriod).where(TaskPeriod.task_id == ledger["shuangma"].id).values(overdue=False))
    s.commit()
    result = runner.invoke(args=["periods", "check"])
    assert result.exit_code == 1 and f"任务{ledger['shuangma'].id}" in result.output
    assert runner.invoke(args=["periods", "rebuild"]).exit_code == 0
    assert runner.invoke(args=["periods", "check"]).exit_code == 0


def test_the_scheduler_catches_up_a_bounded_number_per_run(app, s, world, ledger, monkeypatch):  # noqa: F811
    every = set(s.scalars(select(Task.id)))
    s.commit()
    monkeypatch.setattr(scheduler, "PERIOD_CATCH_UP_LIMIT", len(every) - 2)
    scheduler.period_catch_up(app, NOW)
    s.expire_all()
    assert len(stale(s)) == 2
    scheduler.period_catch_up(app, NOW)
    s.expire_all()
    assert stale(s) == set() and kept.differences(s, settings_module.time_settings(s)) == []
