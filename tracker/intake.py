"""Excel ledger intake (导入整改台账, DESIGN §7): read a government sheet (.xlsx or .xls, as Excel and WPS
write them), validate every row, then write the tasks with their history in one go.

Three steps, each its own part of this module:

1. **Reading** turns the workbook into a grid of plain values: merged cells fill every cell they cover,
   percent-formatted numbers become percents, a formula with no cached value is marked. A file that is
   not Excel, is damaged, password-protected, too large or empty is refused with a Chinese message.
2. **Validation** finds the header row among the first rows, matches the columns by name and synonym
   (``ledger_columns``), and resolves every row against the channels, rounds, regions and units loaded
   once into a ``Directory``. Every problem is collected with its Excel row, column and reason.
3. **Writing** happens only when the whole file is valid (and not a dry run): created tasks get their
   history as dated events (导入历史) so a report as of a past date is right, and a baseline of the
   escalation ladder so nothing is sent retroactively (DESIGN §6). The caller commits.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import os
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO

import openpyxl
import xlrd
from openpyxl.utils import get_column_letter
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from tracker import calendars, escalation, schedule, settings
from tracker.accounts import create_region, create_unit
from tracker.audit import ActionError, event_fields, record_event, record_first_events
from tracker.deadlines import DeadlineError, ParsedDeadline, excel_date, parse_deadline
from tracker.i18n import N_
from tracker.ledger_columns import LEDGER_COLUMNS, STATE_WORDS, MilestoneLine, parse_milestones
from tracker.models import (
    CATEGORIES,
    TASK_KINDS,
    Channel,
    ChannelAlias,
    EscalationRecord,
    Membership,
    Milestone,
    Problem,
    ProgressReport,
    Region,
    Role,
    Round,
    RoundAlias,
    Task,
    TaskUnit,
    Unit,
    UnitAlias,
    UnitKind,
)
from tracker.permissions import in_subtree
from tracker.timeutil import local_date
from tracker.workflow import STATE_LABELS, State

MAX_FILE_BYTES = 20 * 1024 * 1024  # larger files are refused before they are parsed
# Limits checked before a workbook is parsed, so a zip bomb or a sheet of a million rows is refused in a
# moment: what the .xlsx archive declares (Python's zipfile never inflates a part past its declared size),
# then one streaming pass over each sheet's XML for its rows, columns and cells.
MAX_ARCHIVE_MEMBERS = 1000  # a workbook has a few dozen parts
MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024  # all parts together, unpacked
MAX_ROWS = 50_000  # rows of one sheet (the ledger of a province is a few thousand)
MAX_COLUMNS = 200  # columns of one sheet (the ledger has about forty)
MAX_CELLS = 2_000_000  # cells of one sheet
HEADER_SCAN_ROWS = 10  # the header row is looked for among the first rows (title rows above it are normal)
MIN_HEADER_MATCHES = 3  # a row naming fewer ledger columns is not a header row

ZIP_MAGIC = b"PK\x03\x04"  # .xlsx
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")  # .xls, and password-protected .xlsx (an encrypted OLE container)
ENCRYPTED_MARKERS = tuple(name.encode("utf-16-le") for name in ("EncryptedPackage", "EncryptionInfo"))
ENCRYPTED_MESSAGE = "文件已加密（设有密码），请去除密码后再导入"
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")

REQUIRED_KEYS = ("code", "channel", "round", "title", "region")
# Required except when every row is 待交办 (nothing has been handed out yet).
ASSIGN_KEYS = ("leads", "deadline_text", "assigned_on")
# Ledger text fields: (key in the sheet, Task attribute). Updated by --update when the cell has a value.
TEXT_FIELDS = (
    ("title", "title"),
    ("description", "description"),
    ("kind", "kind"),
    ("category", "category"),
    ("leader", "responsible_leader"),
    ("contact", "contact"),
    ("target", "target"),
    ("measures", "measures"),
    ("accountability", "accountability"),
    ("remarks", "remarks"),
)
FIELD_LIMITS = {"code": 100, "title": 300, "leader": 200, "contact": 200, "closure_doc_no": 100}
_LIST_SEPARATORS = re.compile(r"[、,，;；\s]+")
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")
_HEADER_NOISE = str.maketrans("", "", " \t\r\n\u3000（）()【】[]*＊:：")
GOVERNMENT_SUFFIXES = ("人民政府", "管委会", "管理委员会")
# (done, total, stage): how far an import is, for a background job's progress bar.
Progress = Callable[[int, int | None, str], None]
STAGE_READ, STAGE_VALIDATE, STAGE_WRITE = N_("正在读取文件"), N_("正在校验"), N_("正在写入")


# --- the report --------------------------------------------------------------------------------------


@dataclass
class ImportProblem:
    """One problem of the file: the Excel row (1-based; None for the file), column letter and reason."""

    row: int | None
    column: str
    message: str
    header: str = ""  # the column's header as written in the file

    def describe(self) -> str:
        """第N行 第X列（表头）：原因"""
        where = []
        if self.row:
            where.append(f"第{self.row}行")
        if self.column:
            where.append(f"第{self.column}列" + (f"（{self.header}）" if self.header else ""))
        return (" ".join(where) + "：" if where else "") + self.message


@dataclass
class ImportReport:
    file: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    created_units: list[str] = field(default_factory=list)
    created_regions: list[str] = field(default_factory=list)
    created_rounds: list[str] = field(default_factory=list)
    errors: list[ImportProblem] = field(default_factory=list)
    warnings: list[ImportProblem] = field(default_factory=list)
    rows: int = 0  # data rows read

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, message: str, row: int | None = None, column: str = "", header: str = "") -> None:
        self.errors.append(ImportProblem(row, column, message, header))

    def summary(self) -> str:
        counts = f"新建{self.created}项，更新{self.updated}项，未变{self.unchanged}项"
        if self.errors:
            return f"导入失败：发现{len(self.errors)}个问题，未写入任何数据"
        if self.dry_run:
            return f"校验通过（试运行，未写入）：将{counts}"
        return f"已导入：{counts}"

    def created_lines(self) -> list[str]:
        verb = "将新建" if self.dry_run else "新建"
        return [f"{verb}{label}：" + "、".join(names) for label, names in (
            ("地区", self.created_regions), ("单位", self.created_units), ("批次", self.created_rounds)) if names]


class IntakeFileError(Exception):
    """The file as a whole cannot be read (not Excel, damaged, encrypted, too large, empty)."""


# --- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Formula:
    """A formula cell with no cached value (saved by a program that does not calculate)."""

    text: str


@dataclass(frozen=True)
class CellError:
    """An Excel error value (#N/A, #REF! …)."""

    text: str


@dataclass
class Grid:
    """One sheet as plain values, rows and columns 0-based; merged ranges filled."""

    name: str
    rows: list[list[Any]]


def read_bytes(source: str | os.PathLike | BinaryIO, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refused when larger than ``max_bytes``."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise IntakeFileError(f"找不到文件“{path.name}”")
        if path.stat().st_size > max_bytes:
            raise IntakeFileError(f"文件超过{max_bytes // (1024 * 1024)}MB，请拆分后再导入")
        return path.read_bytes()
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise IntakeFileError(f"文件超过{max_bytes // (1024 * 1024)}MB，请拆分后再导入")
    return data


def read_workbook(data: bytes) -> list[Grid]:
    """Every sheet of an .xlsx or .xls file, told apart by content (WPS writes either under either name)."""
    if not data:
        raise IntakeFileError("文件为空")
    if data.startswith(ZIP_MAGIC):
        return _read_xlsx(data)
    if data.startswith(OLE_MAGIC):
        return _read_ole(data)
    raise IntakeFileError("不是 Excel 文件（只支持 .xlsx 和 .xls）")


def _read_ole(data: bytes) -> list[Grid]:
    if any(marker in data for marker in ENCRYPTED_MARKERS):
        raise IntakeFileError(ENCRYPTED_MESSAGE)
    try:
        book = xlrd.open_workbook(file_contents=data, formatting_info=True)
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise IntakeFileError(ENCRYPTED_MESSAGE) from None
        raise IntakeFileError("文件已损坏，或不是有效的 .xls 工作簿") from None
    except Exception:  # xlrd raises assorted errors (struct, index, assertion) on damaged files
        raise IntakeFileError("文件已损坏，或不是有效的 .xls 工作簿") from None
    for sheet in book.sheets():  # checked before the grids are built (an .xls holds up to 65536 × 256 cells)
        SheetSize(rows=sheet.nrows, columns=sheet.ncols, cells=sheet.nrows * sheet.ncols).check()
    return [_xls_grid(book, sheet) for sheet in book.sheets()]


def _xls_grid(book, sheet) -> Grid:
    rows = [[_xls_value(book, sheet, r, c) for c in range(sheet.ncols)] for r in range(sheet.nrows)]
    for rlo, rhi, clo, chi in sheet.merged_cells:
        _fill(rows, rlo, rhi - 1, clo, chi - 1)
    return Grid(sheet.name, rows)


def _xls_value(book, sheet, r: int, c: int) -> Any:
    cell = sheet.cell(r, c)
    kind = cell.ctype
    if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if kind == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate_as_datetime(cell.value, book.datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell.value
    if kind == xlrd.XL_CELL_ERROR:
        return CellError(xlrd.error_text_from_code.get(cell.value, "#ERROR"))
    if kind == xlrd.XL_CELL_NUMBER:
        fmt = book.format_map.get(book.xf_list[cell.xf_index].format_key) if cell.xf_index is not None else None
        return _number(cell.value, bool(fmt and _is_percent_format(fmt.format_str)))
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    return cell.value


def _is_percent_format(fmt: str) -> bool:
    """A real percent format (0%, 0.0%) scales the value by 100; a literal "%" in quotes (0"%") or
    after a backslash is only text, as the ledger export writes 完成进度."""
    unquoted = re.sub(r'"[^"]*"|\\.', "", fmt)
    return "%" in unquoted


def _number(value: float, percent: bool) -> int | float:
    if percent:
        value = round(value * 100, 6)
    return int(value) if float(value).is_integer() else value


def _read_xlsx(data: bytes) -> list[Grid]:
    try:
        check_archive(data)
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=False, data_only=True)
        formulas = _formula_cells(data)
    except IntakeFileError:
        raise
    except zipfile.BadZipFile:
        raise IntakeFileError("文件已损坏，无法读取") from None
    except Exception:  # openpyxl raises KeyError, ValueError, XML errors … on damaged or foreign zips
        raise IntakeFileError("文件已损坏，或不是有效的 .xlsx 工作簿") from None
    return [_xlsx_grid(ws, formulas.get(ws.title, {})) for ws in book.worksheets]


def check_archive(data: bytes) -> None:
    """Refuse an .xlsx whose parts unpack too large, or a sheet too large, before openpyxl reads it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > MAX_ARCHIVE_MEMBERS:
            raise IntakeFileError(f"文件包含的部件过多（超过{MAX_ARCHIVE_MEMBERS}个），不是有效的 .xlsx 工作簿")
        if sum(m.file_size for m in members) > MAX_UNCOMPRESSED_BYTES:
            raise IntakeFileError(f"文件解压后超过{MAX_UNCOMPRESSED_BYTES // (1024 * 1024)}MB，"
                                  "不像是整改台账，请检查文件或拆分后再导入")
        for member in members:
            if member.filename.startswith("xl/worksheets/") and member.filename.endswith(".xml"):
                with archive.open(member) as stream:
                    _check_sheet_size(stream)


_SHEET_TAG = re.compile(rb"<(?:\w+:)?(row|c|mergeCell)\b([^>]*)>")
_CELL_REF = re.compile(rb'\br="([A-Za-z]{0,3})(\d{1,9})"')
_MERGE_REF = re.compile(rb'\bref="[A-Za-z]{1,3}\d{1,9}:([A-Za-z]{1,3})(\d{1,9})"')


def _check_sheet_size(stream: BinaryIO) -> None:
    """One pass over a sheet's XML (``<row>``, ``<c>``, ``<mergeCell>``, as openpyxl places them: a missing
    ``r`` follows the one before), stopping at the first limit passed."""
    size = SheetSize()
    pending = b""
    while chunk := stream.read(1024 * 1024):
        pending += chunk
        boundary = max(len(pending) - 4096, 0)  # a tag beginning in the last 4 KB is read with the next chunk
        for match in _SHEET_TAG.finditer(pending):
            if match.start() >= boundary:
                break
            size.see(match.group(1), match.group(2))
        pending = pending[boundary:]
    for match in _SHEET_TAG.finditer(pending):
        size.see(match.group(1), match.group(2))


@dataclass
class SheetSize:
    """How far a sheet reaches, as openpyxl would lay it out (a far-away cell makes every cell up to it)."""

    rows: int = 0  # the last row number seen
    column: int = 0  # the last column number of the current row
    columns: int = 0
    cells: int = 0

    def see(self, tag: bytes, attributes: bytes) -> None:
        if tag == b"row":
            ref = _CELL_REF.search(attributes)
            self.rows = int(ref.group(2)) if ref else self.rows + 1
            self.column = 0
        elif tag == b"c":
            ref = _CELL_REF.search(attributes)
            self.column = _column_number(ref.group(1)) if ref and ref.group(1) else self.column + 1
            self.cells += 1
            if ref and int(ref.group(2)) > self.rows:
                self.rows = int(ref.group(2))
        else:
            ref = _MERGE_REF.search(attributes)
            if ref:
                self.rows = max(self.rows, int(ref.group(2)))
                self.column = _column_number(ref.group(1))
        self.columns = max(self.columns, self.column)
        self.check()

    def check(self) -> None:
        if self.rows > MAX_ROWS:
            raise IntakeFileError(f"工作表超过{MAX_ROWS}行（设了格式的空行也算），请删除多余的行或拆分后再导入")
        if self.columns > MAX_COLUMNS:
            raise IntakeFileError(f"工作表超过{MAX_COLUMNS}列（设了格式的空列也算），请删除多余的列后再导入")
        if self.cells > MAX_CELLS:
            raise IntakeFileError(f"工作表超过{MAX_CELLS}个单元格，请拆分后再导入")


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _formula_cells(data: bytes) -> dict[str, dict[tuple[int, int], str]]:
    """(row, column) → formula text of every formula cell, read only when the file has formulas."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        if not any(_FORMULA_TAG.search(archive.read(n)) for n in sheets):
            return {}
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    found: dict[str, dict[tuple[int, int], str]] = {}
    for ws in book.worksheets:
        cells = found.setdefault(ws.title, {})
        for r, row in enumerate(ws.iter_rows(values_only=True)):
            for c, value in enumerate(row):
                if isinstance(value, str) and value.startswith("="):
                    cells[(r, c)] = value
    book.close()
    return found


def _xlsx_grid(ws, formulas: dict[tuple[int, int], str]) -> Grid:
    rows = [[_xlsx_value(cell) for cell in row] for row in ws.iter_rows()]
    for (r, c), text in formulas.items():
        if r < len(rows) and c < len(rows[r]) and rows[r][c] is None:
            rows[r][c] = Formula(text)
    for rng in ws.merged_cells.ranges:
        _fill(rows, rng.min_row - 1, rng.max_row - 1, rng.min_col - 1, rng.max_col - 1)
    return Grid(ws.title, rows)


def _xlsx_value(cell) -> Any:
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value, _is_percent_format(cell.number_format or ""))
    if isinstance(value, str) and cell.data_type == "e":
        return CellError(value)
    return value


