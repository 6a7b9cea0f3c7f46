"""总览 (the dashboard) for supervisors, viewers (领导/查阅) and administrators, within their subtree;
units have their 待办 instead. Every number links to the task list filtered to exactly its tasks, and
every chart has its numbers as a table beside it (the page works without JavaScript)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from tracker import dashboard, db
from tracker.auth import current_membership
from tracker.babel import format_month
from tracker.inputs import small_int
from tracker.models import Membership, Region
from tracker.paths import STATIC_DIR
from tracker.permissions import SUBTREE_ROLES, in_subtree
from tracker.queries import region_choices
from tracker.timeutil import local_date, utcnow
from tracker.views.reports import CELL_LABELS as REPORT_CELLS

bp = Blueprint("dashboard", __name__)

# The chart library, installed from the npm registry by `make assets` and served from here.
CHART_JS = "vendor/chart.umd.js"
# The report's columns the dashboard shows (its rows carry no 经批准延期 figure).
CELL_LABELS = {key: REPORT_CELLS[key] for key in ("total", "completed", "on_schedule", "behind", "overdue")}
# Bucket colours of the charts, matching the 序时进度 lights of the task pages.
COLOURS = {"completed": "#a0aec0", "on_schedule": "#2f855a", "behind": "#d69e2e", "overdue": "#c0392b",
           "closed": "#1f6f50", "level": "#b7791f"}
STACKED = ("completed", "on_schedule", "behind")  # the three buckets add up to 共


def has_dashboard(membership: Membership) -> bool:
    return membership.role in SUBTREE_ROLES


def landing_url(membership: Membership | None) -> str:
    """Where a user starts: 总览 for viewers (领导/查阅, who have no 待办), 待办 for everyone else."""
    if membership is not None and membership.role == "viewer":
        return url_for("dashboard.index")
    return url_for("tasks.todo")


def chart_library_installed() -> bool:
    return (STATIC_DIR / CHART_JS).is_file()


@bp.route("/dashboard")
@login_required
def index():
    membership = current_membership()
    if not has_dashboard(membership):
        return redirect(url_for("tasks.todo"))
    s = db.session()
    region = s.get(Region, request.args.get("region", type=small_int) or membership.unit.region_id)
    if region is None or not in_subtree(membership, region):
        abort(404)
    board = dashboard.build(s, membership, region, local_date(utcnow()))
    return render_template("dashboard.html", board=board, cells=CELL_LABELS, tasks_url=tasks_url,
                           charts=charts(board), chart_js=CHART_JS if chart_library_installed() else None,
                           regions=region_choices(s, membership))


def tasks_url(figure: dashboard.Figure) -> str:
    """The task list of exactly the figure's tasks. The list's path is looked up once per request: a
    province's page links about a thousand numbers, and ``url_for`` for each was a third of its time."""
    base = g.get("task_list_path")
    if base is None:
        base = g.task_list_path = url_for("tasks.task_list")
    return f"{base}?{urlencode(figure.params, doseq=True)}" if figure.params else base


def charts(board: dashboard.Dashboard) -> dict[str, dict[str, Any]]:
    """What ``static/js/dashboard.js`` draws: labels, data and each bar's task-list link, by canvas id."""
    return {
        "chart-buckets": {
            "type": "doughnut", "labels": [_(CELL_LABELS[cell]) for cell in STACKED],
            "datasets": [_dataset(_("任务数"), [board.totals.figures[cell] for cell in STACKED],
                                  [COLOURS[cell] for cell in STACKED])],
        },
        "chart-region": _bar([_(row.label) for row in board.by_region], board.by_region, horizontal=True),
        "chart-channel": _bar([row.label for row in board.by_channel_round], board.by_channel_round,
                              horizontal=True),
        "chart-months": {
            "type": "bar", "labels": [format_month(m.start) for m in board.months],
            "datasets": [_dataset(_("销号"), [m.closed for m in board.months], COLOURS["closed"])],
        },
        "chart-levels": {
            "type": "bar", "labels": [_(level.name) for level in board.levels],
            "datasets": [_dataset(_("任务数"), [level.tasks for level in board.levels], COLOURS["level"])],
        },
    }


def _bar(labels: list[str], rows: list[dashboard.Row], *, horizontal: bool) -> dict[str, Any]:
    datasets = [_dataset(_(CELL_LABELS[cell]), [row.figures[cell] for row in rows], COLOURS[cell])
                for cell in STACKED]
    return {"type": "bar", "labels": labels, "datasets": datasets, "stacked": True, "horizontal": horizontal}


def _dataset(label: str, figures: list[dashboard.Figure], colour: str | list[str]) -> dict[str, Any]:
    return {"label": label, "data": [f.value for f in figures], "links": [tasks_url(f) for f in figures],
            "color": colour}
