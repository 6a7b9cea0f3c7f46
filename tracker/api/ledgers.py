"""The §5 序时进度 report, the monthly closure ledger as a download, and the archived ledgers: for
supervisors, viewers and administrators, within their region subtree (a region outside it answers 404)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import current_app, send_file
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tracker import ledger, reports, settings
from tracker.api import schemas as sc
from tracker.api import serialize
from tracker.api.problems import ApiError
from tracker.api.registry import ApiContext, endpoint
from tracker.audit import record_event
from tracker.models import LedgerArchive, Region
from tracker.permissions import SUBTREE_ROLES, in_subtree, visible_regions
from tracker.securitylog import WHAT_ARCHIVE, WHAT_LEDGER
from tracker.timeutil import local_date
from tracker.views.reports import _DeletedOnClose as DeletedOnClose

TAG = "ledger"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS = (401, 403, 404, 422, 429)


def _subtree_region(ctx: ApiContext, region_id: int | None) -> Region:
    m = ctx.membership
    if m.role not in SUBTREE_ROLES:
        raise ApiError("FORBIDDEN", "责任单位身份不能查看汇总报表和台账")
    region = ctx.s.get(Region, region_id or m.unit.region_id)
    if region is None or not in_subtree(m, region):
        raise ApiError("NOT_FOUND", "地区不存在，或不在您的管辖范围内")
    return region


def _row(row: reports.Row) -> sc.ReportRowOut:
    return sc.ReportRowOut(**row.as_json())


@endpoint("GET", "/report", name="schedule_report", tag=TAG, query=sc.ReportQuery, response=sc.ScheduleReportOut,
          errors=ERRORS, summary="序时进度报表 · The 序时进度 report (DESIGN §5)",
          description="截至某日，按来源和批次、地区或责任单位汇总：共、已完成、达到序时进度、滞后（其中逾期）、"
                      "其中经批准延期、销号率。rows 与 `tracker report --json` 的输出相同。\n\nAs of a date, grouped "
                      "by channel × round, region or lead unit; rows have the shape of `tracker report --json`.")
def schedule_report(ctx: ApiContext, query: sc.ReportQuery) -> sc.ScheduleReportOut:
    region = _subtree_region(ctx, query.region)
    as_of = query.as_of or local_date(ctx.now)
    built = reports.build(ctx.s, region, as_of, query.by, settings.time_settings(ctx.s), today=local_date(ctx.now))
    return sc.ScheduleReportOut(region=serialize.ref(region), as_of=as_of, by=query.by,
                                rows=[_row(r) for r in built.rows], total=_row(built.total))


@endpoint("GET", "/ledger", name="export_ledger", tag=TAG, query=sc.LedgerQuery, errors=ERRORS,
          download=(XLSX_TYPE, "text/csv"), summary="导出月度整改销号台账 · Export the monthly closure ledger",
          description="某地区（含下级）某月的月度整改销号台账，xlsx（汇总、整改台账、本月销号、逾期及督办、本期未报送）"
                      "或 csv（UTF-8 BOM，整改台账）。导出记入安全日志。\n\nThe monthly ledger of a region's subtree "
                      "as xlsx or csv (UTF-8 with BOM); every export is security-logged.")
def export_ledger(ctx: ApiContext, query: sc.LedgerQuery):
    region = _subtree_region(ctx, query.region)
    today = local_date(ctx.now)
    month = query.month or today.strftime("%Y-%m")
    handle, name = tempfile.mkstemp(prefix="ledger-", suffix=f".{query.format}")
    os.close(handle)
    path = Path(name)
    try:
        summary = ledger.export(ctx.s, region, month, path, today=today, settings=settings.time_settings(ctx.s))
    except ValueError as exc:
        path.unlink(missing_ok=True)
        raise ApiError("VALIDATION_ERROR", str(exc)) from None
    except Exception:
        path.unlink(missing_ok=True)
        raise
    record_event(ctx.s, ctx.membership, ctx.now, "export", entity="ledger", entity_id=region.id,
                 data={"region": region.name, "month": month, "as_of": summary.as_of, "format": query.format,
                       "rows": summary.rows, "via": "api"})
    ctx.security_log("export", what=WHAT_LEDGER, region=region.name, month=month, format=query.format,
                     rows=summary.rows)
    as_of = summary.as_of
    return send_file(DeletedOnClose(path), as_attachment=True,
                     mimetype=XLSX_TYPE if query.format == "xlsx" else "text/csv",
                     download_name=f"{region.name}整改销号台账{as_of.year}年{as_of.month}月.{query.format}")


@endpoint("GET", "/archives", name="list_archives", tag=TAG, query=sc.ArchiveQuery, response=sc.ArchiveList,
          errors=ERRORS, summary="台账归档 · Archived monthly ledgers",
          description="每月第一个工作日归档的上月台账（正式数据，不再改变），本身份地区及下级。\n\nLast month's ledger "
                      "archived on each month's first working day (official, never changed), within the subtree.")
def list_archives(ctx: ApiContext, query: sc.ArchiveQuery) -> sc.ArchiveList:
    m = ctx.membership
    if m.role not in SUBTREE_ROLES:
        raise ApiError("FORBIDDEN", "责任单位身份不能查看台账归档")
    regions = visible_regions(m).with_only_columns(Region.id)
    rows = select(LedgerArchive).where(LedgerArchive.region_id.in_(regions))
    if query.month:
        rows = rows.where(LedgerArchive.month == query.month)
    if query.region:
        rows = rows.where(LedgerArchive.region_id == query.region)
    archives = ctx.s.scalars(rows.order_by(LedgerArchive.month.desc(), LedgerArchive.region_id)
                             .options(selectinload(LedgerArchive.region)).limit(500)).all()
    return sc.ArchiveList(items=[serialize.archive(a) for a in archives])


@endpoint("GET", "/archives/{archive_id}/file", name="download_archive", tag=TAG, errors=(401, 403, 404, 429),
          download=(XLSX_TYPE,), summary="下载归档台账 · Download an archived ledger",
          description="下载记入安全日志。\n\nEvery download is security-logged.")
def download_archive(ctx: ApiContext, archive_id: int):
    m = ctx.membership
    if m.role not in SUBTREE_ROLES:
        raise ApiError("FORBIDDEN", "责任单位身份不能查看台账归档")
    archive = ctx.s.get(LedgerArchive, archive_id)
    if archive is None or not in_subtree(m, archive.region):
        raise ApiError("NOT_FOUND", "归档台账不存在，或不在您的管辖范围内")
    path = Path(current_app.config["LEDGER_FOLDER"]) / archive.stored_name
    if not path.is_file():
        raise ApiError("NOT_FOUND", "归档台账文件不存在")
    record_event(ctx.s, m, ctx.now, "download", entity="ledger_archive", entity_id=archive.id,
                 data={"region": archive.region.name, "month": archive.month, "via": "api"})
    ctx.security_log("download", what=WHAT_ARCHIVE, region=archive.region.name, month=archive.month)
    year, month = archive.month.split("-")
    return send_file(path, as_attachment=True, mimetype=XLSX_TYPE,
                     download_name=f"{archive.region.name}整改销号台账{year}年{int(month)}月（归档）.xlsx")