def _fill(rows: list[list[Any]], r0: int, r1: int, c0: int, c1: int) -> None:
    """A merged range: its top-left value fills every cell it covers."""
    if r0 >= len(rows) or c0 >= len(rows[r0]):
        return
    value = rows[r0][c0]
    for r in range(r0, min(r1, len(rows) - 1) + 1):
        row = rows[r]
        for c in range(c0, min(c1, len(row) - 1) + 1):
            row[c] = value


# --- the header ------------------------------------------------------------------------------------


def normalise_header(value: Any) -> str:
    """A header as compared: no spaces, line breaks, brackets or required-field stars."""
    return str(value).translate(_HEADER_NOISE).replace("／", "/") if value is not None else ""


HEADER_KEYS: dict[str, str] = {}
for _column in LEDGER_COLUMNS:
    for _name in (_column.header, *_column.synonyms):
        HEADER_KEYS.setdefault(normalise_header(_name), _column.key)
IMPORTABLE = {c.key for c in LEDGER_COLUMNS if c.importable}
HEADER_LABELS = {c.key: c.header for c in LEDGER_COLUMNS}


@dataclass
class Layout:
    """Where the header row is and which column carries which field."""

    header_row: int  # 0-based
    columns: dict[str, int]  # field key -> 0-based column
    headers: dict[int, str]  # 0-based column -> header as written
    unknown: list[int] = field(default_factory=list)

    def where(self, key: str) -> tuple[str, str]:
        col = self.columns.get(key)
        if col is None:
            return "", HEADER_LABELS.get(key, key)
        return get_column_letter(col + 1), self.headers[col]


