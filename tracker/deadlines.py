"""Deadline text (时限要求) as government sheets write it, turned into the date in force (DESIGN §5).

Owns the grammar of deadline text and of Excel date cells: ``parse_deadline`` reads ``2021年6月底前``,
``到 2025 年``, ``“十四五”末``, ``立行立改``, ``长期坚持``, ``2021年底前完成并长期坚持``, ``15个工作日内`` …
and returns the date in force and the deadline kind (``models.DEADLINE_KINDS``). A month, quarter,
half-year, year or five-year plan means its last day. Text outside the grammar is a ``DeadlineError``,
never a guess.

Pure: no Flask, no database, no clock. Text without a year takes the year of ``assigned_on`` (交办日期);
working days are counted by the ``add_workdays`` the caller passes in (the working-day calendar).

A text is read as ``[到|至…] <date> [完成(整改)] [，并长期坚持]``: the optional long-term tail is split
off first, then the rest must match one rule of ``_RULES`` whole.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from tracker.i18n import N_, Msg

AddWorkdays = Callable[[dt.date, int], dt.date]

# Excel's 1900 date system: serial 1 is 1900-01-01, serial 60 is the 1900-02-29 that never was (kept
# for Lotus 1-2-3 compatibility), so from serial 61 (1900-03-01) on, serial = days since 1899-12-30.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_FAKE_LEAP_DAY = 60
_EXCEL_MAX_SERIAL = 2958465  # 9999-12-31


class DeadlineError(ValueError):
    """A deadline that cannot be read; the message (a ``Msg``) is Chinese and quotes the text
    (无法识别的时限要求：“…”)."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text  # the offending text as given, so an importer can name the row and cell


@dataclass(frozen=True)
class ParsedDeadline:
    """What a deadline text means."""

    date: dt.date | None  # the date in force; None for 长期坚持
    kind: str  # "date" | "long_term" | "date_and_long_term" (models.DEADLINE_KINDS)
    text: str  # the original text, stripped (for Excel date cells: the ISO date)


@dataclass(frozen=True)
class _Context:
    """What a rule may need beyond its match: the text (for messages) and where to count from."""

    text: str
    assigned_on: dt.date | None
    add_workdays: AddWorkdays | None
    immediate_workdays: int

    def unknown(self) -> DeadlineError:
        return DeadlineError(Msg("无法识别的时限要求：“{text}”", text=self.text), self.text)

    def need_assigned_on(self) -> dt.date:
        if self.assigned_on is None:
            raise DeadlineError(Msg("时限要求“{text}”没有写明年份或起算日，需要交办日期才能确定", text=self.text),
                                self.text)
        return self.assigned_on

    def need_add_workdays(self) -> AddWorkdays:
        if self.add_workdays is None:
            raise DeadlineError(Msg("时限要求“{text}”按工作日计算，需要工作日历", text=self.text), self.text)
        return self.add_workdays


# --- numbers and dates -------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "两": 2} | {digit: value for value, digit in enumerate("一二三四五六七八九", start=1)}


def _number(token: str, ctx: _Context) -> int:
    """An arabic number, or a Chinese one up to 99 (六, 十二, 二十, 三十一)."""
    if token.isascii() and token.isdigit():
        return int(token)
    tens, has_ten, units = token.partition("十")
    if not has_ten:
        if len(token) != 1:
            raise ctx.unknown()
        return _CN_DIGITS[token]
    if len(tens) > 1 or len(units) > 1 or tens in ("零", "〇"):
        raise ctx.unknown()
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _no_such_date(ctx: _Context) -> DeadlineError:
    return DeadlineError(Msg("时限要求“{text}”中的日期不存在", text=ctx.text), ctx.text)


def _make_date(year: int, month: int, day: int, ctx: _Context) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise _no_such_date(ctx) from None


def _month_end(year: int, month: int, ctx: _Context) -> dt.date:
    if not 1 <= month <= 12 or not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise _no_such_date(ctx)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def excel_date(serial: float) -> dt.date:
    """The date of an Excel serial (1900 date system); a fraction (time of day) is dropped."""
    if isinstance(serial, bool) or not 1 <= serial < _EXCEL_MAX_SERIAL + 1:  # also refuses NaN
        raise DeadlineError(Msg("无法识别的时限要求：“{text}”（不是有效的 Excel 日期）", text=serial), str(serial))
    days = int(serial)
    if days == _EXCEL_FAKE_LEAP_DAY:
        raise DeadlineError(Msg("无法识别的时限要求：“{text}”（Excel 日期 1900年2月29日并不存在）", text=serial),
                            str(serial))
    if days < _EXCEL_FAKE_LEAP_DAY:
        days += 1  # before the fake leap day the serials are one day "late"
    return _EXCEL_EPOCH + dt.timedelta(days=days)


