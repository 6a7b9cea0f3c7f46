"""导入整改台账 (DESIGN §7): a city office's sheet as such offices write it — title rows merged across,
synonyms for headers in their own order, 问题来源 merged down over a block — becomes tasks with their
dated history; every bad input is refused with row, column and reason, and nothing is written."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import xlwt
from sqlalchemy import func, select

from tests.conftest import csrf_token, login
from tracker import chain, intake, jobs, reports, settings
from tracker.models import EscalationRecord, Event, Notification, OutboxMail, Region, Round, Task, Unit
from tracker.operations import perform
from tracker.timeutil import SHANGHAI

# The import runs on 2026-04-01 (a Wednesday), so a 销号日期 of 2026-03-10 lies in the past.
IMPORT_NOW = dt.datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)

HEADERS = ["序号", "问题名称", "牵头单位", "整改时限", "属地", "交办时间", "完成情况", "交办渠道", "编号", "批次",
           "配合单位", "整改进展", "完成比例", "申请销号时间", "销号时间", "所属问题", "备注"]
MERGED_DOWN = ("交办渠道", "所属问题")
FIRST_DATA_ROW = 4  # two title rows, then the header row
PROBLEM = "湘潭市垃圾填埋场渗滤液问题突出"


def city_rows() -> list[dict]:
    """湘潭市突改办's ledger: six tasks in every state the sheet can give."""
    provincial, central = "省级生态环境保护督察", "中央环保督察"
    return [
        {"序号": 1, "编号": "XT-001", "交办渠道": provincial, "批次": "第一轮“回头看”", "所属问题": PROBLEM,
         "问题名称": "双马填埋场渗滤液处理不到位", "属地": "雨湖区", "牵头单位": "雨湖区人民政府",
         "配合单位": "湘潭市生态环境局", "整改时限": "2026年6月底前", "交办时间": dt.datetime(2025, 9, 1),
         "完成情况": "整改中", "整改进展": "渗滤液处理站主体完工", "完成比例": 60},
        {"序号": 2, "编号": "XT-002", "交办渠道": provincial, "批次": "第一轮“回头看”", "所属问题": PROBLEM,
         "问题名称": "涓水直排口生活污水直排", "属地": "湘乡市", "牵头单位": "湘乡市人民政府",
         "整改时限": "2025年底前", "交办时间": dt.datetime(2025, 6, 15), "完成情况": "已销号",
         "申请销号时间": dt.datetime(2026, 3, 1), "销号时间": dt.datetime(2026, 3, 10)},
        {"序号": 3, "编号": "XT-003", "交办渠道": provincial, "批次": "第一轮“回头看”",
         "问题名称": "雨湖区黑臭水体治理滞后", "属地": "雨湖区", "牵头单位": "雨湖区人民政府",
         "整改时限": dt.datetime(2026, 3, 31), "交办时间": "2025-10-10", "完成情况": "待验收",
         "申请销号时间": "2026/2/20", "备注": "已提交销号材料"},
        {"序号": 4, "编号": "XT-004", "交办渠道": central, "批次": "第二轮",
         "问题名称": "湘潭高新区工业园污水管网不完善", "属地": "湘潭高新区", "牵头单位": "湘潭市生态环境局",
         "整改时限": "长期坚持", "交办时间": "2025/11/3", "完成情况": "持续推进"},
        {"序号": 5, "编号": "XT-005", "交办渠道": central, "批次": "第二轮",
         "问题名称": "雨湖区餐饮油烟扰民", "属地": "雨湖区", "完成情况": "待交办"},
        {"序号": 6, "编号": "XT-006", "交办渠道": central, "批次": "第二轮",
         "问题名称": "湘乡市砂石场扬尘污染", "属地": "湘乡市", "牵头单位": "湘乡市人民政府",
         "整改时限": "2025年12月底前", "交办时间": dt.datetime(2025, 7, 1), "完成情况": "滞后"},
    ]