def find_layout(grid: Grid) -> Layout | None:
    """The row among the first ``HEADER_SCAN_ROWS`` naming the most ledger columns (ties: the first)."""
    best: Layout | None = None
    for r, row in enumerate(grid.rows[:HEADER_SCAN_ROWS]):
        layout = _layout_of(r, row)
        if len(layout.columns) >= MIN_HEADER_MATCHES and (best is None or len(layout.columns) > len(best.columns)):
            best = layout
    return best


def _layout_of(r: int, row: list[Any]) -> Layout:
    layout = Layout(r, {}, {})
    for c, value in enumerate(row):
        if value is None or not str(value).strip():
            continue
        layout.headers[c] = str(value).strip()
        key = HEADER_KEYS.get(normalise_header(value))
        if key is None:
            layout.unknown.append(c)
        elif key not in layout.columns:  # a header merged across columns names the first one
            layout.columns[key] = c
    return layout


def _choose_sheet(grids: list[Grid]) -> tuple[Grid, Layout]:
    if not any(v is not None and str(v).strip() for g in grids for row in g.rows for v in row):
        raise IntakeFileError("工作表为空")
    found = [(g, layout) for g in grids if (layout := find_layout(g)) is not None]
    if not found:
        raise IntakeFileError(f"前{HEADER_SCAN_ROWS}行中没有找到台账表头（应含问题编号、问题名称、所在地区等列）")
    return max(found, key=lambda pair: len(pair[1].columns))


# --- the directory: everything a row may name, loaded once -------------------------------------------


@dataclass(eq=False)
class NewRegion:
    name: str
    parent: Region
    obj: Region | None = None

    @property
    def path(self) -> str:
        return self.parent.path


@dataclass(eq=False)
class NewUnit:
    name: str
    region: Region | NewRegion
    kind: str
    obj: Unit | None = None


@dataclass(eq=False)
class NewRound:
    name: str
    obj: Round | None = None


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text)


class Directory:
    """Channels, rounds, regions and units by name or alias, and what --create-missing will add."""

    def __init__(self, s: Session, root: Region):
        self.root = root
        self.channels = _by_name(s.scalars(select(Channel)),
                                 s.execute(select(ChannelAlias.alias, ChannelAlias.channel_id)))
        self.channel_names = list(self.channels)
        self.rounds = _by_name(s.scalars(select(Round)), s.execute(select(RoundAlias.alias, RoundAlias.round_id)))
        self.regions: dict[int, Region] = {r.id: r for r in s.scalars(select(Region))}
        self.regions_by_name: dict[str, list[Region]] = defaultdict(list)
        for region in self.regions.values():
            self.regions_by_name[_key(region.name)].append(region)
        units = {u.id: u for u in s.scalars(select(Unit).where(Unit.active.is_(True)))}
        self.units_by_name: dict[str, list[Unit]] = defaultdict(list)
        for unit in units.values():
            self.units_by_name[_key(unit.name)].append(unit)
        for alias, unit_id in s.execute(select(UnitAlias.alias, UnitAlias.unit_id)):
            if unit_id in units and units[unit_id] not in self.units_by_name[_key(alias)]:
                self.units_by_name[_key(alias)].append(units[unit_id])
        self.new_regions: dict[str, NewRegion] = {}
        self.new_units: dict[tuple[Any, str], NewUnit] = {}
        self.new_rounds: dict[str, NewRound] = {}

    def chain(self, region: Region | NewRegion) -> list[int]:
        """Region ids from the root of the tree down to ``region`` (a new region: down to its parent)."""
        return [int(part) for part in region.path.strip("/").split("/") if part]

    def region_label(self, region: Region) -> str:
        parent = self.regions.get(region.parent_id) if region.parent_id else None
        return f"{parent.name}{region.name}" if parent else region.name


def _by_name(rows: Iterable, aliases: Iterable) -> dict[str, Any]:
    found = {}
    by_id = {}
    for row in rows:
        found[_key(row.name)] = row
        by_id[row.id] = row
    for alias, owner_id in aliases:
        found.setdefault(_key(alias), by_id[owner_id])
    return found


# --- validation --------------------------------------------------------------------------------------


@dataclass
class RowPlan:
    """One valid row, resolved: what to create or update."""

    row: int  # Excel row number
    code: str
    channel: Channel
    round: Round | NewRound
    region: Region | NewRegion
    texts: dict[str, str]  # Task attribute -> value, only the cells with a value
    problem: str = ""
    leads: list[Unit | NewUnit] = field(default_factory=list)
    participants: list[Unit | NewUnit] = field(default_factory=list)
    state: str = State.rectifying.value  # the final state
    explicit_state: bool = False  # the sheet says the state (not inferred from the dates)
    completed: bool = False  # the sheet says 已完成/完成整改: 待验收 or 已销号 both agree with it
    assigned_on: dt.date | None = None
    deadline: ParsedDeadline | None = None
    deadline_text: str = ""
    progress: str = ""
    progress_on: dt.date | None = None  # 进展日期: of the latest report
    percent: int | None = None
    closure_applied_on: dt.date | None = None
    closed_on: dt.date | None = None
    verifier: Unit | None = None
    verifier_name: str = ""
    closure_doc_no: str = ""
    milestones: list[MilestoneLine] = field(default_factory=list)  # 阶段目标 (a created task's)
    existing: Task | None = None

    def identity(self) -> tuple:
        return (self.channel.id, id(self.round) if isinstance(self.round, NewRound) else self.round.id,
                _region_identity(self.region), self.code)


