"""The monthly closure ledger (月度整改销号台账, DESIGN §7 Export): the workbook read back with openpyxl,
the CSV, the command and the download.

The history is built with ``perform`` at chosen dates across January–March 2026, so each expected
value below is what the task was at the month's end, stated where the task is built.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import threading
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from sqlalchemy import event, select

from tests.conftest import fake_file, login
from tracker import ledger, reports, schedule, settings
from tracker.ledger_columns import LEDGER_COLUMNS
from tracker.models import Event
from tracker.operations import perform
from tracker.timeutil import SHANGHAI

D = dt.date
HEADERS = [c.header for c in LEDGER_COLUMNS]
COL = {c.key: i for i, c in enumerate(LEDGER_COLUMNS)}
H = {c.key: c.header for c in LEDGER_COLUMNS}
FEB, MAR = "2026-02", "2026-03"
TODAY = D(2026, 11, 22)  # after every month exported here


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2026, month, day, 10, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)


@pytest.fixture
def ledger_world(world, s):
    """Four tasks:

    - 双马: 交办 1-12, 整改中 from 1-15, reports 2-10 (40%) and 3-05 (70%), 申请销号 3-10, 销号 3-12.
      End of February: 整改中, 二月进展, 40, not closed, reported in the period due in February. End of March: 已销号.
    - formula: title "=1+2", description "@SUM(A1)", remarks "-3"; 交办 1-12 due 2-20, only signed:
      逾期 at the end of February.
    - 三月交办: 交办 3-05, 函告 confirmed 3-20 — absent in February, on 逾期及督办 in March.
    - 攸县: a Zhuzhou task, outside 湘潭市.
    """
    m = world.m
    shuangma = world.assigned(title="双马填埋场渗滤液处理不到位", now=at(1, 12))
    world.advance(shuangma, "rectifying", now=at(1, 15))
    perform(s, shuangma, "report", m["unit_yh"], at(2, 10), text="二月进展：完成渗滤液收集管网", percent=40)
    perform(s, shuangma, "report", m["unit_yh"], at(3, 5), text="三月进展：处理站调试", percent=70)
    perform(s, shuangma, "submit", m["unit_yh"], at(3, 10), text="已完成整改", files=[fake_file()])
    perform(s, shuangma, "close", m["sup_hn"], at(3, 12), opinion="验收合格", closure_doc_no="湘督销〔2026〕1号")
    formula = world.assigned(title="=1+2", description="@SUM(A1)", remarks="-3", deadline=D(2026, 2, 20),
                             now=at(1, 12))
    world.advance(formula, "signed", now=at(1, 13))
    march = world.assigned(title="三月交办的黑臭水体", now=at(3, 5))
    perform(s, march, "confirm_measure", m["sup_xt"], at(3, 20), level=2, doc_no="湘督函〔2026〕3号")
    youxian = world.assigned(title="攸县矿山生态修复", region="攸县", lead="攸县人民政府", actor="sup_zz",
                             now=at(1, 20))
    s.commit()
    return {"shuangma": shuangma, "formula": formula, "march": march, "youxian": youxian}


def export(s, world, tmp_path, month=FEB, region="湖南省", suffix="xlsx", today=TODAY):
    path = tmp_path / f"ledger-{month}-{region}.{suffix}"
    summary = ledger.export(s, world.regions[region], month, path, today=today, settings=settings.time_settings(s))
    return summary, path


def rows_of(ws):
    """Data rows of a task list (整改台账 and the lists after it): {问题名称: {header: cell}}."""
    headers = [c.value for c in ws[2]]
    rows = [dict(zip(headers, row, strict=True)) for row in ws.iter_rows(min_row=3, max_col=len(headers))]
    return {row["问题名称"].value: row for row in rows if row["序号"].value is not None}


def width(ws, index: int) -> float:
    """The width of the column at 0-based ``index`` (openpyxl keys a run of equal columns by its first)."""
    return next(d.width for d in ws.column_dimensions.values() if d.min <= index + 1 <= d.max)


def test_sheets_titles_headers_and_print_setup(s, world, ledger_world, tmp_path):
    summary, path = export(s, world, tmp_path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["汇总", "整改台账", "本月销号", "逾期及督办", "本期未报送"] == summary.sheets
    assert summary.as_of == D(2026, 2, 28) and summary.rows == 3
    for ws in book.worksheets:
        assert ws["A1"].value == "湖南省突出生态环境问题整改销号台账（截至2026年2月28日）"
        assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 8
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0  # 1 page wide (default)
        assert any(str(r).startswith("A1:") for r in ws.merged_cells.ranges)
    assert [c.value for c in book["整改台账"][2]] == HEADERS
    for name in ["本月销号", "逾期及督办", "本期未报送"]:
        extra = ["本月督办措施"] if name == "逾期及督办" else []
        assert [c.value for c in book[name][2]] == [c.header for c in ledger.LIST_COLUMNS[name]] + extra
    for name in ["整改台账", "本月销号", "逾期及督办", "本期未报送"]:
        assert book[name].freeze_panes == "A3" and book[name].print_title_rows == "$1:$2"
    assert book["汇总"].freeze_panes == "A2"
    ws = book["整改台账"]
    assert all(c.alignment.wrap_text for c in ws[3] if c.value is not None)
    # Wide enough for Chinese: 问题名称 双马填埋场渗滤液处理不到位 (13 characters) is about 26 Latin ones.
    assert width(ws, COL["title"]) >= 26 and width(ws, COL["seq"]) < 20
    assert max(d.width for d in ws.column_dimensions.values()) <= ledger.MAX_WIDTH


def test_rows_are_what_each_task_was_at_the_month_end(s, world, ledger_world, tmp_path):
    _summary, path = export(s, world, tmp_path)
    ws = openpyxl.load_workbook(path)["整改台账"]
    rows = rows_of(ws)
    assert set(rows) == {"双马填埋场渗滤液处理不到位", "=1+2", "攸县矿山生态修复"}  # 三月交办 not yet assigned
    shuangma = rows["双马填埋场渗滤液处理不到位"]
    assert shuangma[H["state"]].value == "整改中"  # closed on 3-12, after the month end
    assert shuangma[H["progress"]].value == "二月进展：完成渗滤液收集管网"
    assert shuangma[H["percent"]].value == 40
    assert shuangma[H["schedule"]].value == "达到序时进度"
    assert shuangma[H["closed_on"]].value is None and shuangma[H["closure_applied_on"]].value is None
    # reported in the period due in February (26 January – 25 February): not 本期未报送 in February's ledger
    assert shuangma[H["not_reported"]].value is None
    assert shuangma[H["leads"]].value == "雨湖区人民政府" and shuangma[H["region"]].value == "雨湖区"
    assigned = shuangma[H["assigned_on"]]
    assert assigned.is_date and assigned.value.date() == D(2026, 1, 12) and assigned.number_format == "yyyy-mm-dd"
    formula = rows["=1+2"]
    assert formula[H["schedule"]].value == "滞后（逾期）"
    assert formula[H["deadline"]].value.date() == D(2026, 2, 20)
    assert formula[H["state"]].value == "已签收（待报方案）"
    assert [ws.cell(row=r, column=1).value for r in range(3, 6)] == [1, 2, 3]


def test_march_shows_the_closure_the_month_and_its_measures(s, world, ledger_world, tmp_path):
    summary, path = export(s, world, tmp_path, month=MAR, region="湘潭市")
    book = openpyxl.load_workbook(path)
    assert book["整改台账"]["A1"].value.startswith("湘潭市突出生态环境问题整改销号台账（截至2026年3月31日）")
    rows = rows_of(book["整改台账"])
    assert set(rows) == {"双马填埋场渗滤液处理不到位", "=1+2", "三月交办的黑臭水体"}  # 攸县 is not in 湘潭市
    shuangma = rows["双马填埋场渗滤液处理不到位"]
    assert shuangma[H["state"]].value == "已销号" and shuangma[H["schedule"]].value == "已完成"
    assert shuangma[H["closed_on"]].value.date() == D(2026, 3, 12)
    assert shuangma[H["closure_applied_on"]].value.date() == D(2026, 3, 10)
    assert shuangma[H["closure_doc_no"]].value == "湘督销〔2026〕1号"
    assert shuangma[H["progress"]].value == "已完成整改" and shuangma[H["percent"]].value == 100
    assert set(rows_of(book["本月销号"])) == {"双马填埋场渗滤液处理不到位"}
    overdue = rows_of(book["逾期及督办"])
    assert set(overdue) == {"=1+2", "三月交办的黑臭水体"}
    measure = overdue["三月交办的黑臭水体"]["本月督办措施"].value
    assert "2026-03-20" in measure and "函告" in measure and "湘督函〔2026〕3号" in measure
    assert rows["三月交办的黑臭水体"][H["escalation"]].value == "函告"
    assert summary.rows == 3


def test_summary_sheet_and_figures_equal_the_report(s, world, ledger_world, tmp_path):
    summary, path = export(s, world, tmp_path, month=MAR)
    ws = openpyxl.load_workbook(path)["汇总"]
    blocks, current = {}, None
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[0] in reports.GROUPINGS.values() and row[1] is None:
            current = blocks.setdefault(row[0], [])
        elif row[0] is not None and row[0] != "分组":
            current.append(list(row))
    time_settings = settings.time_settings(s)
    for by, label in reports.GROUPINGS.items():
        report = reports.build(s, world.regions["湖南省"], D(2026, 3, 31), by, time_settings)
        expected = [[" · ".join(r.group), r.total, r.completed, r.on_schedule, r.behind, r.overdue, r.extended,
                     r.closure_rate] for r in [*report.rows, report.total]]
        assert blocks[label] == expected
        if by == "channel-round":
            assert summary.figures == [r.as_json() for r in [*report.rows, report.total]]
    assert blocks["按来源和批次"][-1][:3] == ["合计", 4, 1]


def test_text_that_looks_like_a_formula_stays_text(s, world, ledger_world, tmp_path):
    _summary, path = export(s, world, tmp_path)
    book = openpyxl.load_workbook(path)
    row = rows_of(book["整改台账"])["=1+2"]
    for header, text in [("问题名称", "=1+2"), ("问题描述", "@SUM(A1)"), ("备注", "-3")]:
        assert row[header].data_type == "s" and row[header].value == text
    listed = rows_of(book["逾期及督办"])["=1+2"]["问题名称"]
    assert listed.data_type == "s" and listed.value == "=1+2"


def test_csv_has_a_bom_the_title_and_escapes_formulas(s, world, ledger_world, tmp_path):
    summary, path = export(s, world, tmp_path, suffix="csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[0] == ["湖南省突出生态环境问题整改销号台账（截至2026年2月28日）"]
    assert lines[1] == HEADERS
    assert summary.sheets == ["整改台账"] and summary.rows == len(lines) - 2 == 3
    row = next(line for line in lines[2:] if line[COL["title"]] == "'=1+2")
    assert row[COL["description"]] == "'@SUM(A1)" and row[COL["remarks"]] == "'-3"
    assert row[COL["deadline"]] == "2026-02-20"


def test_the_ledger_continues_on_more_sheets_in_order(s, world, ledger_world, tmp_path, monkeypatch):
    whole, whole_path = export(s, world, tmp_path, month=MAR)
    expected = [r[COL["title"]] for r in openpyxl.load_workbook(whole_path)["整改台账"].iter_rows(
        min_row=3, values_only=True)]
    monkeypatch.setattr(ledger, "MAX_ROWS", 4)  # title, header and two tasks a sheet
    monkeypatch.setattr(ledger, "BATCH", 1)  # and one task per query: the keyset must keep the order
    summary, path = export(s, world, tmp_path, month=MAR)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[:3] == ["汇总", "整改台账", "整改台账(2)"] and len(expected) == summary.rows == 4
    assert book.sheetnames[3:] == ["本月销号", "逾期及督办", "本期未报送"]
    second = book["整改台账(2)"]
    assert second["A1"].value == book["整改台账"]["A1"].value and [c.value for c in second[2]] == HEADERS
    assert second.freeze_panes == "A3" and second.print_title_rows == "$1:$2"
    got = [r[COL["title"]] for name in ["整改台账", "整改台账(2)"]
           for r in book[name].iter_rows(min_row=3, values_only=True)]
    assert got == expected
    assert [r[0] for r in second.iter_rows(min_row=3, values_only=True)] == [3, 4]  # 序号 runs on


def test_months_that_cannot_be_exported(s, world, tmp_path):
    with pytest.raises(ValueError, match="不能导出尚未开始的月份"):
        export(s, world, tmp_path, month="2026-12", today=D(2026, 11, 22))
    for bad in ["2026-13", "2026-3", "202603", "二月"]:
        with pytest.raises(ValueError, match="应为YYYY-MM"):
            export(s, world, tmp_path, month=bad)
    with pytest.raises(ValueError, match=r"\.xlsx或\.csv"):
        export(s, world, tmp_path, suffix="txt")


def test_the_current_month_is_as_of_today(s, world, ledger_world, tmp_path):
    summary, path = export(s, world, tmp_path, month=MAR, today=D(2026, 3, 11))
    assert summary.as_of == D(2026, 3, 11)
    rows = rows_of(openpyxl.load_workbook(path)["整改台账"])
    assert rows["双马填埋场渗滤液处理不到位"][H["state"]].value == "待验收"


def test_cli_exports_xlsx_and_csv_and_refuses_other_files(app, s, world, ledger_world, tmp_path):
    runner = app.test_cli_runner()
    out = tmp_path / "湘潭.xlsx"
    result = runner.invoke(args=["ledger", "export", "--month", MAR, "--region", "湘潭市", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"已导出2026年3月台账：3项任务 → {out}"
    assert openpyxl.load_workbook(out).sheetnames[0] == "汇总"
    out_csv = tmp_path / "全省.csv"
    result = runner.invoke(args=["ledger", "export", "--month", FEB, "--out", str(out_csv)])
    assert result.exit_code == 0 and "2026年2月台账：3项任务" in result.output
    assert out_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    for args, message in [(["--month", FEB, "--out", str(tmp_path / "x.txt")], ".xlsx或.csv"),
                          (["--month", FEB, "--region", "火星", "--out", str(out)], "找不到地区"),
                          (["--month", "2026-2", "--out", str(out)], "应为YYYY-MM"),
                          (["--month", "2099-01", "--out", str(out)], "不能导出尚未开始的月份")]:
        result = runner.invoke(args=["ledger", "export", *args])
        assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "x.txt").exists()


def test_download_within_scope_is_logged(client, s, world, ledger_world, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the file is built, to see it deleted
    login(client, "sup_xt")
    xiangtan = world.regions["湘潭市"]
    page = client.get("/reports")
    assert "下载月度台账" in page.get_data(as_text=True)
    response = client.get(f"/reports/ledger?month={MAR}&region={xiangtan.id}&format=xlsx")
    assert response.status_code == 200
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert "%E6%B9%98%E6%BD%AD%E5%B8%82" in response.headers["Content-Disposition"]  # 湘潭市
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    assert set(rows_of(book["整改台账"])) == {"双马填埋场渗滤液处理不到位", "=1+2", "三月交办的黑臭水体"}
    response.close()
    assert list(tmp_path.glob("ledger-*")) == []
    event = s.scalar(select(Event).where(Event.entity == "ledger", Event.action == "export"))
    assert event.membership_id == world.m["sup_xt"].id and event.entity_id == xiangtan.id
    assert event.data["month"] == MAR and event.data["rows"] == 3 and event.data["format"] == "xlsx"
    csv_response = client.get(f"/reports/ledger?month={FEB}&format=csv")
    assert csv_response.status_code == 200 and csv_response.get_data().startswith(b"\xef\xbb\xbf")
    assert client.get(f"/reports/ledger?month={FEB}&region={world.regions['株洲市'].id}").status_code == 404
    assert client.get(f"/reports/ledger?month={FEB}&format=pdf").status_code == 404
    future = client.get("/reports/ledger?month=2099-01")
    assert future.status_code == 302


def test_units_may_not_download(client, world):
    login(client, "unit_yh")
    assert client.get(f"/reports/ledger?month={FEB}").status_code == 403


def test_queries_do_not_grow_with_the_tasks(app, s, world, ledger_world, tmp_path):
    engine = app.extensions["tracker.engine"]
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        export(s, world, tmp_path, month=MAR)
        few = len(statements)
        for i in range(12):
            world.assigned(title=f"雨湖区第{i}个问题", lead="雨湖区人民政府", participants=["湘潭市生态环境局"],
                           now=at(3, 6))
            world.assigned(title=f"湘乡市第{i}个问题", region="湘乡市", lead="湘乡市人民政府", now=at(3, 6))
        s.commit()
        statements.clear()
        summary, _path = export(s, world, tmp_path, month=MAR)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert summary.rows == 28 and few > 10 and len(statements) <= few + 2, (few, len(statements))  # not per task


def test_a_task_silent_through_the_period_due_in_the_month_is_not_reported(s, world, tmp_path):
    task = world.assigned(title="涓水直排口整治", now=at(1, 5), deadline=D(2026, 12, 31))
    world.advance(task, "rectifying", now=at(1, 5))
    s.commit()
    _summary, path = export(s, world, tmp_path)
    book = openpyxl.load_workbook(path)
    assert rows_of(book["整改台账"])["涓水直排口整治"][H["not_reported"]].value == "是"
    assert "涓水直排口整治" in rows_of(book["本期未报送"])


def test_rows_read_from_the_tasks_columns_equal_the_replayed_history(s, world, ledger_world, tmp_path, monkeypatch):
    """A task with no event dated after D is read from its own columns, not replayed. Every action that
    moves those columns gives the same row either way: an approved extension, 改派 after the plan's
    approval (its approval date stays the last activity), a closure sent back, a task reopened, and a
    task whose closure falls after D (replayed)."""
    m = world.m
    extended = world.assigned(title="涓水直排口整治", deadline=D(2026, 6, 30), now=at(1, 10))
    world.advance(extended, "rectifying", now=at(1, 12))
    perform(s, extended, "request_extension", m["unit_yh"], at(4, 1), reason="雨季施工受阻",
            new_deadline=D(2026, 9, 30))
    perform(s, extended, "decide_extension", m["sup_xt"], at(4, 3), decision="approve")
    moved = world.assigned(title="竹埠港化工遗留污染治理", now=at(2, 2))
    world.advance(moved, "rectifying", now=at(2, 6))
    perform(s, moved, "reassign", m["sup_xt"], at(5, 6), leads=[world.units["湘潭市生态环境局"].id], reason="职责调整")
    returned = world.assigned(title="湘江沿岸砂石码头整治", now=at(2, 2))
    world.advance(returned, "verifying", now=at(3, 2))
    perform(s, returned, "return", m["sup_xt"], at(3, 9), reason="佐证材料不足")
    reopened = world.assigned(title="昭山片区黑臭水体", now=at(1, 20))
    world.advance(reopened, "closed", now=at(2, 20))
    perform(s, reopened, "reopen", m["sup_xt"], at(7, 1), reason="回头看发现返黑返臭", deadline=D(2026, 12, 31))
    s.commit()
    today = D(2026, 3, 11)  # for the February and March ledgers, 双马's closure (3-12) lies after "today"

    def workbooks(tag: str) -> list:
        return [openpyxl.load_workbook(export(s, world, tmp_path / tag, month=month, today=day)[1])
                for month, day in ((FEB, TODAY), ("2026-11", TODAY), (MAR, today))]

    (tmp_path / "kept").mkdir()
    (tmp_path / "replayed").mkdir()
    kept = workbooks("kept")
    monkeypatch.setattr(ledger, "_snapshots",
                        lambda ctx, batch, facts: schedule.snapshots_as_of(ctx.s, batch, ctx.as_of))
    replayed = workbooks("replayed")
    for a, b in zip(kept, replayed, strict=True):
        assert a.sheetnames == b.sheetnames
        for name in a.sheetnames:
            assert [[c.value for c in r] for r in a[name].iter_rows()] == \
                [[c.value for c in r] for r in b[name].iter_rows()], name
    november = rows_of(kept[1]["整改台账"])
    assert november["竹埠港化工遗留污染治理"][H["state"]].value == "已交办（待签收）"
    assert november["竹埠港化工遗留污染治理"][H["progress_on"]].value.date() == D(2026, 2, 6)  # the approval
    assert november["涓水直排口整治"][H["deadline"]].value.date() == D(2026, 9, 30)
    assert november["昭山片区黑臭水体"][H["state"]].value == "整改中"


def test_data_rows_are_the_xml_xlsxwriter_writes_for_the_same_cells(tmp_path):
    """The ledger's data rows are written as XML by the export itself (XlsxWriter's per-cell API was most
    of a 10⁵-row export's time): byte for byte what XlsxWriter writes for those cells, tricky text included."""
    values = [1, "双马填埋场", " 前导空格", "末尾空格 ", "a & b < c > d \"引号\"", "控制\x01字符\x1f", "_x0041_ 字面",
              "第一行\n第二行", "制表\t符", "非字符\ufffe", "长" * 40_000, "𠀀" * 20_000, 42, D(2026, 3, 1),
              D(1900, 1, 15), D(1900, 3, 1), None, "", 2.5]
    percent = 12
    ours = xlsxwriter.Workbook(str(tmp_path / "ours.xlsx"), {"constant_memory": True})
    fmt = ledger._Formats(ours)
    rows = ledger._Rows(fmt, [6] * len(values))
    rows.write(values, {percent: fmt.percent_xf})
    rows.fh.seek(0)
    written = rows.fh.read().decode()
    rows.close()
    ours.close()

    path = tmp_path / "theirs.xlsx"
    theirs = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_numbers": False, "strings_to_urls": False})
    fmt = ledger._Formats(theirs)
    ws = theirs.add_worksheet()
    ws.set_column(0, len(values) - 1, 10, fmt.text)
    for col, value in enumerate(values):
        if isinstance(value, str) and value:
            ws.write_string(2, col, value)
        elif isinstance(value, dt.date):
            ws.write_datetime(2, col, dt.datetime.combine(value, dt.time()), fmt.date)
        elif value is not None and value != "":
            ws.write_number(2, col, value, fmt.percent if col == percent else None)
    theirs.close()
    with zipfile.ZipFile(path) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    expected = sheet[sheet.index('<row r="3"'):sheet.index("</sheetData>")]
    assert written == expected


