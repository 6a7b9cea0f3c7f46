"""The working-day calendar in the database: loading it for arithmetic, importing a year from the
official notice (CSV ``date,is_workday,name``), and admins' edits — each change with an event."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.audit import ActionError, record_event
from tracker.models import CalendarDay, CalendarYear, Membership
from tracker.timeutil import local_date
from tracker.workdays import WorkCalendar

TRUE_WORDS = {"1", "true", "yes", "y", "是", "上班", "工作日", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "放假", "休息", "节假日", "f"}


def load(s: Session) -> WorkCalendar:
    """The whole calendar (a few hundred rows) for working-day arithmetic."""
    days = s.execute(select(CalendarDay.day, CalendarDay.is_workday, CalendarDay.name)).all()
    years = s.scalars(select(CalendarYear.year).where(CalendarYear.confirmed.is_(True))).all()
    return WorkCalendar.from_rows(days, years)


def parse_csv(text: str) -> list[tuple[dt.date, bool, str]]:
    """Rows of ``date,is_workday,name`` (a header row is allowed); errors name the line, in Chinese."""
    rows = []
    seen: dict[dt.date, int] = {}
    for number, record in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        if not record or not "".join(record).strip():
            continue
        if number == 1 and record[0].strip().lower() in {"date", "日期"}:
            continue
        if len(record) < 2:
            raise ActionError("第{row}行应有日期和是否上班两列", row=number)
        day = _day(record[0], number)
        if day in seen:
            raise ActionError("第{row}行的日期“{day}”与第{other}行重复", row=number, day=day.isoformat(),
                              other=seen[day])
        seen[day] = number
        rows.append((day, _flag(record[1], number), (record[2] if len(record) > 2 else "").strip()))
    if not rows:
        raise ActionError("文件中没有日期")
    return rows


def _day(value: str, number: int) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip().replace("/", "-"))
    except ValueError:
        raise ActionError("第{row}行的日期“{value}”无效，应为YYYY-MM-DD", row=number, value=value.strip()) from None


def _flag(value: str, number: int) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ActionError("第{row}行的是否上班“{value}”无效，应为1或0", row=number, value=value.strip())


def import_year(s: Session, actor: Membership | None, now: dt.datetime, rows: Iterable[tuple[dt.date, bool, str]],
                source: str = "") -> list[int]:
    """Replace the special days of the years in ``rows`` and mark those years confirmed."""
    rows = list(rows)
    years = sorted({d.year for d, _, _ in rows})
    if len({d for d, _, _ in rows}) != len(rows):
        raise ActionError("文件中有重复的日期")
    for year in years:
        s.execute(delete(CalendarDay).where(CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31))))
        row = s.get(CalendarYear, year) or CalendarYear(year=year)
        row.confirmed, row.source = True, source or "导入"
        s.add(row)
    s.add_all(CalendarDay(day=d, is_workday=w, name=n) for d, w, n in rows)
    for year in years:
        year_rows = [r for r in rows if r[0].year == year]
        record_event(s, actor, now, "calendar_import", entity="calendar", entity_id=year,
                     data={"year": year, "days": len(year_rows), "source": source,
                           "workdays": [d.isoformat() for d, w, _ in year_rows if w]})
    s.flush()
    return years


def set_day(s: Session, actor: Membership | None, now: dt.datetime, day: dt.date, is_workday: bool | None,
            name: str = "") -> None:
    """Mark one day as a holiday or a make-up working day; ``None`` returns it to the weekday rule."""
    row = s.get(CalendarDay, day)
    before = None if row is None else {"is_workday": row.is_workday, "name": row.name}
    if is_workday is None:
        if row is not None:
            s.delete(row)
    else:
        row = row or CalendarDay(day=day)
        row.is_workday, row.name = is_workday, name.strip()
        s.add(row)
    record_event(s, actor, now, "calendar_day", entity="calendar", entity_id=day.year,
                 data={"day": day.isoformat(), "before": before,
                       "after": None if is_workday is None else {"is_workday": is_workday, "name": name.strip()}})
    s.flush()


def set_confirmed(s: Session, actor: Membership | None, now: dt.datetime, year: int, confirmed: bool) -> None:
    row = s.get(CalendarYear, year) or CalendarYear(year=year, source="管理员")
    row.confirmed = confirmed
    s.add(row)
    record_event(s, actor, now, "calendar_confirm", entity="calendar", entity_id=year,
                 data={"year": year, "confirmed": confirmed})
    s.flush()


def next_year_unconfirmed_warning(s: Session, now: dt.datetime) -> int | None:
    """From 1 November, the next year while it is not confirmed (admins are warned)."""
    today = local_date(now)
    if today.month < 11:
        return None
    row = s.get(CalendarYear, today.year + 1)
    return None if row is not None and row.confirmed else today.year + 1
