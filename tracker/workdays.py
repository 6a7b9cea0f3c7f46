"""Working days (工作日) by the State Council's yearly notice: weekends off, public holidays off, and
调休 make-up working days on (DESIGN §5).

Pure: a ``WorkCalendar`` is built from the calendar table's rows and answers every question about
working days. A confirmed year uses its loaded holidays and make-up days. A year not yet confirmed
uses the statutory holidays alone (no 调休, computed by the ``holidays`` package, lunar dates
included); it never fails, and ``is_provisional`` lets the UI mark such results 暂定.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import holidays as holidays_package

ONE_DAY = dt.timedelta(days=1)


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> dict[dt.date, str]:
    """The statutory public holidays of a year (法定节假日), without 调休, named in Chinese."""
    return dict(holidays_package.China(years=year, observed=False, language="zh_CN").items())


@dataclass
class WorkCalendar:
    """Working-day arithmetic over the loaded days of confirmed years and the statutory rule."""

    days: dict[dt.date, tuple[bool, str]] = field(default_factory=dict)  # date -> (is working day, name)
    confirmed_years: frozenset[int] = frozenset()
    _running: dict[int, list[int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_rows(cls, days: Iterable[tuple[dt.date, bool, str]], confirmed_years: Iterable[int]) -> WorkCalendar:
        return cls({d: (w, n) for d, w, n in days}, frozenset(confirmed_years))

    def is_provisional(self, day: dt.date) -> bool:
        """True when the answer for ``day`` rests on the statutory rule alone (暂定)."""
        return day.year not in self.confirmed_years

    def is_workday(self, day: dt.date) -> bool:
        if day in self.days:
            return self.days[day][0]
        if day.year not in self.confirmed_years and day in statutory_holidays(day.year):
            return False
        return day.weekday() < 5

    def day_name(self, day: dt.date) -> str:
        """The holiday or make-up day's name, '' for an ordinary day."""
        if day in self.days:
            return self.days[day][1]
        if day.year not in self.confirmed_years:
            return statutory_holidays(day.year).get(day, "")
        return ""

    def add_workdays(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (n ≥ 1); "N个工作日内" counts from 交办日期."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day = start
        while n:
            day += ONE_DAY
            if self.is_workday(day):
                n -= 1
        return day

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]: how many working days ``end`` lies past ``start``."""
        if end <= start:
            return 0
        count = self._through(end) - self._through(start)
        for year in range(start.year, end.year):
            count += self._year(year)[-1]
        return count

    def _through(self, day: dt.date) -> int:
        """Working days from 1 January of ``day``'s year through ``day``."""
        return self._year(day.year)[day.timetuple().tm_yday]

    def _year(self, year: int) -> list[int]:
        """Running counts of a year's working days by day of the year (index 0: none yet), worked out once
        per year: the escalation ladder counts working days to and past every task's deadline."""
        if year not in self._running:
            running, day = [0], dt.date(year, 1, 1)
            while day.year == year:
                running.append(running[-1] + self.is_workday(day))
                day += ONE_DAY
            self._running[year] = running
        return self._running[year]

    def first_workday_of_month(self, year: int, month: int) -> dt.date:
        day = dt.date(year, month, 1)
        while not self.is_workday(day):
            day += ONE_DAY
        return day