def build_workbook(rows: list[dict], headers: list[str] = HEADERS) -> openpyxl.Workbook:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "整改台账"
    width = len(headers)
    for r, title in ((1, "湘潭市突出生态环境问题整改销号台账"), (2, "填报单位：湘潭市突出环境问题整改办公室")):
        ws.cell(r, 1, title)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
    for c, header in enumerate(headers, start=1):
        ws.cell(3, c, header)
    for r, row in enumerate(rows, start=FIRST_DATA_ROW):
        for c, header in enumerate(headers, start=1):
            if row.get(header) is not None:
                ws.cell(r, c, row[header])
    for header in MERGED_DOWN:
        if header in headers:
            _merge_runs(ws, headers.index(header) + 1, [row.get(header) for row in rows])
    return book


def _merge_runs(ws, col: int, values: list) -> None:
    """Merge each run of equal values down the column, as a city office formats a block."""
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            if i - start > 1 and values[start] is not None:
                ws.merge_cells(start_row=FIRST_DATA_ROW + start, start_column=col,
                               end_row=FIRST_DATA_ROW + i - 1, end_column=col)
            start = i


def save(tmp_path, rows=None, headers=HEADERS, name="湘潭市整改台账.xlsx"):
    path = tmp_path / name
    build_workbook(city_rows() if rows is None else rows, headers).save(path)
    return path


def counts(s) -> tuple[int, int]:
    s.expire_all()
    return s.scalar(select(func.count()).select_from(Task)), s.scalar(select(func.count()).select_from(Event))


def task(s, code: str) -> Task:
    return s.scalar(select(Task).where(Task.code == code))


def history(s, t: Task) -> list[tuple[str, dt.date, str | None]]:
    events = s.scalars(select(Event).where(Event.task_id == t.id).order_by(Event.effective_on, Event.id))
    return [(e.action, e.effective_on, e.to_state) for e in events]


def run(s, world, path, actor="sup_xt", now=IMPORT_NOW, **options):
    return intake.import_ledger(s, path, world.m[actor] if actor else None, now, **options)


# --- a valid sheet -----------------------------------------------------------------------------------------


def test_a_city_sheet_imports_with_fields_states_and_history(s, world, tmp_path):
    report = run(s, world, save(tmp_path))
    assert report.errors == [], [p.describe() for p in report.errors]
    s.commit()
    assert (report.created, report.updated, report.unchanged) == (6, 0, 0)
    assert report.summary() == "已导入：新建6项，更新0项，未变0项"

    first = task(s, "XT-001")
    assert first.channel.name == "省级生态环境保护督察"  # merged down from the block's first row
    assert first.round.name == "第一轮“回头看”" and first.region.name == "雨湖区"
    assert [u.name for u in first.lead_units] == ["雨湖区人民政府"]
    assert [u.name for u in first.participant_units] == ["湘潭市生态环境局"]
    assert (first.state, first.assigned_on, first.deadline, first.deadline_text, first.deadline_kind) == (
        "rectifying", dt.date(2025, 9, 1), dt.date(2026, 6, 30), "2026年6月底前", "date")
    assert first.original_deadline == first.deadline and first.cycle_started_on == first.assigned_on
    assert (first.latest_percent, first.latest_report_on) == (60, dt.date(2026, 4, 1))
    assert first.assigned_by_unit.name == first.registered_by_unit.name == "湘潭市突出环境问题整改办公室"
    assert first.schedule == "on_schedule" and first.schedule_as_of == dt.date(2026, 4, 1)
    assert history(s, first) == [("import", dt.date(2025, 9, 1), "rectifying"),
                                 ("report", dt.date(2026, 4, 1), "rectifying")]

    closed = task(s, "XT-002")
    assert closed.problem is not None and closed.problem_id == first.problem_id  # 所属问题 merged over both
    assert closed.problem.title == PROBLEM
    assert (closed.state, closed.closure_applied_on, closed.closed_on) == (
        "closed", dt.date(2026, 3, 1), dt.date(2026, 3, 10))
    assert history(s, closed) == [("import", dt.date(2025, 6, 15), "rectifying"),
                                  ("submit", dt.date(2026, 3, 1), "verifying"),
                                  ("close", dt.date(2026, 3, 10), "closed")]

    verifying = task(s, "XT-003")
    assert (verifying.state, verifying.deadline, verifying.assigned_on) == (
        "verifying", dt.date(2026, 3, 31), dt.date(2025, 10, 10))
    assert verifying.closure_applied_on == dt.date(2026, 2, 20) and verifying.remarks == "已提交销号材料"

    long_term = task(s, "XT-004")
    assert long_term.channel.name == "中央生态环境保护督察"  # by alias
    assert (long_term.deadline, long_term.deadline_kind, long_term.assigned_on) == (
        None, "long_term", dt.date(2025, 11, 3))

    pending = task(s, "XT-005")
    assert (pending.state, pending.assigned_on, pending.task_units) == ("pending", None, [])
    assert history(s, pending) == [("import", dt.date(2026, 4, 1), "pending")]

    event = s.scalar(select(Event).where(Event.task_id == first.id, Event.action == "import"))
    assert event.membership_id == world.m["sup_xt"].id
    assert event.data["source"] == "湘潭市整改台账.xlsx" and event.data["row"] == FIRST_DATA_ROW
    assert event.data["deadline"] == "2026-06-30" and event.data["assigned_on"] == "2025-09-01"
    summary = s.scalar(select(Event).where(Event.entity == "import"))
    assert summary.data["created"] == 6 and summary.data["file"] == "湘潭市整改台账.xlsx"


