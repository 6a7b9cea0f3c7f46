"""The data rows of the ledger's sheets as SpreadsheetML, and the process that writes them for a large
export (``ledger._Writer``). Kept apart from ``tracker.ledger`` so that process imports only this: the
standard library and one XlsxWriter helper, not the application."""

from __future__ import annotations

import datetime as dt
import functools
import io
import pickle
import re
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from xlsxwriter.utility import xl_col_to_name

MAX_WIDTH = 60  # column width cap, in Latin characters
HEADER_ROWS = 2  # title + column headers on every ledger-like sheet


def width(text: str) -> int:
    """Display width in Latin characters: a CJK (wide) character counts two."""
    longest = max((line for line in text[:MAX_WIDTH * 2].split("\n")), key=len, default="")
    return sum(map(char_width, longest))


@functools.cache
def char_width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


# The cells of the data rows, written as SpreadsheetML here rather than through XlsxWriter's per-cell API,
# which costs ~8 µs a cell — most of a 10⁵-row export. They are what XlsxWriter writes in constant_memory
# mode, byte for byte: inline strings (control characters as _xHHHH_, a literal _xHHHH_ escaped, & < >
# escaped, xml:space="preserve" for text with leading or trailing whitespace, at most 32767 UTF-16 units),
# dates as serial numbers, numbers as %.16G, and the format index of the cell or else of its column.
_ESCAPED_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
STRING_MAX = 32767  # Excel's longest text, in UTF-16 units
EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 0, for dates after 1900-02-28 (Excel's 1900 leap-year bug)
_LEAP_BUG = dt.date(1900, 2, 28)
_COLUMN_LETTERS = [xl_col_to_name(c) for c in range(64)]


def _inline_string(text: str) -> str:
    if len(text) > STRING_MAX // 2 and len(text.encode("utf-16-le", "surrogatepass")) // 2 > STRING_MAX:
        text = _utf16_prefix(text, STRING_MAX)
    if "_x" in text:
        text = _ESCAPED_ESCAPE.sub(r"_x005F\1", text)
    if not text.isprintable():  # a line break, a tab, a control character or a non-character
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", text)
        text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<is><t{space}>{text}</t></is>"


SHORT = 40  # texts this short repeat from row to row (units, regions, states, 是): each is escaped once


@functools.lru_cache(maxsize=1 << 16)
def _short_inline_string(text: str) -> str:
    return _inline_string(text)


def _utf16_prefix(text: str, units: int) -> str:
    length = 0
    for index, char in enumerate(text):
        length += 2 if ord(char) > 0xFFFF else 1
        if length > units:
            return text[:index]
    return text


def _serial(day: dt.date) -> int:
    days = (day - EXCEL_EPOCH).days
    return days if day > _LEAP_BUG else days - 1  # Excel counts a 29 February 1900


class Rows:
    """The data rows of one sheet, written as XML to a temporary file as they come, and copied into the
    sheet XlsxWriter made when the workbook is assembled (``_assemble``). Widths follow the widest text
    seen, as on ``_Sheet``."""

    def __init__(self, fmt: Any, widths: list[int], path: Path | None = None) -> None:
        """``fmt`` names the text and date formats by index (``text_xf``, ``date_xf``)."""
        self.fmt = fmt
        self.widths = list(widths)
        self.row = HEADER_ROWS  # the next row (0-based): after the title and the headers
        self.fh: IO[bytes] = open(path, "w+b") if path else tempfile.TemporaryFile()  # noqa: SIM115

    def write(self, values: list[Any], numbers: dict[int, int]) -> None:
        number = self.row + 1
        text_xf, widths = self.fmt.text_xf, self.widths
        cells = [f'<row r="{number}">']
        for col, value in enumerate(values):
            if value is None or value == "":
                continue
            ref = f"{_COLUMN_LETTERS[col]}{number}"
            if isinstance(value, str):
                inline = _short_inline_string(value) if len(value) <= SHORT else _inline_string(value)
                cells.append(f'<c r="{ref}" s="{text_xf}" t="inlineStr">{inline}</c>')
                # Only measure text that may be wider than the column already is (a character is at most two).
                if 2 * len(value) > widths[col] < MAX_WIDTH:
                    widths[col] = max(widths[col], width(value))
            elif isinstance(value, dt.date):
                cells.append(f'<c r="{ref}" s="{self.fmt.date_xf}"><v>{_serial(value)}</v></c>')
                widths[col] = max(widths[col], 10)
            else:
                cells.append(f'<c r="{ref}" s="{numbers.get(col, text_xf)}"><v>{value:.16G}</v></c>')
                widths[col] = max(widths[col], len(str(value)) + 2)
        cells.append("</row>")
        self.fh.write("".join(cells).encode())
        self.row += 1

    @property
    def size(self) -> int:
        return self.fh.seek(0, io.SEEK_END)

    def copy_to(self, out: IO[bytes]) -> None:
        self.fh.seek(0)
        shutil.copyfileobj(self.fh, out, 1 << 20)

    def close(self) -> None:
        self.fh.close()


def write_rows_main() -> None:
    """The writer process: each part's rows into ``FOLDER/KEY.xml`` as they come on standard input; then
    the widths on standard output. Arguments: this file, the text and date format indices, the folder."""
    text_xf, date_xf, folder = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])  # argv[1]: this file
    fmt = SimpleNamespace(text_xf=text_xf, date_xf=date_xf)
    parts: dict[int, Rows] = {}
    source = sys.stdin.buffer
    while (batch := pickle.load(source)) is not None:
        for item in batch:
            if item[0] == "open":
                parts[item[1]] = Rows(fmt, item[2], folder / f"{item[1]}.xml")
            else:
                parts[item[0]].write(item[1], item[2])
    for part in parts.values():
        part.fh.close()
    pickle.dump({key: part.widths for key, part in parts.items()}, sys.stdout.buffer)
    sys.stdout.buffer.flush()