# --- rule handlers: (match, context) -> the date in force ---------------------------------------


def _year(match: re.Match[str], ctx: _Context) -> int:
    """The year written, or (for 6月底前, 年底前) the year of the 交办日期."""
    written = match.groupdict().get("y")
    return int(written) if written else ctx.need_assigned_on().year


def _on_day(match: re.Match[str], ctx: _Context) -> dt.date:
    return _make_date(_year(match, ctx), _number(match["m"], ctx), _number(match["d"], ctx), ctx)


def _on_month(match: re.Match[str], ctx: _Context) -> dt.date:
    return _month_end(_year(match, ctx), _number(match["m"], ctx), ctx)


def _on_quarter(match: re.Match[str], ctx: _Context) -> dt.date:
    return _month_end(_year(match, ctx), 3 * _number(match["q"], ctx), ctx)


def _on_half(match: re.Match[str], ctx: _Context) -> dt.date:
    return _month_end(_year(match, ctx), 6 if match["half"] == "上" else 12, ctx)


def _on_year(match: re.Match[str], ctx: _Context) -> dt.date:
    return _month_end(_year(match, ctx), 12, ctx)


def _on_plan(match: re.Match[str], ctx: _Context) -> dt.date:
    # The Nth five-year plan (十N五) runs 1951+5N .. 1955+5N since the third (1966–1970): 十四五 = 2021–2025.
    return dt.date(1955 + 5 * (10 + _CN_DIGITS[match["n"]]), 12, 31)


def _on_immediate(match: re.Match[str], ctx: _Context) -> dt.date:
    # 立行立改: "change at once", given a set number of working days from 交办.
    return ctx.need_add_workdays()(ctx.need_assigned_on(), ctx.immediate_workdays)


def _count(match: re.Match[str], ctx: _Context) -> int:
    count = _number(match["n"], ctx)
    if count < 1:
        raise ctx.unknown()
    return count


def _on_workdays(match: re.Match[str], ctx: _Context) -> dt.date:
    return ctx.need_add_workdays()(ctx.need_assigned_on(), _count(match, ctx))


def _on_calendar_days(match: re.Match[str], ctx: _Context) -> dt.date:
    return ctx.need_assigned_on() + dt.timedelta(days=_count(match, ctx))


# --- the grammar ---------------------------------------------------------------------------------

_Y = r"(?P<y>[0-9]{4})"
_NUM = r"[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3}"
_M = rf"(?P<m>{_NUM})"
_D = rf"(?P<d>{_NUM})"
_COUNT = r"[0-9]{1,3}|[一二两三四五六七八九十]{1,3}"
_BEFORE = r"(?:之前|以前|前)?"  # only after a day or 底/末: "2021年6月前" is ambiguous and refused
_END = rf"(?:底|末){_BEFORE}"  # 底 / 末 / 底前 / 末之前
_PREFIX = r"(?:到|至|截至|截止到?|于|在)?"  # 到2025年年底, 至“十四五”末
_DONE = r"(?:完成(?:整改)?(?:任务)?)?"  # 2025年12月底前完成, 2021年底前完成整改
_FROM_ASSIGNMENT = r"(?:自?交办(?:之日起|后))?"

Handler = Callable[[re.Match[str], _Context], dt.date]


def _rule(head: str, handler: Handler) -> tuple[re.Pattern[str], Handler]:
    return re.compile(f"{_PREFIX}(?:{head}){_DONE}"), handler