def _region_identity(region: Region | NewRegion) -> Any:
    return region.id if isinstance(region, Region) else ("new", region.name)


class RowReader:
    """One data row of the sheet: its cells by field, and its problems reported with row and column."""

    def __init__(self, values: list[Any], excel_row: int, layout: Layout, report: ImportReport):
        self.values, self.row, self.layout, self.report = values, excel_row, layout, report
        self.failed = False
        self.reported: set[str] = set()

    def raw(self, key: str) -> Any:
        col = self.layout.columns.get(key)
        return self.values[col] if col is not None and col < len(self.values) else None

    def error(self, key: str, message: str) -> None:
        letter, header = self.layout.where(key)
        self.report.error(message, self.row, letter, header)
        self.failed = True

    def warn(self, key: str, message: str) -> None:
        letter, header = self.layout.where(key)
        self.report.warnings.append(ImportProblem(self.row, letter, message, header))

    def value(self, key: str) -> Any:
        """The cell's value, with formulas without value and error values reported once (None then)."""
        value = self.raw(key)
        if not isinstance(value, Formula | CellError):
            return value
        if key not in self.reported:
            self.reported.add(key)
            self.error(key, f"公式{value.text}没有计算结果，请在 Excel 中重新计算并保存后再导入"
                       if isinstance(value, Formula) else f"单元格是错误值{value.text}")
        return None

    def text(self, key: str) -> str:
        return _as_text(self.value(key))

    def required(self, key: str) -> str:
        text = self.text(key)
        if not text and not self.failed_at(key):
            self.error(key, f"请填写{HEADER_LABELS[key]}")
        return text

    def failed_at(self, key: str) -> bool:
        return isinstance(self.raw(key), Formula | CellError)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.date() if value.time() == dt.time() else value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass
class Validation:
    """What validating a file needs besides the rows: the session, the scope and the options."""

    s: Session
    directory: Directory
    actor: Membership | None
    today: dt.date
    create_missing: bool
    report: ImportReport
    add_workdays: Any
    immediate_workdays: int


def _plan_row(v: Validation, reader: RowReader) -> RowPlan | None:
    code = reader.required("code")
    title = reader.required("title")
    channel = _channel(v, reader)
    round_ = _round(v, reader)
    region = _region(v, reader)
    for key, limit in FIELD_LIMITS.items():
        if len(reader.text(key)) > limit:
            reader.error(key, f"内容过长（最多{limit}个字）")
    if channel is None or round_ is None or region is None or not code or not title:
        return None
    plan = RowPlan(reader.row, code, channel, round_, region, _texts(reader),
                   problem=reader.text("problem"), progress=reader.text("progress"),
                   closure_doc_no=reader.text("closure_doc_no"), deadline_text=reader.text("deadline_text"))
    _state(reader, plan)
    if plan.state != State.pending.value:
        _assignment(v, reader, plan)
    plan.percent = _percent(reader)
    _closure_dates(v, reader, plan)
    plan.progress_on = _progress_on(v, reader, plan)
    _verifier(v, reader, plan)
    plan.milestones = _milestones(v, reader)
    return None if reader.failed else plan


def _progress_on(v: Validation, reader: RowReader, plan: RowPlan) -> dt.date | None:
    """进展日期: when the latest progress was reported (not before 交办, not after today)."""
    day = _date(reader, "progress_on")
    if day is None:
        return None
    if plan.assigned_on is not None and day < plan.assigned_on:
        reader.error("progress_on", f"进展日期{day.isoformat()}早于交办日期{plan.assigned_on.isoformat()}")
    elif day > v.today:
        reader.error("progress_on", f"进展日期{day.isoformat()}晚于今天")
    return day


def _milestones(v: Validation, reader: RowReader) -> list[MilestoneLine]:
    """阶段目标: "日期 内容 计划进度%（已完成 日期）" per line, as the ledger export writes them."""
    try:
        found = parse_milestones(reader.text("milestones"))
    except ValueError as exc:
        reader.error("milestones", str(exc))
        return []
    for m in found:
        if m.met_on is not None and m.met_on > v.today:
            reader.error("milestones", f"阶段目标“{m.description}”的完成日期{m.met_on.isoformat()}晚于今天")
    return found


def _texts(reader: RowReader) -> dict[str, str]:
    texts = {attr: reader.text(key) for key, attr in TEXT_FIELDS if reader.text(key)}
    if "kind" in texts and texts["kind"] not in TASK_KINDS:
        kind = next((k for k in TASK_KINDS if texts["kind"] in k), None)
        if kind is None:
            reader.error("kind", f"问题类型“{texts['kind']}”无效，可选：" + "、".join(TASK_KINDS))
        texts["kind"] = kind or ""
    if "category" in texts and texts["category"] not in CATEGORIES:
        category = next((c for c in CATEGORIES if texts["category"].startswith(c)), "其他")
        reader.warn("category", f"问题领域“{texts['category']}”按“{category}”导入")
        texts["category"] = category
    return texts


def _channel(v: Validation, reader: RowReader) -> Channel | None:
    name = reader.required("channel")
    if not name:
        return None
    channel = v.directory.channels.get(_key(name))
    if channel is None:
        close = difflib.get_close_matches(_key(name), v.directory.channel_names, n=1, cutoff=0.3)
        hint = f"，最接近的是“{v.directory.channels[close[0]].name}”" if close else "，请联系管理员添加"
        reader.error("channel", f"问题来源“{name}”不在来源清单中{hint}")
    return channel


def _round(v: Validation, reader: RowReader) -> Round | NewRound | None:
    name = reader.required("round")
    if not name:
        return None
    found = v.directory.rounds.get(_key(name)) or v.directory.new_rounds.get(_key(name))
    if found is None and v.create_missing:
        found = v.directory.new_rounds[_key(name)] = NewRound(name)
    if found is None:
        reader.error("round", f"批次/轮次“{name}”不存在（可用 --create-missing 新建）")
    return found


def _region(v: Validation, reader: RowReader) -> Region | NewRegion | None:
    name = reader.required("region")
    if not name:
        return None
    root = v.directory.root
    everywhere = v.directory.regions_by_name.get(_key(name), [])
    inside = [r for r in everywhere if r.path.startswith(root.path)]
    if len(inside) == 1:
        return _region_in_scope(v, reader, inside[0])
    if len(inside) > 1:
        labels = "、".join(v.directory.region_label(r) for r in inside)
        reader.error("region", f"所在地区“{name}”有重名（{labels}），请分开导入并指定上级地区")
        return None
    if everywhere:
        outside_actor = v.actor is not None and not any(in_subtree(v.actor, r) for r in everywhere)
        reader.error("region", f"所在地区“{name}”不在您的管辖范围内" if outside_actor
                     else f"所在地区“{name}”不在{root.name}范围内")
        return None
    if v.create_missing:
        return v.directory.new_regions.setdefault(_key(name), NewRegion(name, root))
    reader.error("region", f"找不到所在地区“{name}”（可用 --create-missing 在{root.name}下新建）")
    return None


def _region_in_scope(v: Validation, reader: RowReader, region: Region) -> Region | None:
    if v.actor is not None and not in_subtree(v.actor, region):
        reader.error("region", f"所在地区“{region.name}”不在您的管辖范围内")
        return None
    return region