def test_an_overdue_import_gets_a_baseline_and_nothing_is_sent(s, world, tmp_path):
    run(s, world, save(tmp_path))
    s.commit()
    overdue = task(s, "XT-006")
    assert overdue.overdue and overdue.schedule == "behind"
    records = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == overdue.id)).all()
    assert records and {r.status for r in records} == {"baseline"}
    assert s.scalar(select(func.count()).select_from(Notification)) == 0
    assert s.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_created_tasks_carry_reports_baselines_and_chains_that_verify_and_go_on(s, world, tmp_path):
    """The tasks are written table by table in bulk; each has what the object-by-object writing gave it:
    the importer's progress report, its baseline records each with its event, its history before them,
    a hash chain that verifies, and a version an ordinary action then bumps."""
    run(s, world, save(tmp_path))
    s.commit()
    first, overdue = task(s, "XT-001"), task(s, "XT-006")
    assert [(r.reported_on, r.text, r.percent, r.purpose, r.membership_id) for r in first.reports] == [
        (dt.date(2026, 4, 1), "渗滤液处理站主体完工", 60, "progress", world.m["sup_xt"].id)]
    records = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == overdue.id)).all()
    events = s.scalars(select(Event).where(Event.task_id == overdue.id).order_by(Event.id)).all()
    assert [e.action for e in events[:1]] == ["import"]
    assert sorted((e.data["level"], e.data["status"]) for e in events[1:]) == sorted(
        (r.level, r.status) for r in records)
    assert {e.action for e in events[1:]} <= {"escalate", "remind"} and len(events) == 1 + len(records) > 1
    assert all(e.prev_hash == (events[i - 1].hash if i else None) for i, e in enumerate(events))
    assert first.version == 1
    perform(s, first, "report", world.m["unit_yh"], IMPORT_NOW + dt.timedelta(days=1), text="处理站调试", percent=80)
    s.commit()
    assert first.version == 2
    tally = chain.Tally()
    assert list(chain.verify(s.connection(), tally)) == [] and tally.events > 6 * 2


def test_the_report_as_of_a_past_date_follows_the_imported_history(s, world, tmp_path):
    run(s, world, save(tmp_path))
    s.commit()
    closed = task(s, "XT-002")
    times = settings.time_settings(s)
    march = reports.build(s, world.regions["湘潭市"], dt.date(2026, 3, 31), "channel-round", times, ids=True)
    february = reports.build(s, world.regions["湘潭市"], dt.date(2026, 2, 28), "channel-round", times, ids=True)
    assert closed.id in march.total.task_ids["completed"]
    assert closed.id not in february.total.task_ids["completed"]
    assert closed.id in february.total.task_ids["overdue"]  # still open at the end of February, past 2025年底
    assert (march.total.total, march.total.completed, march.total.behind, march.total.overdue) == (5, 1, 2, 1)
    assert (february.total.total, february.total.completed) == (5, 0)