# Tried in order against the whole (normalised) text, long-term tail removed; the first match wins.
_RULES: tuple[tuple[re.Pattern[str], Handler], ...] = (
    _rule(_Y + r"(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})" + _BEFORE, _on_day),  # 2021-06-30
    _rule(_Y + r"[-/.](?P<m>[0-9]{1,2})", _on_month),  # 2021.06, 2021-06, 2021/6
    _rule(rf"{_Y}年{_M}月{_D}[日号]{_BEFORE}", _on_day),  # 2021年6月30日前
    _rule(rf"{_Y}年{_M}月份?(?:{_END}|内)?", _on_month),  # 2021年6月, 2021年6月底前, 2021年六月末
    _rule(rf"{_Y}年(?P<half>上|下)半年(?:{_END}|内)?", _on_half),  # 2021年上半年
    _rule(rf"{_Y}年第?(?P<q>[1-4一二三四])季度(?:{_END}|内)?", _on_quarter),  # 2021年第三季度, 2021年1季度
    _rule(rf"{_Y}(?:年年{_END}|年度?(?:{_END}|内)?)", _on_year),  # 2021年底前, 2021年年底, 2021年内, 2025年
    _rule(rf"十(?P<n>[一二三四五六七八九])五(?:规划)?(?:期?末{_BEFORE}|末期|期间|时期|期内)?", _on_plan),  # 十四五末
    _rule(rf"{_M}月{_D}[日号]{_BEFORE}", _on_day),  # 6月30日前 (交办 year)
    _rule(rf"{_M}月份?(?:{_END}|内)?", _on_month),  # 6月底前, 十二月底 (交办 year)
    _rule(rf"[今本]?年度?(?:{_END}|内)", _on_year),  # 年底前, 今年内 (交办 year)
    _rule(r"立行立改|立即整改", _on_immediate),
    _rule(rf"{_FROM_ASSIGNMENT}(?P<n>{_COUNT})个?工作日内", _on_workdays),  # 15个工作日内
    _rule(rf"{_FROM_ASSIGNMENT}(?P<n>{_COUNT})(?:个?自然日|日|天)内", _on_calendar_days),  # 30日内, 七天内
)

# 长期坚持 on its own, or after a date: "2021年底前完成并长期坚持", "2021年6月底前完成，并长期坚持".
_LONG_TERM_TAIL = re.compile(r"(?:[,;、]?(?:并且?|且|同时)?(?:长期坚持|长期保持|持续推进|长期))+$")

_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−", "-"))
_NOISE = re.compile(r"[\s“”\"'‘’「」『』〝〞]")  # spaces anywhere, quotes around “十四五”


def _normalise(text: str) -> str:
    """Full-width to half-width (NFKC), one kind of dash, no spaces or quotes, no closing punctuation."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    return _NOISE.sub("", text).rstrip("。.,;、")


def _parse_text(ctx: _Context) -> ParsedDeadline:
    normalised = _normalise(ctx.text)
    head = _LONG_TERM_TAIL.sub("", normalised)
    long_term = head != normalised
    if not head:
        if long_term:
            return ParsedDeadline(None, "long_term", ctx.text)
        raise ctx.unknown()
    for pattern, handler in _RULES:
        match = pattern.fullmatch(head)
        if match:
            return ParsedDeadline(handler(match, ctx), "date_and_long_term" if long_term else "date", ctx.text)
    raise ctx.unknown()


def parse_deadline(
    value: object,
    *,
    assigned_on: dt.date | None = None,
    add_workdays: AddWorkdays | None = None,
    immediate_workdays: int = 5,
) -> ParsedDeadline:
    """Read a 时限要求: text, or an Excel cell (a date, a datetime or a 1900-system serial number).

    ``assigned_on`` (交办日期) supplies the year of text without one and the start of 立行立改 and
    ``N个工作日内``/``N日内``; ``add_workdays(start, n)`` counts working days; 立行立改 allows
    ``immediate_workdays`` of them. Raises ``DeadlineError`` (Chinese, quoting the text) otherwise.
    """
    if value is None:  # an empty Excel cell
        raise DeadlineError(N_("时限要求不能为空"))
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return ParsedDeadline(value, "date", value.isoformat())
    if isinstance(value, int | float) and not isinstance(value, bool):
        day = excel_date(value)
        return ParsedDeadline(day, "date", day.isoformat())
    if not isinstance(value, str):
        raise DeadlineError(Msg("无法识别的时限要求：“{text}”", text=value), str(value))
    text = value.strip()
    if not text:
        raise DeadlineError(N_("时限要求不能为空"), value)
    return _parse_text(_Context(text, assigned_on, add_workdays, immediate_workdays))