STATE_BY_WORD: dict[str, str] = {
    **{normalise_header(label): state.value for state, label in STATE_LABELS.items()},
    **{normalise_header(label.split("（")[0]): state.value for state, label in STATE_LABELS.items()},
    **{normalise_header(word): meaning for word, meaning in STATE_WORDS.items()},
}


def _state(reader: RowReader, plan: RowPlan) -> None:
    """The final state: the word of the sheet, or inferred from the closure dates when it is empty."""
    word = reader.text("state")
    closed_on = _date(reader, "closed_on", quiet=True)
    if not word:
        plan.state = (State.closed if closed_on else State.verifying if _date(reader, "closure_applied_on", quiet=True)
                      else State.rectifying).value
        return
    meaning = STATE_BY_WORD.get(normalise_header(word))
    if meaning is None or meaning == State.cancelled.value:
        reader.error("state", f"整改状态“{word}”无法识别，可用：" + "、".join(STATE_WORDS))
        return
    if meaning == "completed":  # 已完成: closed when a 销号日期 is given, otherwise waiting for 验收
        meaning = State.closed.value if closed_on else State.verifying.value
        plan.completed = True
    plan.state, plan.explicit_state = meaning, True
    if meaning == State.closed.value and not closed_on and not reader.failed_at("closed_on"):
        reader.error("closed_on" if "closed_on" in reader.layout.columns else "state", "已销号的问题须填写销号日期")


def _assignment(v: Validation, reader: RowReader, plan: RowPlan) -> None:
    """交办: lead and participant units, 交办日期 and 时限要求 (not asked of 待交办 rows)."""
    plan.assigned_on = _date(reader, "assigned_on")
    if plan.assigned_on is None and not reader.failed and "assigned_on" in reader.layout.columns:
        reader.error("assigned_on", "请填写交办日期")
    elif plan.assigned_on is not None and plan.assigned_on > v.today:
        reader.error("assigned_on", "交办日期不能晚于今天")
    plan.leads = _units(v, reader, "leads", plan.region)
    plan.participants = _units(v, reader, "participants", plan.region)
    if "leads" in reader.layout.columns and not plan.leads and not reader.text("leads"):
        reader.error("leads", "请填写责任单位")
    if {id(u) for u in plan.leads} & {id(u) for u in plan.participants}:
        reader.error("participants", "同一单位不能既牵头又参与")
    _deadline(v, reader, plan)


def _deadline(v: Validation, reader: RowReader, plan: RowPlan) -> None:
    if "deadline_text" not in reader.layout.columns or reader.failed_at("deadline_text"):
        return
    value = reader.value("deadline_text")
    if value is None or (isinstance(value, str) and not value.strip()):
        reader.error("deadline_text", "请填写时限要求")
        return
    try:
        plan.deadline = parse_deadline(value, assigned_on=plan.assigned_on, add_workdays=v.add_workdays,
                                       immediate_workdays=v.immediate_workdays)
    except DeadlineError as exc:
        reader.error("deadline_text", str(exc))
        return
    plan.deadline_text = plan.deadline.text


def _units(v: Validation, reader: RowReader, key: str, region: Region | NewRegion) -> list[Unit | NewUnit]:
    found: list[Unit | NewUnit] = []
    for name in dict.fromkeys(n for n in _LIST_SEPARATORS.split(reader.text(key)) if n):
        unit = _unit(v, reader, key, name, region)
        if unit is not None and all(unit is not u for u in found):
            found.append(unit)
    return found


def _unit(v: Validation, reader: RowReader, key: str, name: str, region: Region | NewRegion) -> Unit | NewUnit | None:
    """By name or alias: the nearest in the task's region chain, else the only one anywhere."""
    candidates = v.directory.units_by_name.get(_key(name), [])
    chain = v.directory.chain(region)
    in_chain = [u for u in candidates if u.region_id in chain]
    if in_chain:
        return max(in_chain, key=lambda u: chain.index(u.region_id))
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        where = "、".join(v.directory.region_label(v.directory.regions[u.region_id]) for u in candidates)
        reader.error(key, f"单位“{name}”有重名（{where}），无法确定是哪一个")
        return None
    if v.create_missing:
        kind = UnitKind.government if name.endswith(GOVERNMENT_SUFFIXES) else UnitKind.department
        return v.directory.new_units.setdefault((_region_identity(region), _key(name)),
                                                NewUnit(name, region, kind.value))
    reader.error(key, f"找不到单位“{name}”（可用 --create-missing 在所在地区新建）")
    return None


def _date(reader: RowReader, key: str, quiet: bool = False) -> dt.date | None:
    """A date cell, a serial number or text such as 2026-03-10, 2026/3/10, 2026.3.10, 2026年3月10日."""
    value = reader.raw(key) if quiet else reader.value(key)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return excel_date(value)
        except DeadlineError:
            pass
    elif isinstance(value, str) and (match := _DATE_TEXT.match(value.strip())):
        try:
            return dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            pass
    elif value is None or isinstance(value, Formula | CellError) or not str(value).strip():
        return None
    if not quiet:
        reader.error(key, f"“{_as_text(value)}”不是有效日期（应为如2026-03-10的日期）")
    return None


def _percent(reader: RowReader) -> int | None:
    value = reader.value("percent")
    if value is None or value == "":
        return None
    text = _as_text(value).rstrip("%％").strip()
    try:
        percent = round(float(text))
    except ValueError:
        percent = -1
    if not 0 <= percent <= 100:
        reader.error("percent", f"完成进度“{_as_text(value)}”须是0到100之间的数")
        return None
    return percent


def _closure_dates(v: Validation, reader: RowReader, plan: RowPlan) -> None:
    """申请销号日期 and 销号日期: not before 交办, not after today, in order."""
    applied = _date(reader, "closure_applied_on")
    closed = _date(reader, "closed_on")
    start = plan.assigned_on
    for key, day, label in (("closure_applied_on", applied, "申请销号日期"), ("closed_on", closed, "销号日期")):
        if day is None:
            continue
        if start is not None and day < start:
            reader.error(key, f"{label}{day.isoformat()}早于交办日期{start.isoformat()}")
        elif day > v.today:
            reader.error(key, f"{label}{day.isoformat()}晚于今天")
    if applied and closed and closed < applied:
        reader.error("closed_on", f"销号日期{closed.isoformat()}早于申请销号日期{applied.isoformat()}")
    if plan.state in (State.verifying.value, State.closed.value):
        plan.closure_applied_on = applied
    if plan.state == State.closed.value:
        plan.closed_on = closed


def _verifier(v: Validation, reader: RowReader, plan: RowPlan) -> None:
    name = reader.text("verifier")
    if not name or plan.state != State.closed.value:
        return
    candidates = v.directory.units_by_name.get(_key(name), [])
    chain = v.directory.chain(plan.region)
    in_chain = [u for u in candidates if u.region_id in chain]
    if in_chain:
        plan.verifier = max(in_chain, key=lambda u: chain.index(u.region_id))
    elif len(candidates) == 1:
        plan.verifier = candidates[0]
    else:
        reader.warn("verifier", f"验收单位“{name}”不在单位清单中或有重名，只记入办理记录")
    plan.verifier_name = name


# --- the whole file ----------------------------------------------------------------------------------


