"""The 序时进度 report page: any past date, by channel × round, region or unit, with a drill-down
from every count to the tasks behind it. Supervisors, viewers and admins, within their subtree."""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, abort, render_template, request
from flask_login import login_required
from sqlalchemy.orm import selectinload

from tracker import db, reports, settings
from tracker.auth import current_membership
from tracker.models import Region, Task, TaskUnit
from tracker.permissions import SUBTREE_ROLES, in_subtree, visible_tasks
from tracker.queries import region_choices
from tracker.timeutil import local_date, utcnow

bp = Blueprint("reports", __name__, url_prefix="/reports")

CELL_LABELS = {"total": "共", "completed": "已完成", "on_schedule": "达到序时进度", "behind": "滞后",
               "overdue": "其中逾期", "extended": "其中经批准延期"}


def _params():
    """(region, as_of, by) from the query string, within the membership's subtree."""
    membership = current_membership()
    if membership.role not in SUBTREE_ROLES:
        abort(403)
    s = db.session()
    region = s.get(Region, request.args.get("region", type=int) or membership.unit.region_id)
    if region is None or not in_subtree(membership, region):
        abort(404)
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
    report = reports.build(s, region, as_of, by, settings.time_settings(s))
    return render_template("reports/index.html", report=report, cells=CELL_LABELS, groupings=reports.GROUPINGS,
                           regions=region_choices(s, current_membership()), json=json)


@bp.route("/tasks")
@login_required
def tasks():
    region, as_of, by = _params()
    cell = request.args.get("cell") if request.args.get("cell") in CELL_LABELS else "total"
    try:
        group = json.loads(request.args.get("group", "[]"))
    except json.JSONDecodeError:
        abort(404)
    s = db.session()
    report = reports.build(s, region, as_of, by, settings.time_settings(s))
    row = reports.find_row(report, group)
    if row is None:
        abort(404)
    ids = row.task_ids.get(cell, [])
    listed = s.scalars(visible_tasks(current_membership()).where(Task.id.in_(ids)).order_by(Task.id).options(
        selectinload(Task.task_units).selectinload(TaskUnit.unit), selectinload(Task.region))).all() if ids else []
    return render_template("reports/tasks.html", report=report, row=row, cell=cell, cells=CELL_LABELS,
                           tasks=listed)


