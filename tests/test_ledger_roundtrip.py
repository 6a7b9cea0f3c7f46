"""The ledger round trip (DESIGN §7): the demo's ledger, exported, imported into an installation that has
the same organisation and no tasks, and exported again, is the same workbook cell for cell."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest
from sqlalchemy import select

from config import TestConfig
from tests.conftest import migrated_database
from tracker import create_app, demo, intake, ledger, schedule, settings
from tracker.ledger_columns import format_milestone, parse_milestones
from tracker.models import Region, Task
from tracker.timeutil import SHANGHAI, local_date

# Late in a month, so the month holds reports, closures and escalations of the demo's history.
DEMO_NOW = dt.datetime(2026, 11, 20, 16, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)


def empty_database(database_url: str, tmp_path):
    """A second database of the same kind as the tests', migrated to head, dropped afterwards."""
    return migrated_database(database_url, tmp_path)


def cells(path) -> dict[str, list[list]]:
    book = openpyxl.load_workbook(path)
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in book.worksheets}


def export(s, path, today: dt.date):
    province = s.scalar(select(Region).where(Region.level == 0))
    return ledger.export(s, province, f"{today:%Y-%m}", path, today=today, settings=settings.time_settings(s))


def test_the_demo_ledger_exported_imported_into_an_empty_installation_and_exported_again_is_the_same(
        app, s, database_url, tmp_path):
    today = local_date(DEMO_NOW)
    hash_method = app.config["PASSWORD_HASH_METHOD"]
    demo.load(s, DEMO_NOW, hash_method=hash_method, upload_folder=tmp_path / "uploads")
    s.commit()
    first = export(s, tmp_path / "a.xlsx", today)
    assert first.rows > 20

    with empty_database(database_url, tmp_path) as other_url:
        other = create_app(TestConfig(other_url, str(tmp_path / "other")))
        try:
            with other.app_context():
                session = other.extensions["tracker.sessionmaker"]()
                try:
                    demo.load_organisation(session, DEMO_NOW, hash_method=hash_method)
                    session.commit()
                    assert session.scalar(select(Task.id).limit(1)) is None
                    report = intake.import_ledger(session, tmp_path / "a.xlsx", None, DEMO_NOW)
                    assert report.ok, [p.describe() for p in report.errors]
                    assert report.created == first.rows
                    session.commit()
                    second = export(session, tmp_path / "b.xlsx", today)
                finally:
                    session.close()
        finally:
            other.extensions["tracker.engine"].dispose()

    a, b = cells(tmp_path / "a.xlsx"), cells(tmp_path / "b.xlsx")
    assert list(a) == list(b) == first.sheets == second.sheets
    assert first.figures == second.figures
    for name in a:  # the title row carries the as-of date only (no generation time): compared as well
        assert len(a[name]) == len(b[name]), name
        for i, (row_a, row_b) in enumerate(zip(a[name], b[name], strict=True), start=1):
            assert row_a == row_b, (name, i, [(x, y) for x, y in zip(row_a, row_b, strict=False) if x != y])
    # The sheets are not trivially alike: the classifications a milestone and a late report give are there.
    rows = a["整改台账"][2:]
    header = a["整改台账"][1]
    assert any(r[header.index("阶段目标")] for r in rows)
    assert any(r[header.index("序时进度")] == "滞后" for r in rows)
    assert any(r[header.index("最新进展")] for r in rows)


@pytest.mark.parametrize("text_, expected", [
    ("2026-06-30 完成主体工程 60%（已完成 2026-06-20）",
     [(dt.date(2026, 6, 30), "完成主体工程", 60, dt.date(2026, 6, 20))]),
    ("2026年6月30日 完成A；2026/9/30 完成B 100%",
     [(dt.date(2026, 6, 30), "完成A", None, None), (dt.date(2026, 9, 30), "完成B", 100, None)]),
])
def test_milestone_cells_read_back_as_written(text_, expected):
    found = parse_milestones(text_)
    assert [(m.due_on, m.description, m.planned_percent, m.met_on) for m in found] == expected
    assert parse_milestones("\n".join(format_milestone(m) for m in found)) == found


def test_rows_from_the_values_kept_on_the_tasks_are_the_rows_the_replay_gives(app, s, tmp_path, monkeypatch):
    """The export reads a task's standing at D from its own columns when no event of it is dated after D,
    and replays the history only for the others. Over the demo's history (every action, backdated reports,
    closures, extensions, reopened tasks), both give the same workbook, this month and last."""
    today = local_date(DEMO_NOW)
    demo.load(s, DEMO_NOW, hash_method=app.config["PASSWORD_HASH_METHOD"], upload_folder=tmp_path / "uploads")
    s.commit()
    province = s.scalar(select(Region).where(Region.level == 0))
    months = [f"{today:%Y-%m}", f"{today.replace(day=1) - dt.timedelta(days=1):%Y-%m}"]
    read_from_columns = []
    current_snapshot = ledger.current_snapshot
    monkeypatch.setattr(ledger, "current_snapshot",
                        lambda *args: read_from_columns.append(1) or current_snapshot(*args))

    def workbooks(tag: str) -> list[dict]:
        found = []
        for month in months:
            path = tmp_path / f"{tag}-{month}.xlsx"
            ledger.export(s, province, month, path, today=today, settings=settings.time_settings(s))
            found.append(cells(path))
        return found

    kept = workbooks("kept")
    assert len(read_from_columns) > 20
    monkeypatch.setattr(ledger, "_snapshots",
                        lambda ctx, batch, facts: schedule.snapshots_as_of(ctx.s, batch, ctx.as_of))
    replayed = workbooks("replayed")
    for month, a, b in zip(months, kept, replayed, strict=True):
        assert list(a) == list(b)
        for name in a:
            assert a[name] == b[name], (month, name, [(x, y) for x, y in zip(a[name], b[name], strict=False) if x != y])