def _data_rows(grid: Grid, layout: Layout, report: ImportReport) -> Iterable[RowReader]:
    header_code = layout.headers.get(layout.columns.get("code", -1), "")
    for r in range(layout.header_row + 1, len(grid.rows)):
        values = grid.rows[r]
        reader = RowReader(values, r + 1, layout, report)
        code, title = _as_text(reader.raw("code")), _as_text(reader.raw("title"))
        if not code and not title:
            if any(_as_text(values[c]) for c in layout.columns.values() if c < len(values)
                   and c not in (layout.columns.get("channel"), layout.columns.get("round"))):
                report.warnings.append(ImportProblem(r + 1, "", "没有问题编号和问题名称，已跳过"))
            continue
        if code == header_code:  # the header repeated (a sheet printed with repeated titles)
            continue
        yield reader


def _check_columns(layout: Layout, report: ImportReport) -> None:
    for key in REQUIRED_KEYS:
        if key not in layout.columns:
            report.error(f"缺少必需的列“{HEADER_LABELS[key]}”")
    for c in layout.unknown:
        report.warnings.append(ImportProblem(layout.header_row + 1, get_column_letter(c + 1),
                                             "不是台账字段，已忽略", layout.headers[c]))


def _check_assign_columns(layout: Layout, plans: list[RowPlan], report: ImportReport) -> None:
    if all(p.state == State.pending.value for p in plans):
        return
    for key in ASSIGN_KEYS:
        if key not in layout.columns:
            report.error(f"缺少必需的列“{HEADER_LABELS[key]}”（待交办以外的问题必须填写）")


def _check_duplicates(plans: list[RowPlan], report: ImportReport) -> None:
    seen: dict[tuple, int] = {}
    for plan in plans:
        first = seen.setdefault(plan.identity(), plan.row)
        if first != plan.row:
            report.error(f"问题编号“{plan.code}”与第{first}行重复（同一问题来源、批次和地区）", plan.row)


def _match_existing(s: Session, plans: list[RowPlan], update: bool, layout: Layout, report: ImportReport) -> None:
    """Codes already in the ledger: an error, or (with --update) the task to update."""
    known = [p for p in plans if isinstance(p.region, Region) and isinstance(p.round, Round)]
    codes = sorted({p.code for p in known})
    found: dict[tuple, Task] = {}
    for i in range(0, len(codes), 500):
        query = select(Task).where(Task.code.in_(codes[i:i + 500])).options(
            selectinload(Task.task_units), selectinload(Task.problem))
        for task in s.scalars(query):
            found[(task.channel_id, task.round_id, task.region_id, task.code)] = task
    letter, header = layout.where("code")
    for plan in known:
        task = found.get(plan.identity())
        if task is None:
            continue
        if not update:
            report.error(f"问题编号“{plan.code}”已在台账中（同一问题来源、批次和地区），如需更新请选择更新已有问题",
                         plan.row, letter, header)
        elif plan.explicit_state and not _same_state(plan, task):
            state_letter, state_header = layout.where("state")
            report.error(f"整改状态与台账不同（台账：{STATE_LABELS[State(task.state)]}，文件："
                         f"{STATE_LABELS[State(plan.state)]}），导入不改变状态，请通过办理操作处理",
                         plan.row, state_letter, state_header)
        else:
            plan.existing = task


def _same_state(plan: RowPlan, task: Task) -> bool:
    closing = (State.verifying.value, State.closed.value)
    return plan.state == task.state or (plan.completed and task.state in closing)


def validate(s: Session, grid: Grid, layout: Layout, v: Validation, update: bool, *,
             progress: Progress | None = None) -> list[RowPlan]:
    """Every row checked; the plans of the valid rows (the file is valid when the report has no errors)."""
    report = v.report
    _check_columns(layout, report)
    if report.errors:
        return []
    plans = []
    total = max(len(grid.rows) - layout.header_row - 1, 0)
    for reader in _data_rows(grid, layout, report):
        if progress is not None:
            progress(reader.row - layout.header_row - 1, total, STAGE_VALIDATE)
        report.rows += 1
        plan = _plan_row(v, reader)
        if plan is not None:
            plans.append(plan)
    if report.rows == 0:
        report.error("工作表中没有数据行")
    _check_assign_columns(layout, plans, report)
    _check_duplicates(plans, report)
    _match_existing(s, plans, update, layout, report)
    return plans


# --- writing -------------------------------------------------------------------------------------------


@dataclass
class Writer:
    """What writing the plans needs: session, actor, clock, the file's name and caches."""

    s: Session
    actor: Membership | None
    now: dt.datetime
    source: str
    assigning_unit: Unit
    problems: dict[tuple[int, int, str], int | Problem] = field(default_factory=dict)  # an id, or made here
    problem_counts: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))

    @property
    def today(self) -> dt.date:
        return local_date(self.now)


def _assigning_unit(s: Session, actor: Membership | None, root: Region) -> Unit | None:
    """The importer's unit; at the command line the province's coordinating unit (突改办/督察办),
    else the nearest coordinating unit above the imported region."""
    if actor is not None:
        return actor.unit
    chain = [int(p) for p in root.path.strip("/").split("/") if p]
    units = s.scalars(select(Unit).where(Unit.region_id.in_(chain), Unit.kind == UnitKind.coordinating.value,
                                         Unit.active.is_(True)).order_by(Unit.id)).all()
    return min(units, key=lambda u: (chain.index(u.region_id), u.id)) if units else None


def _materialise(w: Writer, directory: Directory, report: ImportReport) -> None:
    """--create-missing: the regions, units and rounds the file names and the ledger lacks."""
    creator = w.actor if w.actor is not None and w.actor.role == Role.admin.value else None
    for new in directory.new_regions.values():
        new.obj = create_region(w.s, creator, w.now, new.name, new.parent)
    for new in directory.new_units.values():
        region = new.region.obj if isinstance(new.region, NewRegion) else new.region
        new.obj = create_unit(w.s, creator, w.now, new.name, region, new.kind)
    position = max((r.position for r in w.s.scalars(select(Round))), default=0)
    for i, new in enumerate(directory.new_rounds.values(), start=1):
        new.obj = Round(name=new.name, position=position + i)
        w.s.add(new.obj)
        w.s.flush()
        record_event(w.s, creator, w.now, "create", entity="round", entity_id=new.obj.id, data={"name": new.name})


def _created_names(directory: Directory, report: ImportReport) -> None:
    report.created_regions = [f"{n.name}（{n.parent.name}）" for n in directory.new_regions.values()]
    report.created_units = [f"{n.name}（{n.region.name}）" for n in directory.new_units.values()]
    report.created_rounds = [n.name for n in directory.new_rounds.values()]


def _real(thing: Any) -> Any:
    return thing.obj if isinstance(thing, NewRegion | NewUnit | NewRound) else thing


def _load_problems(w: Writer, plans: list[RowPlan]) -> None:
    """The 所属问题 of the file's channels and rounds, as plain columns (title → id, and how many each
    channel and round holds, for the codes of new ones): not every problem of the ledger as objects."""
    channels = {plan.channel.id for plan in plans}
    rounds = {_real(plan.round).id for plan in plans}
    rows = w.s.execute(select(Problem.id, Problem.channel_id, Problem.round_id, Problem.title)
                       .where(Problem.channel_id.in_(channels), Problem.round_id.in_(rounds)))
    for problem_id, channel_id, round_id, title in rows:
        w.problems[(channel_id, round_id, title)] = problem_id
        w.problem_counts[(channel_id, round_id)] += 1


