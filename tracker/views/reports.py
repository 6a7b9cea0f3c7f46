"""The 序时进度 report page: any past date, by channel × round, region or unit, with a drill-down
from every count to the tasks behind it. Supervisors, viewers and admins, within their subtree."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import quote_plus, urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tracker import archive, db, jobs, ledger, reports, settings
from tracker.audit import ActionError, record_event
from tracker.auth import current_membership
from tracker.babel import format_number, format_percent, translate
from tracker.i18n import N_
from tracker.inputs import small_int
from tracker.models import LedgerArchive, Region, Task, TaskUnit
from tracker.permissions import SUBTREE_ROLES, in_subtree, visible_tasks
from tracker.queries import region_choices
from tracker.securitylog import WHAT_LEDGER
from tracker.timeutil import local_date, utcnow
from tracker.views.security_log import record_request

bp = Blueprint("reports", __name__, url_prefix="/reports")

CELL_LABELS = {"total": N_("共"), "completed": N_("已完成"), "on_schedule": N_("达到序时进度"), "behind": N_("滞后"),
               "overdue": N_("其中逾期"), "extended": N_("其中经批准延期")}


LEDGER_FORMATS = ("xlsx", "csv")


def _region() -> Region:
    """The ``region`` of the query string (default: the membership's own), within its subtree."""
    membership = current_membership()
    if membership.role not in SUBTREE_ROLES:
        abort(403)
    region = db.session().get(Region, request.values.get("region", type=small_int) or membership.unit.region_id)
    if region is None or not in_subtree(membership, region):
        abort(404)
    return region


def _params():
    """(region, as_of, by) from the query string, within the membership's subtree."""
    region = _region()
    try:
        as_of = dt.date.fromisoformat(request.args.get("as_of", ""))
    except ValueError:
        as_of = local_date(utcnow())
    by = request.args.get("by") if request.args.get("by") in reports.GROUPINGS else "channel-round"
    return region, as_of, by


@bp.route("")
@login_required
def index():
    region, as_of, by = _params()
    s = db.session()
    time = settings.time_settings(s)
    report = reports.build(s, region, as_of, by, time, today=local_date(utcnow()))
    archived, changes = _against_archive(s, region, as_of, report, time)
    return render_template("reports/index.html", report=report, cells=CELL_LABELS, groupings=reports.GROUPINGS,
                           regions=region_choices(s, current_membership()), table=_table(report),
                           month=local_date(utcnow()).strftime("%Y-%m"), formats=LEDGER_FORMATS,
                           archived=archived, changes=changes)


def _table(report) -> list[tuple[str, list[tuple[str, str, str | None]], str]]:
    """The report's rows as printed: (group, [(cell, number, drill-down link or None)], 销号率). Built here
    rather than in the template: a report by unit has a thousand rows of six linked cells."""
    link = _cell_url(report)
    table = []
    for row in [*report.rows, report.total]:
        cells = [(key, format_number(n), link(row, key) if n else None)
                 for key in CELL_LABELS if (n := getattr(row, key)) is not None]
        table.append((" · ".join(translate(part) for part in row.group), cells, format_percent(row.closure_rate)))
    return table


def _cell_url(report):
    """The drill-down link of a row's cell. ``url_for`` is called once and each row's group encoded once:
    a report by unit has a thousand rows of six cells, and building each link whole took most of the page."""
    fixed = urlencode({"region": report.region.id, "as_of": report.as_of.isoformat(), "by": report.by})
    prefix = f"{url_for('reports.tasks')}?{fixed}"
    rows: dict[int, str] = {}

    def link(row, cell: str) -> str:
        if id(row) not in rows:
            rows[id(row)] = f"{prefix}&group={quote_plus(json.dumps(row.group, ensure_ascii=False))}"
        return f"{rows[id(row)]}&cell={cell}"

    return link


def _against_archive(s, region: Region, as_of: dt.date, report, time):
    """For the day an archive was made as of: the archive, and where today's live figures differ."""
    archived = s.scalar(select(LedgerArchive).where(LedgerArchive.region_id == region.id,
                                                    LedgerArchive.as_of == as_of))
    if archived is None:
        return None, []
    live = report if report.by == "channel-round" else reports.build(s, region, as_of, "channel-round", time,
                                                                     today=local_date(utcnow()))
    rows = [row.as_json() for row in [*live.rows, live.total]]
    return archived, archive.differences(archived, rows)


@bp.route("/tasks")
@login_required
def tasks():
    region, as_of, by = _params()
    cell = request.args.get("cell") if request.args.get("cell") in CELL_LABELS else "total"
    try:
        group = json.loads(request.args.get("group", "[]")[:1000])  # a row's group is a few names and ids
    except (json.JSONDecodeError, RecursionError):
        abort(404)
    s = db.session()
    report = reports.build(s, region, as_of, by, settings.time_settings(s), ids=True)
    row = reports.find_row(report, group)
    if row is None:
        abort(404)
    ids = row.task_ids.get(cell, [])
    listed = s.scalars(visible_tasks(current_membership()).where(Task.id.in_(ids)).order_by(Task.id).options(
        selectinload(Task.task_units).selectinload(TaskUnit.unit), selectinload(Task.region))).all() if ids else []
    return render_template("reports/tasks.html", report=report, row=row, cell=cell, cells=CELL_LABELS,
                           tasks=listed)




@bp.route("/ledger", methods=["GET", "POST"])
@login_required
def ledger_download():
    """月度台账 of a region within the user's scope. A small one (the subtree holds at most
    SYNC_EXPORT_MAX_TASKS tasks) is built in the request into a temporary file that is deleted once sent —
    one click, no waiting for the queue; a larger one becomes a background job (后台任务), posted by the
    page's form. The download is security-logged (DESIGN §9)."""
    region = _region()
    fmt = request.values.get("format", "xlsx")
    if fmt not in LEDGER_FORMATS:
        abort(404)
    s, now = db.session(), utcnow()
    month = request.values.get("month") or local_date(now).strftime("%Y-%m")
    if not jobs.ledger_is_small(s, region, current_app.config["SYNC_EXPORT_MAX_TASKS"]):
        return _ledger_job(s, region, month, fmt, now)
    handle, name = tempfile.mkstemp(prefix="ledger-", suffix=f".{fmt}")
    os.close(handle)
    path = Path(name)
    try:
        summary = ledger.export(s, region, month, path, today=local_date(now), settings=settings.time_settings(s))
    except ValueError as exc:
        path.unlink(missing_ok=True)
        flash(translate(exc), "error")
        return redirect(url_for("reports.index", region=region.id))
    except Exception:
        path.unlink(missing_ok=True)
        raise
    record_event(s, current_membership(), now, "export", entity="ledger", entity_id=region.id,
                 data={"region": region.name, "month": month, "as_of": summary.as_of, "format": fmt,
                       "rows": summary.rows})
    record_request("export", now, what=WHAT_LEDGER, region=region.name, month=month, format=fmt, rows=summary.rows)
    s.commit()
    as_of = summary.as_of
    return send_file(_DeletedOnClose(path), as_attachment=True,
                     download_name=f"{region.name}整改销号台账{as_of.year}年{as_of.month}月.{fmt}")


def _ledger_job(s, region: Region, month: str, fmt: str, now: dt.datetime):
    """Queue a large ledger as a background job and show its page. A link (GET) never queues work."""
    if request.method != "POST":
        flash(_("该台账较大，请在本页点击“下载”，在后台生成"), "info")
        return redirect(url_for("reports.index", region=region.id))
    try:
        job = jobs.submit(s, current_membership(), now, jobs.LEDGER_EXPORT,
                          {"region_id": region.id, "month": month, "format": fmt})
    except ActionError as exc:
        s.rollback()
        flash(translate(exc), "error")
        return redirect(url_for("reports.index", region=region.id))
    s.commit()
    flash(_("台账较大，已转入后台生成，可以离开本页，稍后在“我的后台任务”中下载"), "info")
    return redirect(url_for("jobs.detail", job_id=job.id))


class _DeletedOnClose(io.FileIO):
    """A temporary file that removes itself once the response has been sent and closed. (Not
    ``response.call_on_close``: ``send_file`` responses are passed through, and those callbacks never run.)"""

    def close(self) -> None:
        super().close()
        Path(self.name).unlink(missing_ok=True)