def test_dry_run_validates_and_writes_nothing(s, world, tmp_path):
    before = counts(s)
    report = run(s, world, save(tmp_path), dry_run=True)
    assert report.ok and report.created == 6
    assert report.summary() == "校验通过（试运行，未写入）：将新建6项，更新0项，未变0项"
    s.rollback()
    assert counts(s) == before


# --- bad input ---------------------------------------------------------------------------------------------


def _with(code: str, **changes) -> list[dict]:
    rows = city_rows()
    for row in rows:
        if row["编号"] == code:
            row.update(changes)
    return rows


def _column(header: str) -> str:
    return openpyxl.utils.get_column_letter(HEADERS.index(header) + 1)


ROW_CASES = {
    "closure before 交办": (_with("XT-002", 销号时间=dt.datetime(2025, 1, 5), 申请销号时间=None), "XT-002", "销号时间",
                          "早于交办日期"),
    "closure after today": (_with("XT-002", 销号时间=dt.datetime(2026, 5, 1)), "XT-002", "销号时间", "晚于今天"),
    "unknown channel": (_with("XT-004", 交办渠道="省级生态环境保护督查"), "XT-004", "交办渠道",
                        "最接近的是“省级生态环境保护督察”"),
    "unknown unit": (_with("XT-001", 牵头单位="雨湖区住建局"), "XT-001", "牵头单位", "找不到单位“雨湖区住建局”"),
    "out of scope": (_with("XT-006", 属地="攸县", 牵头单位="攸县人民政府"), "XT-006", "属地", "不在您的管辖范围内"),
    "bad deadline": (_with("XT-001", 整改时限="尽快完成"), "XT-001", "整改时限", "无法识别的时限要求：“尽快完成”"),
    "percent": (_with("XT-001", 完成比例=120), "XT-001", "完成比例", "0到100"),
    "unknown round": (_with("XT-001", 批次="第九轮"), "XT-001", "批次", "批次/轮次“第九轮”不存在"),
    "unknown state": (_with("XT-001", 完成情况="差不多了"), "XT-001", "完成情况", "整改状态“差不多了”无法识别"),
    "missing lead": (_with("XT-006", 牵头单位=None), "XT-006", "牵头单位", "请填写责任单位"),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_a_bad_row_is_reported_with_row_column_and_reason_and_nothing_is_written(s, world, tmp_path, case):
    rows, code, header, reason = ROW_CASES[case]
    before = counts(s)
    report = run(s, world, save(tmp_path, rows))
    s.rollback()
    assert counts(s) == before
    row = FIRST_DATA_ROW + [r["编号"] for r in rows].index(code)
    assert any(p.row == row and p.column == _column(header) and p.header == header and reason in p.message
               for p in report.errors), [p.describe() for p in report.errors]
    assert report.summary().startswith("导入失败")
    assert any(p.describe().startswith(f"第{row}行 第{_column(header)}列（{header}）：") for p in report.errors)


def test_duplicate_codes_in_the_file_name_the_first_row(s, world, tmp_path):
    rows = city_rows()
    rows.append({**rows[0], "序号": 7, "问题名称": "双马填埋场（重复）"})
    before = counts(s)
    report = run(s, world, save(tmp_path, rows))
    s.rollback()
    assert counts(s) == before
    assert [(p.row, p.message) for p in report.errors] == [
        (FIRST_DATA_ROW + 6, "问题编号“XT-001”与第4行重复（同一问题来源、批次和地区）")]


def test_a_formula_without_a_cached_value_is_reported(s, world, tmp_path):
    path = tmp_path / "公式.xlsx"
    book = build_workbook(city_rows())
    book.active.cell(FIRST_DATA_ROW, HEADERS.index("完成比例") + 1, "=50+10")  # openpyxl saves no cached value
    book.save(path)
    before = counts(s)
    report = run(s, world, path)
    s.rollback()
    assert counts(s) == before
    assert [(p.row, p.column, p.header) for p in report.errors] == [(FIRST_DATA_ROW, _column("完成比例"), "完成比例")]
    assert "公式=50+10没有计算结果" in report.errors[0].message


def test_a_missing_required_column_is_named(s, world, tmp_path):
    headers = [h for h in HEADERS if h != "属地"]
    report = run(s, world, save(tmp_path, headers=headers))
    assert [p.describe() for p in report.errors] == ["缺少必需的列“所在地区”"]


def _file(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


OLE = bytes.fromhex("D0CF11E0A1B11AE1")
FILE_CASES = {
    "not excel": (b"%PDF-1.4 not a workbook", "不是 Excel 文件"),
    "corrupt xlsx": (b"PK\x03\x04" + b"\x00" * 200, "文件已损坏"),
    "corrupt xls": (OLE + b"\x00" * 600, "文件已损坏"),
    "encrypted": (OLE + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 100,
                  "文件已加密（设有密码），请去除密码后再导入"),
    "empty file": (b"", "文件为空"),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_a_file_that_cannot_be_read_is_refused_clearly(s, world, tmp_path, case):
    content, message = FILE_CASES[case]
    before = counts(s)
    report = run(s, world, _file(tmp_path, "台账.xlsx", content))
    assert counts(s) == before
    assert len(report.errors) == 1 and message in report.errors[0].message
    assert report.errors[0].row is None


def test_an_empty_sheet_and_a_file_over_the_limit_are_refused(s, world, tmp_path):
    path = tmp_path / "空表.xlsx"
    openpyxl.Workbook().save(path)
    assert [p.message for p in run(s, world, path).errors] == ["工作表为空"]
    big = save(tmp_path)
    assert "超过" in run(s, world, big, max_bytes=1024).errors[0].message


def test_a_unit_member_cannot_import(s, world, tmp_path):
    report = run(s, world, save(tmp_path), actor="unit_yh")
    assert [p.message for p in report.errors] == ["只有督办人员和管理员可以导入台账"]


# --- re-import ------------------------------------------------------------------------------------------------


def test_reimport_is_refused_without_update_and_changes_nothing_when_identical(s, world, tmp_path):
    path = save(tmp_path)
    run(s, world, path)
    s.commit()
    before = counts(s)
    again = run(s, world, path)
    assert len(again.errors) == 6 and "已在台账中" in again.errors[0].message
    s.rollback()
    same = run(s, world, path, update=True)
    assert same.ok and (same.created, same.updated, same.unchanged) == (0, 0, 6)
    s.commit()
    assert counts(s) == before


def test_update_changes_only_cells_with_a_value_and_records_the_edit(s, world, tmp_path):
    run(s, world, save(tmp_path))
    s.commit()
    rows = _with("XT-001", 备注="已约谈雨湖区分管负责人", 问题名称="双马垃圾填埋场渗滤液处理不到位")
    rows = [{k: v for k, v in r.items() if k not in ("备注", "整改进展")} if r["编号"] == "XT-003" else r
            for r in rows]  # empty cells for XT-003: they must not erase its 备注
    report = run(s, world, save(tmp_path, rows, name="更新.xlsx"), update=True)
    assert report.ok, [p.describe() for p in report.errors]
    s.commit()
    assert (report.created, report.updated, report.unchanged) == (0, 1, 5)
    first = task(s, "XT-001")
    assert first.title == "双马垃圾填埋场渗滤液处理不到位" and first.remarks == "已约谈雨湖区分管负责人"
    assert task(s, "XT-003").remarks == "已提交销号材料"
    edit = s.scalar(select(Event).where(Event.task_id == first.id, Event.action == "edit"))
    assert edit.data["before"] == {"title": "双马填埋场渗滤液处理不到位", "remarks": ""}
    assert edit.data["after"]["remarks"] == "已约谈雨湖区分管负责人"


def test_update_refuses_a_change_of_state(s, world, tmp_path):
    run(s, world, save(tmp_path))
    s.commit()
    before = counts(s)
    rows = _with("XT-001", 完成情况="已销号", 销号时间=dt.datetime(2026, 3, 20), 备注="改了备注")
    report = run(s, world, save(tmp_path, rows, name="改状态.xlsx"), update=True)
    s.rollback()
    assert counts(s) == before and task(s, "XT-001").remarks == ""
    assert [(p.row, p.header) for p in report.errors] == [(FIRST_DATA_ROW, "完成情况")]
    assert "台账：整改中，文件：已销号" in report.errors[0].message


# --- create missing ----------------------------------------------------------------------------------------


def _yuetang_rows() -> list[dict]:
    return [{"序号": 1, "编号": "YT-001", "交办渠道": "省级生态环境保护督察", "批次": "2026年专项",
             "问题名称": "岳塘区竹埠港遗留污染地块", "属地": "岳塘区", "牵头单位": "岳塘区人民政府",
             "配合单位": "岳塘区城市管理和综合执法局", "整改时限": "2026年底前", "交办时间": dt.datetime(2026, 1, 5),
             "完成情况": "整改中"}]


def test_unknown_units_regions_and_rounds_are_errors_unless_created(s, world, tmp_path):
    path = save(tmp_path, _yuetang_rows())
    refused = run(s, world, path, actor=None, region=world.regions["湘潭市"])
    assert {p.header for p in refused.errors} == {"批次", "属地"}  # units are looked up once the region is known
    s.rollback()
    report = run(s, world, path, actor=None, region=world.regions["湘潭市"], create_missing=True)
    assert report.ok, [p.describe() for p in report.errors]
    s.commit()
    assert report.created_regions == ["岳塘区（湘潭市）"]
    assert report.created_units == ["岳塘区人民政府（岳塘区）", "岳塘区城市管理和综合执法局（岳塘区）"]
    assert report.created_rounds == ["2026年专项"]
    region = s.scalar(select(Region).where(Region.name == "岳塘区"))
    assert region.parent_id == world.regions["湘潭市"].id and region.path.startswith(world.regions["湘潭市"].path)
    kinds = dict(s.execute(select(Unit.name, Unit.kind).where(Unit.region_id == region.id)).all())
    assert kinds == {"岳塘区人民政府": "government", "岳塘区城市管理和综合执法局": "department"}
    assert s.scalar(select(Round.id).where(Round.name == "2026年专项"))
    created = task(s, "YT-001")
    # At the command line the province's coordinating unit registers and assigns.
    assert created.assigned_by_unit.name == "湖南省生态环境保护督察工作领导小组办公室"
    assert [u.name for u in created.lead_units] == ["岳塘区人民政府"]


def test_a_supervisor_cannot_create_missing_units(s, world, tmp_path):
    report = run(s, world, save(tmp_path, _yuetang_rows()), create_missing=True)
    assert "只有管理员可以新建" in report.errors[0].message


# --- .xls ---------------------------------------------------------------------------------------------------


def test_an_xls_file_with_merged_cells_and_date_cells_imports(s, world, tmp_path):
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("整改台账")
    dates = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    percent = xlwt.easyxf(num_format_str="0%")
    ws.write_merge(0, 0, 0, len(HEADERS) - 1, "湘潭市突出生态环境问题整改销号台账")
    for c, header in enumerate(HEADERS):
        ws.write(2, c, header)
    rows = city_rows()[:3]
    channel = HEADERS.index("交办渠道")
    ws.write_merge(3, 5, channel, channel, rows[0]["交办渠道"])
    for r, row in enumerate(rows, start=3):
        for c, header in enumerate(HEADERS):
            value = row.get(header)
            if value is None or c == channel:
                continue
            if isinstance(value, dt.datetime):
                ws.write(r, c, value, dates)
            elif header == "完成比例":
                ws.write(r, c, value / 100, percent)
            else:
                ws.write(r, c, value)
    path = tmp_path / "湘潭市整改台账.xls"
    book.save(str(path))
    report = run(s, world, path)
    assert report.ok, [p.describe() for p in report.errors]
    s.commit()
    first = task(s, "XT-001")
    assert first.channel.name == "省级生态环境保护督察" and first.latest_percent == 60
    assert task(s, "XT-002").closed_on == dt.date(2026, 3, 10)
    assert task(s, "XT-003").channel_id == first.channel_id  # the merged block fills the third row


# --- the command line and the upload page ----------------------------------------------------------------------


def test_cli_exit_codes_and_output(app, world, s, tmp_path):
    runner = app.test_cli_runner()
    path = save(tmp_path)
    dry = runner.invoke(args=["ledger", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "校验通过（试运行，未写入）：将新建6项" in dry.output
    assert counts(s)[0] == 0
    done = runner.invoke(args=["ledger", "import", str(path)])
    assert done.exit_code == 0, done.output
    assert "已导入：新建6项，更新0项，未变0项" in done.output
    assert counts(s)[0] == 6
    again = runner.invoke(args=["ledger", "import", str(path)])
    assert again.exit_code == 1
    assert f"第{FIRST_DATA_ROW}行 第{_column('编号')}列（编号）：问题编号“XT-001”已在台账中" in again.output
    same = runner.invoke(args=["ledger", "import", str(path), "--update"])
    assert same.exit_code == 0 and "已导入：新建0项，更新0项，未变6项" in same.output
    lonely = runner.invoke(args=["ledger", "import", str(path), "--create-missing"])
    assert lonely.exit_code == 1 and "--region" in lonely.output
    created = runner.invoke(args=["ledger", "import", str(save(tmp_path, _yuetang_rows(), name="岳塘.xlsx")),
                                  "--create-missing", "--region", "湘潭市"])
    assert created.exit_code == 0, created.output
    assert "新建地区：岳塘区（湘潭市）" in created.output and "新建批次：2026年专项" in created.output


def _upload(app, client, path, **options):
    """Upload on the page, let the background job run (as the scheduler would), and open the job's page."""
    token = csrf_token(client.get("/import").get_data(as_text=True))
    data = {"csrf_token": token, "file": (io.BytesIO(path.read_bytes()), path.name),
            **{k: "y" for k, v in options.items() if v}}
    posted = client.post("/import", data=data, content_type="multipart/form-data")
    assert posted.status_code == 302 and "/jobs/" in posted.headers["Location"]
    jobs.run_pending(app, clock=lambda: IMPORT_NOW)
    return client.get(posted.headers["Location"])


def test_the_upload_page_shows_the_report(app, client, world, s, tmp_path):
    login(client, "sup_xt")
    page = client.get("/import")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and "在后台校验和导入" in html
    assert 'href="/import"' in client.get("/todo").get_data(as_text=True)

    bad = _upload(app, client, save(tmp_path, _with("XT-001", 整改时限="尽快完成")))
    text = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "未写入任何数据" in text
    assert f"<td>{FIRST_DATA_ROW}</td><td>{_column('整改时限')}（整改时限）</td>" in text
    assert "无法识别的时限要求：“尽快完成”" in text
    assert counts(s)[0] == 0

    dry = _upload(app, client, save(tmp_path), dry_run=True)
    assert "校验通过（试运行，未写入）：将新建6项" in dry.get_data(as_text=True)
    assert counts(s)[0] == 0
    done = _upload(app, client, save(tmp_path))
    assert "已导入：新建6项，更新0项，未变0项" in done.get_data(as_text=True)
    assert counts(s)[0] == 6


def test_the_upload_page_is_for_supervisors_and_admins(client, world):
    login(client, "unit_yh")
    assert client.get("/import").status_code == 403


def test_a_literal_percent_sign_is_not_a_percent_format():
    """The export writes 完成进度 as 40 shown as 40% (a literal sign): it must import back as 40."""
    is_percent = intake._is_percent_format
    assert is_percent("0%") and is_percent("0.0%")
    assert not is_percent('0"%"') and not is_percent("0\\%") and not is_percent("General")
