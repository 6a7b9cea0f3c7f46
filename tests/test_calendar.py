"""Working days (DESIGN §5): the 2019–2026 calendar from the State Council's notices, the statutory rule
for a year no notice confirms yet (暂定), the calendar commands, CSV import and admins' edits, and the
working-day counting escalation relies on (DESIGN §6)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import NOW
from tracker import calendars
from tracker.audit import ActionError
from tracker.models import CalendarDay, CalendarYear, Event
from tracker.timeutil import SHANGHAI
from tracker.workdays import WorkCalendar

D = dt.date

# DESIGN §5 facts for 2026: weekend days worked (调休) and days off.
WORKING_2026 = [D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10)]


def _span(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


OFF_2026 = [
    *_span(D(2026, 1, 1), D(2026, 1, 3)),
    *_span(D(2026, 2, 15), D(2026, 2, 23)),
    *_span(D(2026, 4, 4), D(2026, 4, 6)),
    *_span(D(2026, 5, 1), D(2026, 5, 5)),
    *_span(D(2026, 6, 19), D(2026, 6, 21)),
    *_span(D(2026, 9, 25), D(2026, 9, 27)),
    *_span(D(2026, 10, 1), D(2026, 10, 7)),
]


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["calendar", *args])


def year_rows(s, year: int) -> int:
    return s.scalar(select(func.count()).select_from(CalendarDay).where(
        CalendarDay.day.between(D(year, 1, 1), D(year, 12, 31))))


@pytest.fixture(scope="module")
def migrated(database_url) -> WorkCalendar:
    """The calendar as the migrations leave it, read once for the many one-day facts (read-only)."""
    engine = create_engine(database_url)
    with Session(engine) as session:
        cal = calendars.load(session)
    engine.dispose()
    return cal


# --- the confirmed 2026 calendar ------------------------------------------------------------------


@pytest.mark.parametrize("day", WORKING_2026, ids=str)
def test_2026_make_up_days_are_working_days(migrated, day):
    cal = migrated
    assert day.weekday() >= 5, "every DESIGN fact of this list is a weekend day"
    assert cal.is_workday(day)
    assert not cal.is_provisional(day)
    assert "调休" in cal.day_name(day)


@pytest.mark.parametrize("day", OFF_2026, ids=str)
def test_2026_holidays_are_off(migrated, day):
    cal = migrated
    assert not cal.is_workday(day)
    assert not cal.is_provisional(day)


def test_ordinary_2026_days_follow_the_weekday_rule(s):
    cal = calendars.load(s)
    assert cal.is_workday(D(2026, 3, 2))  # Monday
    assert not cal.is_workday(D(2026, 3, 7))  # Saturday, no 调休
    assert cal.day_name(D(2026, 3, 2)) == ""
    # 2026-10-08 (Thursday) is the first working day after 国庆.
    assert cal.is_workday(D(2026, 10, 8))


def test_every_year_2019_to_2026_is_confirmed_and_2027_is_not(s):
    confirmed = set(s.scalars(select(CalendarYear.year).where(CalendarYear.confirmed.is_(True))))
    assert set(range(2019, 2027)) <= confirmed
    assert 2027 not in confirmed and 2031 not in confirmed
    cal = calendars.load(s)
    assert cal.is_provisional(D(2027, 1, 1)) and not cal.is_provisional(D(2019, 1, 1))
    # A 2019 and a 2020 调休 from the notices.
    assert cal.is_workday(D(2019, 9, 29)) and cal.is_workday(D(2020, 6, 28))
    assert not cal.is_workday(D(2020, 10, 8))  # 2020: 国庆 and 中秋 together, eight days


# --- the commands -------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "answer"), [("2026-05-09", "yes"), ("2026-10-07", "no"), ("2026-03-02", "yes")])
def test_is_workday_command(app, day, answer):
    result = cli(app, "is-workday", day)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == answer
    assert result.stderr == ""  # a confirmed year: no 暂定 note


@pytest.mark.parametrize(("start", "n", "expected"), [
    ("2025-12-31", "1", "2026-01-04"),  # 1–3 January off, Sunday the 4th worked
    ("2026-02-13", "3", "2026-02-25"),  # Saturday the 14th worked, 15–23 off
    ("2026-09-18", "5", "2026-09-24"),  # Sunday the 20th worked
    ("2026-09-30", "1", "2026-10-08"),
])
def test_workdays_after_command(app, start, n, expected):
    result = cli(app, "workdays-after", start, n)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == expected
    assert result.stderr == ""


def test_commands_refuse_bad_input_in_chinese(app):
    bad_date = cli(app, "is-workday", "2026-13-01")
    assert bad_date.exit_code == 1
    assert "日期“2026-13-01”无效" in bad_date.stderr
    bad_n = cli(app, "workdays-after", "2026-03-02", "0")
    assert bad_n.exit_code != 0


# --- a year no notice confirms: the statutory rule, 暂定 ------------------------------------------


def test_unconfirmed_year_uses_statutory_holidays_without_make_up_days(s):
    cal = calendars.load(s)
    # 2031: 国庆 (with 中秋) is 1–3 October, Wednesday to Friday; the weekend after is simply a weekend
    # and Monday the 6th is a working day — no 调休 is guessed.
    assert [cal.is_workday(D(2031, 10, d)) for d in range(1, 7)] == [False, False, False, False, False, True]
    assert D(2031, 10, 4).weekday() == 5 and D(2031, 10, 6).weekday() == 0
    assert "国庆" in cal.day_name(D(2031, 10, 2))
    # No weekend day of 2031 is worked.
    weekends = [d for d in _span(D(2031, 1, 1), D(2031, 12, 31)) if d.weekday() >= 5]
    assert not any(cal.is_workday(d) for d in weekends)
    # 春节 (除夕 to 初三, 22–25 January 2031) and 元旦 are off.
    assert not any(cal.is_workday(d) for d in _span(D(2031, 1, 22), D(2031, 1, 24)))
    assert not cal.is_workday(D(2031, 1, 1))
    assert cal.is_workday(D(2031, 1, 27))
    assert cal.is_provisional(D(2031, 10, 1)) and cal.is_provisional(D(2031, 6, 3))
    # Arithmetic never fails across an unconfirmed year.
    assert cal.add_workdays(D(2031, 9, 30), 1) == D(2031, 10, 6)
    assert cal.workdays_between(D(2031, 9, 30), D(2031, 10, 6)) == 1
    assert cal.first_workday_of_month(2031, 10) == D(2031, 10, 6)
    assert cal.add_workdays(D(2040, 12, 31), 200).year == 2041


def test_commands_mark_unconfirmed_answers_provisional(app):
    off = cli(app, "is-workday", "2031-10-03")
    assert off.exit_code == 0 and off.stdout.strip() == "no"
    assert "暂定" in off.stderr and "2031" in off.stderr
    on = cli(app, "is-workday", "2031-10-06")
    assert on.stdout.strip() == "yes" and "暂定" in on.stderr
    # Counting from a confirmed year into an unconfirmed one: 2027-01-01 (Friday, 元旦) is off.
    after = cli(app, "workdays-after", "2026-12-31", "1")
    assert after.exit_code == 0 and after.stdout.strip() == "2027-01-04"
    assert "暂定" in after.stderr


# --- import ----------------------------------------------------------------------------------------

CSV_2027 = (
    "\ufeff日期,是否上班,名称\n"
    "2027-01-01,0,元旦\n"
    "2027-02-05,0,春节\n"
    "2027-06-09,否,端午节\n"
    "2027-10-01,0,国庆节\n"
    "2027-10-04,0,国庆节\n"
    "2027/10/09,1,国庆节调休上班\n"
    "\n"
    "2027-09-25,上班,国庆节调休上班\n"
)


def _write(tmp_path, text: str, name="2027.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def test_import_confirms_a_year_and_changes_the_answers(app, s, tmp_path):
    # Before: 2027 is provisional; Monday 4 October is an ordinary day, Saturday 9 October a weekend.
    assert cli(app, "is-workday", "2027-10-04").stdout.strip() == "yes"
    assert cli(app, "is-workday", "2027-10-09").stdout.strip() == "no"
    assert cli(app, "workdays-after", "2027-09-30", "2").stdout.strip() == "2027-10-05"

    result = app.test_cli_runner().invoke(args=["calendar", "import", _write(tmp_path, CSV_2027)])
    assert result.exit_code == 0, result.output
    assert "2027年" in result.stdout

    s.expire_all()
    year = s.get(CalendarYear, 2027)
    assert year.confirmed and year.source == "2027.csv"
    assert year_rows(s, 2027) == 7
    cal = calendars.load(s)
    assert not cal.is_provisional(D(2027, 10, 4))
    assert not cal.is_workday(D(2027, 10, 4)) and cal.is_workday(D(2027, 10, 9)) and cal.is_workday(D(2027, 9, 25))
    assert cal.day_name(D(2027, 10, 9)) == "国庆节调休上班"
    # After: the commands agree, without the 暂定 note.
    off = cli(app, "is-workday", "2027-10-04")
    assert off.stdout.strip() == "no" and off.stderr == ""
    worked = cli(app, "is-workday", "2027-10-09")
    assert worked.stdout.strip() == "yes" and worked.stderr == ""
    # 30 Sep (Thu) → 1 Oct off, 2–3 weekend, 4 Oct off, 5 Oct (1), 6 Oct (2).
    assert cli(app, "workdays-after", "2027-09-30", "2").stdout.strip() == "2027-10-06"
    event = s.scalar(select(Event).where(Event.action == "calendar_import"))
    assert event.entity_id == 2027 and event.data["days"] == 7
    assert sorted(event.data["workdays"]) == ["2027-09-25", "2027-10-09"]


def test_reimport_replaces_the_year(app, s, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["calendar", "import", _write(tmp_path, CSV_2027)]).exit_code == 0
    again = "date,is_workday,name\n2027-10-01,0,国庆节\n"
    assert runner.invoke(args=["calendar", "import", _write(tmp_path, again, "b.csv")]).exit_code == 0
    s.expire_all()
    assert year_rows(s, 2027) == 1
    assert calendars.load(s).is_workday(D(2027, 10, 4))  # no longer listed: the weekday rule again


@pytest.mark.parametrize(("text", "message"), [
    ("日期,是否上班,名称\n2027-01-01,0,元旦\n2027-02-30,0,春节\n", "第3行的日期“2027-02-30”无效"),
    ("2027-01-01,0,元旦\n2027-10-01,也许,国庆节\n", "第2行的是否上班“也许”无效"),
    ("2027-01-01,0,元旦\n2027-10-01\n", "第2行"),
    ("日期,是否上班,名称\n2027-10-01,0,国庆节\n2027-10-02,0,国庆节\n2027-10-01,0,国庆节\n", "第4行"),
    ("日期,是否上班,名称\n", "没有日期"),
    ("", "没有日期"),
], ids=["bad-date", "bad-flag", "missing-column", "duplicate", "header-only", "empty"])
def test_bad_csv_exits_1_names_the_line_and_writes_nothing(app, s, tmp_path, text, message):
    events_before = s.scalar(select(func.count()).select_from(Event))
    result = app.test_cli_runner().invoke(args=["calendar", "import", _write(tmp_path, text)])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "导入失败" in result.stderr
    s.expire_all()
    assert s.get(CalendarYear, 2027) is None
    assert year_rows(s, 2027) == 0
    assert s.scalar(select(func.count()).select_from(Event)) == events_before
    assert cli(app, "is-workday", "2027-10-04").stdout.strip() == "yes"  # still the statutory rule


def test_not_utf8_is_refused(app, s, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("日期,是否上班\n2027-10-01,放假\n".encode("gbk"))
    result = app.test_cli_runner().invoke(args=["calendar", "import", str(path)])
    assert result.exit_code == 1 and "UTF-8" in result.stderr
    s.expire_all()
    assert s.get(CalendarYear, 2027) is None


def test_parse_csv_reads_the_words_government_sheets_use():
    rows = calendars.parse_csv("\ufeffdate,is_workday,name\n2027-01-01, 放假 ,元旦 \n2027-02-20,是,春节调休上班\n")
    assert rows == [(D(2027, 1, 1), False, "元旦"), (D(2027, 2, 20), True, "春节调休上班")]
    with pytest.raises(ActionError, match="第2行"):
        calendars.parse_csv("2027-01-01,0\n2027-01-01,1\n")


# --- admins' edits and the November warning -----------------------------------------------------------


def test_set_day_marks_a_day_and_returns_it_to_the_rule(s):
    saturday = D(2026, 12, 26)
    assert not calendars.load(s).is_workday(saturday)
    calendars.set_day(s, None, NOW, saturday, True, " 调休上班 ")
    cal = calendars.load(s)
    assert cal.is_workday(saturday) and cal.day_name(saturday) == "调休上班"
    calendars.set_day(s, None, NOW, D(2026, 12, 28), False, "临时放假")
    assert not calendars.load(s).is_workday(D(2026, 12, 28))
    calendars.set_day(s, None, NOW, saturday, None)
    assert not calendars.load(s).is_workday(saturday)
    changes = s.scalars(select(Event).where(Event.action == "calendar_day").order_by(Event.id)).all()
    assert [e.data["day"] for e in changes] == ["2026-12-26", "2026-12-28", "2026-12-26"]
    assert changes[2].data["before"] == {"is_workday": True, "name": "调休上班"} and changes[2].data["after"] is None


def test_admins_are_warned_from_1_november_when_next_year_is_not_confirmed(s):
    # 1 November 00:30 in Shanghai is still 31 October in UTC: the Shanghai date counts.
    nov_first = dt.datetime(2026, 11, 1, 0, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    oct_last = dt.datetime(2026, 10, 31, 23, 30, tzinfo=SHANGHAI).astimezone(dt.UTC)
    assert calendars.next_year_unconfirmed_warning(s, oct_last) is None
    assert calendars.next_year_unconfirmed_warning(s, nov_first) == 2027
    calendars.import_year(s, None, nov_first, [(D(2027, 1, 1), False, "元旦")], "国办发明电")
    assert calendars.next_year_unconfirmed_warning(s, nov_first) is None
    # 2025-11: 2026 is confirmed by the migration.
    assert calendars.next_year_unconfirmed_warning(s, dt.datetime(2025, 11, 3, tzinfo=dt.UTC)) is None


# --- working-day counting for escalation (DESIGN §6 test facts) -----------------------------------------


@pytest.mark.parametrize(("day", "count"), [
    (D(2026, 10, 1), 0), (D(2026, 10, 7), 0), (D(2026, 10, 8), 1), (D(2026, 10, 9), 2), (D(2026, 10, 10), 3),
    (D(2026, 10, 11), 3), (D(2026, 10, 16), 8), (D(2026, 10, 19), 9), (D(2026, 10, 20), 10),
])
def test_workdays_between_after_national_day(migrated, day, count):
    assert migrated.workdays_between(D(2026, 9, 30), day) == count


def test_ten_working_days_are_first_reached_on_20_october(s):
    cal = calendars.load(s)
    first = next(d for d in _span(D(2026, 10, 1), D(2026, 12, 31)) if cal.workdays_between(D(2026, 9, 30), d) >= 10)
    assert first == D(2026, 10, 20)
    assert cal.add_workdays(D(2026, 9, 30), 10) == first


def test_workday_arithmetic_edges():
    cal = WorkCalendar.from_rows([(D(2026, 1, 3), True, "调休")], [2026])
    assert cal.workdays_between(D(2026, 1, 5), D(2026, 1, 5)) == 0
    assert cal.workdays_between(D(2026, 1, 9), D(2026, 1, 5)) == 0
    assert cal.add_workdays(D(2026, 1, 2), 1) == D(2026, 1, 3)
    with pytest.raises(ValueError):
        cal.add_workdays(D(2026, 1, 2), 0)
    # A confirmed year without listed holidays has none: 1 January 2026 is then a Thursday like any other.
    assert cal.is_workday(D(2026, 1, 1))
    # The same table for an unconfirmed year falls back on the statutory rule.
    assert not WorkCalendar().is_workday(D(2026, 1, 1))
