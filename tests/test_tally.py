"""The tallies of today's figures (migration 0011, ``tracker.tally``): kept by triggers through every kind
of write, equal to a live count at every step, folded without losing a task, and read by the dashboard
for region scopes with the same figures a live count gives."""

from __future__ import annotations

from sqlalchemy import func, select, text, update

from tests.conftest import NOW
from tests.test_dashboard import TODAY, ledger  # noqa: F401  (the 湘潭市 ledger fixture)
from tracker import dashboard, schedule, tally
from tracker.models import ClosureTally, LeadTally, Region, Task, TaskTally, TaskUnit
from tracker.operations import perform
from tracker.queries import TaskFilter, filtered_tasks

TRIGGERS = {
    "sqlite": {"tally_task_insert", "tally_task_update", "tally_task_delete", "tally_task_unit_insert",
               "tally_task_unit_update", "tally_task_unit_delete"},
    "postgresql": {"tally_task_insert_delete", "tally_task_update", "tally_task_unit_insert_delete",
                   "tally_task_unit_update"},
}


def triggers(s) -> set[str]:
    """The names of the database's own triggers."""
    if s.get_bind().dialect.name == "sqlite":
        return set(s.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    return set(s.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))


def test_the_triggers_are_there_at_head(s):
    """A later migration that rebuilds ``task`` on SQLite (batch_alter_table) would drop them silently."""
    assert TRIGGERS[s.get_bind().dialect.name] <= triggers(s)


def test_every_write_keeps_the_tallies_equal_to_a_live_count(s, world, ledger):  # noqa: F811
    assert tally.differences(s) == []
    province = world.regions["湖南省"]  # every task is counted once under each region from its own up
    assert s.scalar(select(func.sum(TaskTally.n)).where(TaskTally.scope_id == province.id)) == \
        s.scalar(select(func.count(Task.id)))
    # an action (state, schedule), a reassignment (lead units), the daily refresh's set-based writes
    shuangma = ledger["shuangma"]
    perform(s, shuangma, "reassign", world.m["sup_xt"], NOW, leads=[world.units["湘乡市人民政府"].id],
            participants=[], reason="调整牵头单位")
    perform(s, ledger["heichou"], "cancel", world.m["sup_xt"], NOW, reason="重复登记")
    schedule.refresh_all(s, TODAY)
    s.flush()
    assert tally.differences(s) == []
    # a write no operation knows about: a set-based UPDATE straight to the table
    s.execute(update(Task).where(Task.id == ledger["juanshui"].id).values(region_id=world.regions["湘乡市"].id))
    s.execute(update(TaskUnit).where(TaskUnit.task_id == ledger["pige"].id).values(role="participant"))
    assert tally.differences(s) == []
    s.commit()


def test_a_wrong_tally_is_found_and_rebuilt(s, world, ledger):  # noqa: F811
    s.add(TaskTally(scope_id=world.regions["雨湖区"].id, channel_id=ledger["shuangma"].channel_id,
                    round_id=ledger["shuangma"].round_id, state="rectifying", schedule="behind", overdue=True,
                    not_reported=False, escalation_level=0, extended=False, n=5))
    s.flush()
    wrong = tally.differences(s)
    assert len(wrong) == 1 and wrong[0][0] == "task_tally" and wrong[0][2] - wrong[0][3] == 5
    tally.rebuild(s)
    assert tally.differences(s) == []


def test_folding_merges_rows_and_changes_no_sum(s, world, ledger):  # noqa: F811
    for _ in range(3):  # rows that cancel out: a value changed back and forth
        for level in (3, 0):
            s.execute(update(Task).where(Task.id == ledger["shuangma"].id).values(escalation_level=level))
    rows_before = {m: s.scalar(select(func.count()).select_from(m)) for m in (TaskTally, LeadTally, ClosureTally)}
    merged = tally.fold(s)
    rows_after = {m: s.scalar(select(func.count()).select_from(m)) for m in (TaskTally, LeadTally, ClosureTally)}
    assert merged == sum(rows_before.values()) - sum(rows_after.values()) > 0
    assert tally.differences(s) == []
    assert tally.fold(s) == 0  # nothing left to merge
    s.commit()


def test_the_dashboard_from_the_tallies_equals_a_live_count(s, world, ledger):  # noqa: F811
    """Every figure of a city and a province dashboard, read from the tallies and counted live."""
    for membership, region in ((world.m["sup_xt"], world.regions["湘潭市"]),
                               (world.m["sup_xt"], world.regions["雨湖区"])):
        board = dashboard.build(s, membership, region, TODAY)
        query = filtered_tasks(s, membership, TaskFilter(region_id=region.id)).where(dashboard.COUNTED)
        live = dashboard.Counter(s, query, None)
        kept = dashboard.Counter(s, query, region)
        children = s.scalars(select(Region).where(Region.parent_id == region.id)).all()
        assert kept.per_child(region, children) == live.per_child(region, children)
        for keys, where, lead in ((["channel_id", "round_id"], [], False),
                                  (["unit_id"], [], True), ([], [Task.not_reported.is_(True)], False),
                                  (["escalation_level"], [Task.escalation_level > 0], False)):
            assert kept.cells(keys, *where, lead=lead) == live.cells(keys, *where, lead=lead), keys
        windows = dashboard.month_windows(TODAY)
        assert kept.closed_per_month(windows) == live.closed_per_month(windows)
        assert sum(kept.closed_per_month(windows)) == 1  # 涓水直排口, closed today
        assert board.totals.figures["total"].value > 0


def test_a_region_outside_the_scope_is_not_read_from_the_tallies(s, world, ledger):  # noqa: F811
    """The tallies know 攸县's overdue task; 湘潭市's supervisor asking for 株洲市 must still see nothing."""
    board = dashboard.build(s, world.m["sup_xt"], world.regions["株洲市"], TODAY)
    assert board.totals.figures["total"].value == 0 and board.by_unit == []
    assert dashboard.build(s, world.m["sup_zz"], world.regions["株洲市"], TODAY).totals.figures["overdue"].value == 1


def test_the_cli_checks_rebuilds_and_folds(app, s, world, ledger):  # noqa: F811
    runner = app.test_cli_runner()
    assert runner.invoke(args=["tally", "check"]).exit_code == 0
    s.execute(update(TaskTally).where(TaskTally.id == s.scalar(select(func.min(TaskTally.id)))).values(n=99))
    s.commit()
    result = runner.invoke(args=["tally", "check"])
    assert result.exit_code == 1 and "task_tally" in result.output
    assert runner.invoke(args=["tally", "rebuild"]).exit_code == 0
    assert runner.invoke(args=["tally", "check"]).exit_code == 0
    result = runner.invoke(args=["tally", "fold"])
    assert result.exit_code == 0 and "已合并0行" in result.output