def _problem(w: Writer, channel_id: int, round_id: int, title: str) -> int | Problem | None:
    """所属问题 by its title within (channel, round), as ``operations.find_or_create_problem`` does."""
    if not title:
        return None
    key = (channel_id, round_id, title)
    if key not in w.problems:
        w.problem_counts[(channel_id, round_id)] += 1
        w.problems[key] = Problem(channel_id=channel_id, round_id=round_id,
                                  code=f"P{w.problem_counts[(channel_id, round_id)]:03d}", title=title)
        w.s.add(w.problems[key])
    return w.problems[key]


@dataclass(frozen=True)
class Closure:
    """The dates the history gives a created task: the progress report, 申请销号 and 销号."""

    report_on: dt.date | None
    applied_on: dt.date | None


def _closure(plan: RowPlan, today: dt.date) -> Closure:
    report_on = None
    if plan.progress or plan.percent is not None or plan.progress_on is not None:
        # On its 进展日期 (else today), and before the closure when there is one, so the replay sees the
        # report, then the closure.
        report_on = min(d for d in (plan.progress_on or today, plan.closure_applied_on, plan.closed_on)
                        if d is not None)
    applied_on = None
    if plan.state == State.verifying.value or (plan.state == State.closed.value and plan.closure_applied_on):
        applied_on = plan.closure_applied_on or today
    return Closure(report_on, applied_on)


def _task_fields(plan: RowPlan) -> dict[str, Any]:
    fields = {attr: plan.texts.get(attr, "") for _key, attr in TEXT_FIELDS}
    fields["kind"] = fields["kind"] or "反馈问题"
    fields["category"] = fields["category"] or "其他"
    return fields


def _new_task(w: Writer, plan: RowPlan, problem_id: int | None) -> dict[str, Any]:
    """The created task's row: every column an ORM insert would have written."""
    round_, region = _real(plan.round), _real(plan.region)
    pending = plan.state == State.pending.value
    deadline = plan.deadline if plan.deadline and not pending else None
    closure = _closure(plan, w.today)
    row = {
        "code": plan.code, "channel_id": plan.channel.id, "round_id": round_.id, "region_id": region.id,
        "problem_id": problem_id, "state": plan.state, **_task_fields(plan),
        "deadline_text": plan.deadline_text, "deadline_kind": deadline.kind if deadline else "date",
        "deadline": deadline.date if deadline else None, "original_deadline": deadline.date if deadline else None,
        "assigned_on": plan.assigned_on, "cycle_started_on": plan.assigned_on,
        "registered_by_unit_id": w.assigning_unit.id, "assigned_by_unit_id": None if pending else w.assigning_unit.id,
        "latest_report_on": closure.report_on, "latest_percent": plan.percent, "closure_applied_on": closure.applied_on,
        "closed_on": plan.closed_on, "closure_doc_no": plan.closure_doc_no,
        "verifier_unit_id": plan.verifier.id if plan.verifier else None,
        "extension_count": 0, "escalation_level": 0, "version": 1, "created_at": w.now, "updated_at": w.now,
    }
    if closure.applied_on is not None:  # 申请销号 files a closure report at 100% (as operations._h_submit)
        row["latest_report_on"] = max(d for d in (closure.applied_on, closure.report_on) if d is not None)
        row["latest_percent"] = 100
    return row


def _opening_state(plan: RowPlan) -> str:
    """The state 交办 put the task in: 整改中 (also for rows that end 待验收 or 已销号)."""
    if plan.state in (State.pending.value, State.assigned.value, State.signed.value):
        return plan.state
    return State.rectifying.value


def _history(w: Writer, plan: RowPlan, task: dict[str, Any]) -> list[dict[str, Any]]:
    """导入历史: the dated events that make the replay as of any past date give the sheet's picture."""
    state = _opening_state(plan)
    data = {"assigned_on": plan.assigned_on, "deadline": task["deadline"], "deadline_kind": task["deadline_kind"],
            "deadline_text": task["deadline_text"], "source": w.source, "row": plan.row, "code": plan.code,
            "leads": [_real(u).name for u in plan.leads], "participants": [_real(u).name for u in plan.participants]}
    if state == State.pending.value:
        data = {"source": w.source, "row": plan.row, "code": plan.code, "deadline_text": plan.deadline_text}
    if plan.milestones:
        data["milestones"] = [{"due_on": m.due_on, "description": m.description,
                               "planned_percent": m.planned_percent, "met_on": m.met_on} for m in plan.milestones]

    def event(action: str, **fields: Any) -> dict[str, Any]:
        return event_fields(w.actor, w.now, action, task_id=task["id"], **fields)

    events = [event("import", to_state=state, data=data, effective_on=plan.assigned_on or w.today)]
    closure = _closure(plan, w.today)
    if closure.report_on is not None:
        events.append(event("report", from_state=state, to_state=state, effective_on=closure.report_on,
                            data={"text": plan.progress, "percent": plan.percent, "source": w.source}))
    if closure.applied_on is not None:
        events.append(event("submit", from_state=state, to_state=State.verifying.value,
                            effective_on=closure.applied_on, data={"text": "导入：申请销号", "source": w.source}))
        state = State.verifying.value
    if plan.state == State.closed.value:
        events.append(event("close", from_state=state, to_state=State.closed.value, effective_on=plan.closed_on,
                            data={"closed_on": plan.closed_on, "verifier": plan.verifier_name,
                                  "closure_doc_no": plan.closure_doc_no, "source": w.source}))
    return events


def _create_tasks(w: Writer, plans: list[RowPlan]) -> None:
    """The new tasks, each with its units, milestones, history, today's 序时进度 and the escalation levels
    already passed (导入基线: recorded, nothing sent), written table by table in a few statements
    (executemany) — not object by object, which cost ~10 rows' worth of ORM work and SQL per task."""
    problems = [_problem(w, plan.channel.id, _real(plan.round).id, plan.problem) for plan in plans]
    w.s.flush()  # the new 所属问题 (and anything made before) have their ids
    ctx = schedule.load_context(w.s)
    tasks = [_new_task(w, plan, problem.id if isinstance(problem, Problem) else problem)
             for plan, problem in zip(plans, problems, strict=True)]
    kept = []
    for plan, task in zip(plans, tasks, strict=True):  # today's 序时进度 and checks, as schedule.refresh keeps them
        values = SimpleNamespace(**task, milestones=plan.milestones, children=[], plan_submitted_on=None,
                                 plan_approved_on=None)
        schedule.refresh(values, w.today, ctx)
        task.update({name: getattr(values, name) for name in _KEPT_VALUES})
        kept.append(values)
    for task, task_id in zip(tasks, _insert_tasks(w.s, tasks), strict=True):
        task["id"] = task_id
    units, milestones, events, reports, records, scan_events = [], [], [], [], [], []
    for plan, task, values in zip(plans, tasks, kept, strict=True):
        if plan.state != State.pending.value:
            leads = [_real(u) for u in plan.leads]
            units += [{"task_id": task["id"], "unit_id": u.id, "role": role, "position": i} for i, (u, role) in
                      enumerate([(u, "lead") for u in leads] + [(_real(u), "participant") for u in plan.participants])]
        milestones += [{"task_id": task["id"], "due_on": m.due_on, "description": m.description,
                        "planned_percent": m.planned_percent, "met_on": m.met_on} for m in plan.milestones]
        events += _history(w, plan, task)
        report_on = _closure(plan, w.today).report_on
        if report_on is not None and w.actor is not None:  # at the command line the event alone carries it
            reports.append({"task_id": task["id"], "reported_on": report_on, "text": plan.progress,
                            "percent": plan.percent, "purpose": "progress", "membership_id": w.actor.id,
                            "created_at": w.now})
        values.id = task["id"]
        for item, key in escalation.baseline_levels(values, w.today, ctx):  # the levels already passed
            records.append(escalation.record_row(task["id"], item, key, "baseline", w.today))
            action, data = escalation.record_event_data(item, "baseline")
            scan_events.append(event_fields(None, w.now, action, task_id=task["id"], data=data, effective_on=w.today))
    for table, rows in ((TaskUnit, units), (Milestone, milestones), (ProgressReport, reports),
                        (EscalationRecord, records)):
        if rows:
            w.s.execute(insert(table.__table__), rows)
    record_first_events(w.s, events + scan_events)  # each task's history first, its baseline after, as before