def _sheets(path) -> dict[str, list[tuple]]:
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in openpyxl.load_workbook(path)}


def test_a_large_export_reads_ahead_on_a_second_connection_that_sees_the_same(s, world, ledger_world, tmp_path,
                                                                             monkeypatch):
    """On PostgreSQL a large export reads the next batches on a second connection, in a thread, with the
    caller's snapshot: the same ledger. Not when the caller has written in its transaction (the second
    connection could not see that), and an error while reading ahead is raised to the caller."""
    if s.get_bind().dialect.name != "postgresql":
        pytest.skip("reading ahead is PostgreSQL's (a second connection with the same snapshot)")
    threads = []
    real = ledger._threaded
    monkeypatch.setattr(ledger, "_threaded", lambda items: threads.append(1) or real(items))
    monkeypatch.setattr(ledger, "BATCH", 1)  # a batch per task: several batches in flight
    expected = {suffix: export(s, world, tmp_path / "alone", month=MAR, suffix=suffix)[1]
                for suffix in ("xlsx", "csv") if (tmp_path / "alone").mkdir(exist_ok=True) or True}
    s.commit()
    assert threads == []  # four tasks: below READ_AHEAD_FROM
    monkeypatch.setattr(ledger, "READ_AHEAD_FROM", 1)
    (tmp_path / "ahead").mkdir()
    summary, xlsx = export(s, world, tmp_path / "ahead", month=MAR)
    _summary, csv_path = export(s, world, tmp_path / "ahead", month=MAR, suffix="csv")
    assert threads == [1, 1] and summary.rows == 4
    assert _sheets(xlsx) == _sheets(expected["xlsx"])
    assert csv_path.read_bytes() == expected["csv"].read_bytes()
    s.commit()
    # written in the caller's transaction and not committed: read on the caller's connection, and shown
    ledger_world["march"].remarks = "未提交的备注"
    s.flush()
    _summary, uncommitted = export(s, world, tmp_path / "ahead", month=MAR, suffix="csv")
    assert threads == [1, 1] and "未提交的备注" in uncommitted.read_text(encoding="utf-8-sig")
    s.rollback()
    # an error on the second connection reaches the caller, and the thread ends
    calls = []

    def failing(ctx, batch):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("读取中断")
        return real_facts(ctx, batch)

    real_facts = ledger._facts
    monkeypatch.setattr(ledger, "_facts", failing)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match="读取中断"):
        export(s, world, tmp_path / "ahead", month=MAR)
    assert "ledger-read-ahead" not in {t.name for t in threading.enumerate()} - before


