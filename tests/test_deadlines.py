"""Deadline text (时限要求) as the sheets write it (DESIGN §5): every form of the grammar, the phrases
of the seed documents, and properties over generated dates, periods, Excel serials and noise.

Pure: no app, no database. Working days come from a fake calendar that only skips weekends.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tracker.deadlines import DeadlineError, ParsedDeadline, parse_deadline

ASSIGNED_ON = dt.date(2026, 3, 2)  # a Monday: 交办日期 of the relative forms
CN = "零一二三四五六七八九十"
CN_MONTHS = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial of a date from 1900-03-01 on = days since this


def add_weekdays(start: dt.date, days: int) -> dt.date:
    """A working-day calendar with no holidays: the day ``days`` weekdays after ``start``."""
    day = start
    while days > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def parse(value: object) -> ParsedDeadline:
    return parse_deadline(value, assigned_on=ASSIGNED_ON, add_workdays=add_weekdays)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def month_end(year: int, month: int) -> dt.date:
    """Computed without ``calendar``: the day before the first of the next month."""
    if month == 12:
        return dt.date(year, 12, 31)
    return dt.date(year, month + 1, 1) - dt.timedelta(days=1)


# --- every form of the grammar -------------------------------------------------------------------

DATE, LONG, BOTH = "date", "long_term", "date_and_long_term"

FORMS = [
    # day precision
    ("2021-06-30", "2021-06-30", DATE),
    ("2021/6/30", "2021-06-30", DATE),
    ("2021.6.30", "2021-06-30", DATE),
    ("2021-6-3", "2021-06-03", DATE),
    ("2021年6月30日", "2021-06-30", DATE),
    ("2021年6月30日前", "2021-06-30", DATE),
    ("2021年6月30日之前", "2021-06-30", DATE),
    ("2021年6月30日前完成", "2021-06-30", DATE),
    ("2021年6月30号", "2021-06-30", DATE),
    ("2024年2月29日", "2024-02-29", DATE),
    # month precision: the last day of the month
    ("2021.06", "2021-06-30", DATE),
    ("2021-06", "2021-06-30", DATE),
    ("2021/6", "2021-06-30", DATE),
    ("2021.02", "2021-02-28", DATE),
    ("2024.02", "2024-02-29", DATE),
    ("2021年6月", "2021-06-30", DATE),
    ("2021年6月底", "2021-06-30", DATE),
    ("2021年6月底前", "2021-06-30", DATE),
    ("2021年6月底之前", "2021-06-30", DATE),
    ("2021年6月末", "2021-06-30", DATE),
    ("2021年06月底前完成", "2021-06-30", DATE),
    ("2021年六月底前", "2021-06-30", DATE),
    ("2021年十二月底", "2021-12-31", DATE),
    ("2021年十一月", "2021-11-30", DATE),
    # year precision: 12-31
    ("2021年底", "2021-12-31", DATE),
    ("2021年底前", "2021-12-31", DATE),
    ("2021年年底", "2021-12-31", DATE),
    ("2021年年底前", "2021-12-31", DATE),
    ("2021年末", "2021-12-31", DATE),
    ("2021年内", "2021-12-31", DATE),
    ("2021年度", "2021-12-31", DATE),
    ("到2025年年底", "2025-12-31", DATE),
    ("到 2025 年", "2025-12-31", DATE),
    ("到2025年", "2025-12-31", DATE),
    ("2025年", "2025-12-31", DATE),
    ("2025年12月底前完成", "2025-12-31", DATE),
    ("2025年底前完成", "2025-12-31", DATE),
    # half-years and quarters
    ("2021年上半年", "2021-06-30", DATE),
    ("2021年下半年", "2021-12-31", DATE),
    ("2021年上半年底前", "2021-06-30", DATE),
    ("2021年一季度", "2021-03-31", DATE),
    ("2021年第一季度", "2021-03-31", DATE),
    ("2021年二季度", "2021-06-30", DATE),
    ("2021年第三季度", "2021-09-30", DATE),
    ("2021年三季度", "2021-09-30", DATE),
    ("2021年1季度", "2021-03-31", DATE),
    ("2021年第4季度", "2021-12-31", DATE),
    ("2021年第二季度末前", "2021-06-30", DATE),
    # five-year plans (十N五 ends in 1955 + 5N)
    ("“十四五”末", "2025-12-31", DATE),
    ('"十四五"末', "2025-12-31", DATE),
    ("十四五末", "2025-12-31", DATE),
    ("“十四五”期间", "2025-12-31", DATE),
    ("十四五时期", "2025-12-31", DATE),
    ("“十四五”规划期末", "2025-12-31", DATE),
    ("“十三五”末", "2020-12-31", DATE),
    ("“十五五”末", "2030-12-31", DATE),
    ("“十一五”期间", "2010-12-31", DATE),
    # no year: the year of the 交办日期 (2026)
    ("6月底前", "2026-06-30", DATE),
    ("6月底", "2026-06-30", DATE),
    ("6月30日前", "2026-06-30", DATE),
    ("六月底前", "2026-06-30", DATE),
    ("十二月底", "2026-12-31", DATE),
    ("年底前", "2026-12-31", DATE),
    # from the 交办日期 (Monday 2026-03-02), weekends skipped by the fake calendar
    ("立行立改", "2026-03-09", DATE),
    ("立即整改", "2026-03-09", DATE),
    ("15个工作日内", "2026-03-23", DATE),
    ("15个工作日内完成", "2026-03-23", DATE),
    ("十五个工作日内", "2026-03-23", DATE),
    ("三十个工作日内", "2026-04-13", DATE),
    ("交办后5个工作日内", "2026-03-09", DATE),
    ("30日内", "2026-04-01", DATE),
    ("7天内", "2026-03-09", DATE),
    ("十日内", "2026-03-12", DATE),
    # long-term, alone or after a date
    ("长期坚持", None, LONG),
    ("长期", None, LONG),
    ("持续推进", None, LONG),
    ("持续推进，长期坚持", None, LONG),
    ("2021年底前完成并长期坚持", "2021-12-31", BOTH),
    ("2021年6月底前完成，并长期坚持", "2021-06-30", BOTH),
    ("2021年底前完成整改并长期坚持", "2021-12-31", BOTH),
    ("2021年底前完成，长期坚持", "2021-12-31", BOTH),
    ("立行立改，长期坚持", "2026-03-09", BOTH),
    # full-width, stray spaces, closing punctuation
    ("２０２１－０６－３０", "2021-06-30", DATE),
    ("２０２１／６／３０", "2021-06-30", DATE),
    ("２０２１．０６", "2021-06-30", DATE),
    ("２０２１年６月底前", "2021-06-30", DATE),
    ("2021 年 6 月 30 日", "2021-06-30", DATE),
    ("  2021年底前。 ", "2021-12-31", DATE),
    ("2021\u3000年底前", "2021-12-31", DATE),
    ("2021—06—30", "2021-06-30", DATE),
    ("“十四五” 末", "2025-12-31", DATE),
    ("2021年底前完成 ， 并长期坚持", "2021-12-31", BOTH),
]

SEED_PHRASES = [
    ("到2025年年底", "2025-12-31", DATE),  # 003 L55: "到2025年年底，国考断面水质优良率达到97.3%…"
    ("到2024年年底", "2024-12-31", DATE),  # 003 L61: "到2024年年底，基本完成农村“千人以上”…"
    ("到2023年年底", "2023-12-31", DATE),  # 003 L76: "到2023年年底，全省所有化工园区完成认定工作…"
    ("到 2025 年", "2025-12-31", DATE),  # 000 L159: "“十四五”具体指标。到 2025 年，全省绿色低碳发展水平…"
    ("到 2023 年底", "2023-12-31", DATE),  # 000 L488: "到 2023 年底，全省钢铁企业超低排放改造取得明显进展"
    ("到 2023 年底前", "2023-12-31", DATE),  # 000 L510: "到 2023 年底前，湖南华菱湘潭钢铁有限公司完成…"
    ("到“十四五”末", "2025-12-31", DATE),  # 000 L502
    ("至“十四五”末", "2025-12-31", DATE),  # 001 L645
    ("2022年6月底", "2022-06-30", DATE),  # 001 L699: "2022年6月底全面实现环境执法着装上岗"
    ("2022年底", "2022-12-31", DATE),  # 001 L699: "2022年底各级生态环境执法队伍…配备执法车辆"
]


@pytest.mark.parametrize(("text", "expected", "kind"), FORMS + SEED_PHRASES)
def test_every_form_of_the_grammar(text: str, expected: str | None, kind: str) -> None:
    parsed = parse(text)
    assert parsed == ParsedDeadline(d(expected) if expected else None, kind, text.strip())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2021, 6, 30), "2021-06-30"),
        (dt.datetime(2021, 6, 30, 17, 45), "2021-06-30"),
        (44377, "2021-06-30"),
        (44377.0, "2021-06-30"),
        (44377.99, "2021-06-30"),
        (1, "1900-01-01"),
        (59, "1900-02-28"),
        (61, "1900-03-01"),
        (2958465, "9999-12-31"),
    ],
)
def test_excel_date_cells(value: object, expected: str) -> None:
    assert parse(value) == ParsedDeadline(d(expected), "date", expected)


def test_immediate_uses_the_configured_number_of_working_days() -> None:
    parsed = parse_deadline("立行立改", assigned_on=ASSIGNED_ON, add_workdays=add_weekdays, immediate_workdays=10)
    assert parsed.date == d("2026-03-16")


def test_working_days_are_counted_by_the_calendar_given() -> None:
    def every_other_day(start: dt.date, days: int) -> dt.date:
        return start + dt.timedelta(days=2 * days)

    assert parse_deadline("3个工作日内", assigned_on=ASSIGNED_ON, add_workdays=every_other_day).date == d("2026-03-08")


# --- errors --------------------------------------------------------------------------------------

UNKNOWN = [
    "尽快",
    "按计划",
    "2021",
    "abc",
    "6/30",
    "2021年6月前",  # ambiguous (before June, or by the end of June?): refused, 6月底前 is clear
    "2025年前",  # ambiguous in the same way
    "2021年第5季度",
    "2021年中",
    "十四五前",
    "十五末",
    "0个工作日内",
    "21-06-30",
    "2021/6-30",
    "20210630",
    "“”",
    "并",
    "完成",
    "到",
]


@pytest.mark.parametrize("text", UNKNOWN)
def test_text_outside_the_grammar_is_refused_with_the_text_quoted(text: str) -> None:
    with pytest.raises(DeadlineError) as caught:
        parse(text)
    assert str(caught.value) == f"无法识别的时限要求：“{text}”"
    assert caught.value.text == text


@pytest.mark.parametrize(
    "text", ["2021-02-30", "2021年2月30日", "2021年13月", "2021.13", "2021年0月", "2021年6月31日", "2月30日前"]
)
def test_dates_that_do_not_exist_are_refused(text: str) -> None:
    with pytest.raises(DeadlineError, match=f"时限要求“{re.escape(text)}”中的日期不存在"):
        parse(text)


@pytest.mark.parametrize("text", ["6月底前", "6月30日前", "年底前", "立行立改", "15个工作日内", "30日内"])
def test_text_that_counts_from_the_assignment_needs_the_assignment_date(text: str) -> None:
    with pytest.raises(DeadlineError, match=f"时限要求“{text}”.*需要交办日期"):
        parse_deadline(text, add_workdays=add_weekdays)


@pytest.mark.parametrize("text", ["立行立改", "15个工作日内", "立行立改，长期坚持"])
def test_working_days_need_the_calendar(text: str) -> None:
    with pytest.raises(DeadlineError, match=f"时限要求“{text}”按工作日计算，需要工作日历"):
        parse_deadline(text, assigned_on=ASSIGNED_ON)


@pytest.mark.parametrize("value", ["", "   ", "\u3000", None])
def test_empty_is_refused(value: object) -> None:
    with pytest.raises(DeadlineError, match="时限要求不能为空"):
        parse(value)


@pytest.mark.parametrize("value", [0, -1, 0.5, 60, 2958466, 1e20, 10**30, math.nan, math.inf, -math.inf, True])
def test_impossible_excel_serials_are_refused(value: object) -> None:
    with pytest.raises(DeadlineError, match=f"无法识别的时限要求：“{re.escape(str(value))}”"):
        parse(value)


def test_other_cell_types_are_refused() -> None:
    with pytest.raises(DeadlineError, match="无法识别的时限要求"):
        parse(["2021-06-30"])


# --- properties ----------------------------------------------------------------------------------

FULL_WIDTH = str.maketrans("0123456789-/.", "０１２３４５６７８９－／．")
dates = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))
years = st.integers(min_value=1000, max_value=9999)
months = st.integers(min_value=1, max_value=12)


@st.composite
def as_written(draw: st.DrawFn, text: str) -> str:
    """``text`` as a clerk might type it: maybe full-width, maybe with stray spaces."""
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    if draw(st.booleans()):
        spaces = draw(st.lists(st.sampled_from(["", "", " ", "\u3000"]), min_size=len(text), max_size=len(text)))
        text = "".join(space + char for space, char in zip(spaces, text, strict=True))
    return text


DAY_FORMS = [
    "{y}-{m:02d}-{d:02d}",
    "{y}-{m}-{d}",
    "{y}/{m}/{d}",
    "{y}.{m}.{d}",
    "{y}.{m:02d}.{d:02d}",
    "{y}年{m}月{d}日",
    "{y}年{m}月{d}日前",
    "{y}年{m}月{d}日之前",
    "{y}年{m}月{d}日前完成",
    "{y}年{m:02d}月{d:02d}日",
    "到{y}年{m}月{d}日",
]
MONTH_FORMS = [
    "{y}年{m}月",
    "{y}年{m}月底",
    "{y}年{m}月底前",
    "{y}年{m}月末",
    "{y}年{cn}月底前",
    "{y}.{m:02d}",
    "{y}-{m:02d}",
    "{y}/{m}",
]
QUARTER_FORMS = ["{y}年{cn}季度", "{y}年第{cn}季度", "{y}年{q}季度", "{y}年第{q}季度"]
YEAR_FORMS = [
    "{y}年",
    "{y}年底",
    "{y}年底前",
    "{y}年年底",
    "{y}年年底前",
    "{y}年末",
    "{y}年内",
    "到{y}年年底",
    "到{y}年",
    "到 {y} 年",
]


@given(st.sampled_from(DAY_FORMS), dates, st.data())
def test_every_day_form_parses_back_to_its_date(form: str, day: dt.date, data: st.DataObject) -> None:
    text = data.draw(as_written(form.format(y=day.year, m=day.month, d=day.day)))
    assert parse(text) == ParsedDeadline(day, "date", text.strip())


@given(st.sampled_from(MONTH_FORMS), years, months, st.data())
def test_month_forms_mean_the_last_day_of_the_month(form: str, year: int, month: int, data: st.DataObject) -> None:
    text = data.draw(as_written(form.format(y=year, m=month, cn=CN_MONTHS[month])))
    assert parse(text).date == month_end(year, month)


@given(st.sampled_from(["{m}月底前", "{m}月底", "{cn}月底前", "{m}月"]), months)
def test_month_without_a_year_takes_the_year_of_the_assignment(form: str, month: int) -> None:
    assert parse(form.format(m=month, cn=CN_MONTHS[month])).date == month_end(ASSIGNED_ON.year, month)


@given(st.sampled_from(QUARTER_FORMS), years, st.integers(min_value=1, max_value=4), st.data())
def test_quarter_forms_mean_the_quarter_end(form: str, year: int, quarter: int, data: st.DataObject) -> None:
    text = data.draw(as_written(form.format(y=year, q=quarter, cn=CN[quarter])))
    assert parse(text).date == month_end(year, 3 * quarter)


@given(st.sampled_from(YEAR_FORMS), years, st.data())
def test_year_forms_mean_the_last_day_of_the_year(form: str, year: int, data: st.DataObject) -> None:
    text = data.draw(as_written(form.format(y=year)))
    assert parse(text).date == dt.date(year, 12, 31)


@given(years)
def test_the_first_half_ends_on_june_30_before_the_second(year: int) -> None:
    first, second = parse(f"{year}年上半年").date, parse(f"{year}年下半年").date
    assert first == dt.date(year, 6, 30)
    assert second == dt.date(year, 12, 31)
    assert first < second


@given(st.sampled_from(["并长期坚持", "，并长期坚持", "，长期坚持", "并持续推进"]), dates)
def test_a_long_term_tail_keeps_the_date(tail: str, day: dt.date) -> None:
    assert parse(f"{day.year}年{day.month}月{day.day}日前完成{tail}") == ParsedDeadline(
        day, "date_and_long_term", f"{day.year}年{day.month}月{day.day}日前完成{tail}"
    )


NUMERALS = set("0123456789" + CN + "两〇")
KEYWORDS = ("长期", "持续推进", "立行立改", "立即整改", "年底", "年末", "年内", "年度")
GRAMMAR_CHARS = (
    "年月日号底末前之以内上下半季度第期间时规划完成整改并且长坚持续推进立行即工作个天自然交办后到至今本"
    + '“”"-/. ，、。'
)
noise = st.text(st.sampled_from(GRAMMAR_CHARS) | st.characters(), max_size=24)


@given(noise)
def test_text_without_numbers_or_keywords_never_yields_a_date(text: str) -> None:
    normalised = unicodedata.normalize("NFKC", text)
    assume(not NUMERALS & set(normalised) and not any(ch.isdigit() for ch in normalised))
    assume(not any(keyword in normalised for keyword in KEYWORDS))
    with pytest.raises(DeadlineError):
        parse(text)


@given(st.text(st.sampled_from(GRAMMAR_CHARS + "0123456789十四五一二三") | st.characters(), max_size=24))
def test_any_text_parses_or_raises_a_deadline_error(text: str) -> None:
    try:
        parsed = parse(text)
    except DeadlineError as error:
        assert re.search(r"[\u4e00-\u9fff]", str(error))
        return
    assert parsed.kind in {"date", "long_term", "date_and_long_term"}
    assert (parsed.date is None) == (parsed.kind == "long_term")


@given(st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)), st.floats(0, 0.999))
def test_excel_serials_round_trip_with_dates(day: dt.date, time_of_day: float) -> None:
    serial = (day - EXCEL_EPOCH).days
    assert parse(serial).date == day
    assert parse(serial + time_of_day).date == day


@given(st.integers(min_value=61, max_value=2958465))
def test_every_serial_from_1900_03_01_is_a_date(serial: int) -> None:
    assert (parse(serial).date - EXCEL_EPOCH).days == serial