# Today's values ``schedule.refresh`` keeps on a task (DESIGN §5), computed before the INSERT.
_KEPT_VALUES = ("schedule", "overdue", "not_reported", "next_check_on", "schedule_as_of", "escalation_check_on")


def _insert_tasks(s: Session, tasks: list[dict[str, Any]]) -> list[int]:
    """INSERT the task rows; their ids, in order. On PostgreSQL the ids are drawn from the sequence first
    (one statement) and the rows go in by executemany: psycopg parses the placeholders of a multi-row
    ``INSERT … RETURNING`` in Python, which cost more than the insert itself. SQLite returns them."""
    table = Task.__table__
    if not tasks:
        return []
    if s.get_bind().dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        ids = list(s.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, len(tasks)))))
        s.execute(insert(table), [{**task, "id": task_id} for task, task_id in zip(tasks, ids, strict=True)])
        return ids
    return list(s.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), tasks))


def _changes(plan: RowPlan) -> tuple[dict[str, str], dict[str, str]]:
    """(before, after) of the text fields whose cell has a value that differs from the task."""
    task = plan.existing
    wanted = dict(plan.texts)
    if plan.problem:
        wanted["problem"] = plan.problem
    before = {}
    for name, value in wanted.items():
        current = (task.problem.title if task.problem else "") if name == "problem" else getattr(task, name)
        if current != value:
            before[name] = current
    return before, {k: wanted[k] for k in before}


def _update_task(w: Writer, plan: RowPlan, report: ImportReport) -> bool:
    """--update: the text fields with a value in the file; an edit event when something changed.

    Deadline, units and dates change only through actions (DESIGN §4): a difference is reported."""
    task = plan.existing
    _report_action_fields(plan, task, report)
    before, after = _changes(plan)
    if not before:
        return False
    for name, value in after.items():
        if name == "problem":
            problem = _problem(w, task.channel_id, task.round_id, value)
            task.problem = problem if isinstance(problem, Problem) else w.s.get(Problem, problem)
        else:
            setattr(task, name, value)
    record_event(w.s, w.actor, w.now, "edit", task=task,
                 data={"before": before, "after": after, "source": w.source, "row": plan.row})
    return True


def _report_action_fields(plan: RowPlan, task: Task, report: ImportReport) -> None:
    notes = []
    if plan.deadline is not None and plan.deadline.date != task.deadline:
        notes.append("时限要求（请通过“调整时限”办理）")
    lead_ids = [getattr(_real(u), "id", None) for u in plan.leads]
    if plan.leads and sorted(lead_ids, key=str) != sorted((u.id for u in task.lead_units), key=str):
        notes.append("责任单位（请通过“改派”办理）")
    if plan.assigned_on is not None and plan.assigned_on != task.assigned_on:
        notes.append("交办日期")
    if notes:
        report.warnings.append(ImportProblem(plan.row, "", "与台账不同、导入不修改的字段：" + "、".join(notes)))


def write(w: Writer, plans: list[RowPlan], directory: Directory, report: ImportReport) -> None:
    _materialise(w, directory, report)
    _load_problems(w, plans)
    new = [p for p in plans if p.existing is None]
    _create_tasks(w, new)
    report.created = len(new)
    for plan in (p for p in plans if p.existing is not None):
        if _update_task(w, plan, report):
            report.updated += 1
        else:
            report.unchanged += 1
    if report.created or report.updated:
        record_event(w.s, w.actor, w.now, "import", entity="import",
                     data={"file": w.source, "created": report.created, "updated": report.updated,
                           "unchanged": report.unchanged, "created_units": report.created_units,
                           "created_regions": report.created_regions, "created_rounds": report.created_rounds})
    w.s.flush()


# --- the entry point --------------------------------------------------------------------------------


def _scope(s: Session, actor: Membership | None, region: Region | None, create_missing: bool,
           report: ImportReport) -> Region | None:
    """The region whose subtree the file may name: --region, else the importer's own region."""
    if actor is not None and actor.role not in (Role.supervisor.value, Role.admin.value):
        report.error("只有督办人员和管理员可以导入台账")
        return None
    if create_missing and actor is not None and actor.role != Role.admin.value:
        report.error("只有管理员可以新建单位、地区和批次；请去掉“新建缺少的单位、地区和批次”，或请管理员导入")
        return None
    if region is not None and actor is not None and not in_subtree(actor, region):
        report.error(f"“{region.name}”不在您的管辖范围内")
        return None
    if region is not None:
        return region
    if actor is not None:
        return actor.unit.region
    return s.scalar(select(Region).where(Region.level == 0))


def _count_dry_run(plans: list[RowPlan], report: ImportReport) -> None:
    for plan in plans:
        if plan.existing is None:
            report.created += 1
        elif _changes(plan)[0]:
            report.updated += 1
        else:
            report.unchanged += 1


def _no_progress(_done: int, _total: int | None, _stage: str) -> None:
    pass


def import_ledger(s: Session, path: str | os.PathLike | BinaryIO, actor: Membership | None, now: dt.datetime, *,
                  dry_run: bool = False, update: bool = False, create_missing: bool = False,
                  region: Region | None = None, name: str | None = None,
                  max_bytes: int = MAX_FILE_BYTES, progress: Progress | None = None) -> ImportReport:
    """Validate a ledger workbook and, when every row is valid and it is not a dry run, write it.

    ``path`` is a file path or a binary stream (an upload; then ``name`` is its file name). Nothing is
    written when the report has errors; the caller commits (or rolls back). ``progress(done, total,
    stage)``, when given, is called while reading and per row while validating, and once before writing
    (a background job's bar) — never during the writing, which holds the database's write lock."""
    progress = progress or _no_progress
    source = name or (Path(path).name if isinstance(path, str | os.PathLike) else "上传文件")
    report = ImportReport(source, dry_run=dry_run)
    root = _scope(s, actor, region, create_missing, report)
    if root is None:
        return report
    try:
        progress(0, None, STAGE_READ)
        grid, layout = _choose_sheet(read_workbook(read_bytes(path, max_bytes)))
    except IntakeFileError as exc:
        report.error(str(exc))
        return report
    directory = Directory(s, root)
    times = settings.time_settings(s)
    v = Validation(s, directory, actor, local_date(now), create_missing, report,
                   calendars.load(s).add_workdays, times.immediate_workdays)
    plans = validate(s, grid, layout, v, update, progress=progress)
    assigning = _assigning_unit(s, actor, root)
    if assigning is None:
        report.error("找不到登记单位：请先在省级或本级设立督办机构（突改办/督察办）")
    _created_names(directory, report)
    if report.errors:
        return report
    if dry_run:
        _count_dry_run(plans, report)
        return report
    progress(report.rows, report.rows, STAGE_WRITE)
    try:
        write(Writer(s, actor, now, source, assigning), plans, directory, report)
    except ActionError as exc:
        report.error(str(exc))
    return report