def test_a_large_export_writes_its_rows_in_a_second_process_with_the_same_bytes(s, world, ledger_world, tmp_path,
                                                                                 monkeypatch):
    """From WRITER_FROM candidates the rows' XML is written by a process of its own: the same workbook,
    continued sheets included; a writer that dies is an error of the export, not a short file."""
    monkeypatch.setattr(ledger, "MAX_ROWS", 4)  # two tasks a sheet: parts opened as the rows come
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    _summary, here = export(s, world, tmp_path / "here", month=MAR)
    started = []
    real = ledger._Writer
    monkeypatch.setattr(ledger, "_Writer", lambda fmt: started.append(1) or real(fmt))
    monkeypatch.setattr(ledger, "WRITER_FROM", 1)
    summary, there = export(s, world, tmp_path / "there", month=MAR)
    assert started == [1] and summary.rows == 4 and "整改台账(2)" in summary.sheets
    with zipfile.ZipFile(here) as a, zipfile.ZipFile(there) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if name != "docProps/core.xml":  # the creation time
                assert a.read(name) == b.read(name), name
    folders = set(Path(tempfile.gettempdir()).glob("ledger-rows-*"))
    monkeypatch.setattr(ledger, "WRITER_CODE", "import sys; sys.stdin.buffer.read(10); sys.exit(3)")
    with pytest.raises(RuntimeError, match="台账写入进程意外退出"):
        export(s, world, tmp_path / "there", month=MAR)
    assert set(Path(tempfile.gettempdir()).glob("ledger-rows-*")) == folders  # its folder removed
