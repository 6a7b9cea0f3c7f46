"""The list's workbench: bulk actions (批量办理), the CSV export of the list, saved filters (保存的筛选),
the filters the list remembers per membership in the session, and the unit type-ahead (查找单位) of the
list's and the action forms' unit fields."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
)
from flask import url_for as _url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy.orm.exc import StaleDataError

from tracker import bulk, db, list_export, saved_filters, schedule
from tracker.audit import CONFLICT_MESSAGE, ActionError, record_event
from tracker.auth import current_membership
from tracker.babel import translate
from tracker.forms import ACTION_FORMS, CsrfOnlyForm, options
from tracker.models import Membership
from tracker.permissions import can
from tracker.queries import TaskFilter, unit_matches
from tracker.saved_filters import MAX_QUERY, list_query
from tracker.securitylog import WHAT_TASK_LIST
from tracker.timeutil import local_date, utcnow
from tracker.views.common import attempt, unit_picker
from tracker.views.security_log import record_request
from tracker.workflow import TRANSITIONS

bp = Blueprint("lists", __name__)

REMEMBERED = "list_filters"  # session key: {membership id: the list's last query string}


# --- the filters the list remembers ----------------------------------------------------------------


def remembered_query(membership: Membership) -> str:
    return (session.get(REMEMBERED) or {}).get(str(membership.id), "")


def remember_query(membership: Membership, query: str) -> None:
    """Keep the list's last filters for this membership (the cookie stays small: one short string each)."""
    kept = dict(session.get(REMEMBERED) or {})
    if query and len(query) <= MAX_QUERY:
        kept[str(membership.id)] = query
    else:
        kept.pop(str(membership.id), None)
    if kept != (session.get(REMEMBERED) or {}):
        session[REMEMBERED] = kept


def list_url(query: str = "") -> str:
    base = _url_for("tasks.task_list")
    return f"{base}?{query}" if query else base


def list_extras(s, membership: Membership, query: str) -> dict:
    """What the list page shows besides the tasks: saved filters, 督办等级 choices, the export link."""
    return {
        "query": query,
        "saved": saved_filters.filters_of(s, membership.user_id),
        "save_form": CsrfOnlyForm(),
        "levels": [(r.level, r.name) for r in schedule.load_rules(s).values() if not r.against_region],
        "export_url": f"{_url_for('lists.export_csv')}?{query}" if query else _url_for("lists.export_csv"),
        "can_bulk": membership.role == "supervisor",
        "bulk_actions": [(a, TRANSITIONS[a].label) for a in bulk.BULK_ACTIONS],
    }


# --- CSV export ------------------------------------------------------------------------------------------


@bp.route("/tasks/export.csv")
@login_required
def export_csv():
    """The list as it is filtered now, within scope; the export is security-logged (DESIGN §9)."""
    s, membership, now = db.session(), current_membership(), utcnow()
    f = TaskFilter.from_args(request.args)
    record_event(s, membership, now, "export", entity="task_list", data={"query": list_query(request.args)})
    record_request("export", now, what=WHAT_TASK_LIST, query=list_query(request.args))
    s.commit()
    query = list_export.ordered_query(s, membership, f)

    def chunks():  # runs after the view returned, in the contexts stream_with_context pushes again
        yield from list_export.csv_chunks(db.session(), query)

    day = local_date(now).isoformat()
    disposition = f"attachment; filename=\"tasks-{day}.csv\"; filename*=UTF-8''{quote(f'任务列表-{day}.csv')}"
    return Response(stream_with_context(chunks()), mimetype="text/csv",
                    headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


# --- bulk actions -------------------------------------------------------------------------------------------


def _selection() -> dict[int, int | None]:
    """The ticked tasks as ``id:version`` values (the list carries each task's version)."""
    picked: dict[int, int | None] = {}
    for value in request.values.getlist("task"):
        task_id, _sep, version = value.partition(":")
        try:
            number = int(task_id)
            picked_version = int(version) if version else None
        except ValueError:
            continue
        if 0 < number < 2**31:  # ids are 32-bit; a longer number names no task (and would overflow the driver)
            picked[number] = picked_version
    return picked


def _bulk_form(action: str, s, membership: Membership, submitted: bool):
    form_class = ACTION_FORMS[action]
    form = form_class(prefix="bulk") if submitted else form_class(prefix="bulk", formdata=None)
    if hasattr(form, "leads"):
        unit_picker(form.leads, s, membership)
        unit_picker(form.participants, s, membership)
        if action == "reassign":
            form.participants.description = _("留空则保留各任务原有的参与单位")
    if hasattr(form, "level"):
        form.level.choices = options((r.level, r.name) for r in schedule.load_rules(s).values()
                                     if r.level > 1 and not r.against_region)
    return form


def _params(action: str, form) -> dict:
    params = form.params()
    if action == "reassign" and not params.get("participants"):
        params["participants"] = None  # keep each task's own
    return params


@bp.route("/tasks/bulk", methods=["GET", "POST"])
@login_required
def bulk_action():
    s, membership = db.session(), current_membership()
    action = request.values.get("action", "")
    if action not in bulk.BULK_ACTIONS:
        abort(404)
    if membership.role != "supervisor":
        abort(403)
    picked = _selection()
    try:
        tasks, missing = bulk.load_selection(s, membership, picked)
    except ActionError as exc:
        flash(translate(exc), "error")
        return redirect(list_url(remembered_query(membership)))
    form = _bulk_form(action, s, membership, submitted=request.method == "POST")
    if request.method == "POST" and form.validate_on_submit():
        result, status = _perform(s, membership, action, picked, form)
        if result is not None and result.ok:
            flash(_("已批量%(label)s %(n)s 个任务", label=translate(TRANSITIONS[action].label), n=len(result.done)),
                  "success")
            return redirect(list_url(remembered_query(membership)))
        return _render_bulk(action, form, tasks, missing, picked, result, status=status)
    return _render_bulk(action, form, tasks, missing, picked, None, status=400 if form.errors else 200)


def _perform(s, membership: Membership, action: str, picked: dict[int, int | None], form):
    """All or none; commit only when every task changed. (result or None, status when not done)."""
    try:
        result = bulk.bulk_perform(s, membership, utcnow(), list(picked), action, _params(action, form), picked)
    except ActionError as exc:
        s.rollback()
        flash(translate(exc), "error")
        return None, 400
    if not result.ok:
        s.rollback()
        flash(_("有 %(n)s 个任务不能办理，所选任务均未改变", n=len(result.refused)), "error")
        conflict = any(r.reason == CONFLICT_MESSAGE for r in result.refused)
        return result, 409 if conflict else 400
    try:
        s.commit()
    except StaleDataError:
        s.rollback()
        flash(translate(CONFLICT_MESSAGE), "error")
        return None, 409
    return result, 200


def _render_bulk(action, form, tasks, missing, picked, result, status):
    membership = current_membership()
    refused = {r.task_id: r.reason for r in result.refused} if result is not None else {}
    preview = {t.id: refused.get(t.id) or can(membership, action, t).reason for t in tasks}
    return render_template(
        "tasks/bulk.html", action=action, label=TRANSITIONS[action].label, form=form, tasks=tasks,
        missing=missing, picked=picked, preview=preview, refused=refused, max_tasks=bulk.MAX_TASKS,
    ), status


# --- the unit type-ahead --------------------------------------------------------------------------------

# Who may look units up in every region, as their forms offer: a supervisor may name any unit 验收单位.
# Everyone else searches the units of their subtree.
ANYWHERE_ROLES = frozenset({"supervisor"})


@bp.route("/units/search")
@login_required
def unit_search():
    """Active units matching ``q`` (name, alias or region) within the membership's scope, as JSON for
    ``static/js/units.js``: ``{"units": [{"id": 1, "label": "雨湖区人民政府（雨湖区）"}, …]}`` (at most 20)."""
    s, membership = db.session(), current_membership()
    anywhere = request.args.get("anywhere") == "1" and membership.role in ANYWHERE_ROLES
    found = unit_matches(s, membership, request.args.get("q", ""), anywhere=anywhere)
    response = jsonify(units=[{"id": unit_id, "label": translate(label)} for unit_id, label in found])
    response.headers["Cache-Control"] = "no-store"
    return response


# --- saved filters --------------------------------------------------------------------------------------------


@bp.post("/filters")
@login_required
def save_filter():
    s, membership = db.session(), current_membership()
    form = CsrfOnlyForm()
    query = list_query(parse_qsl(request.form.get("query", "")))
    if form.validate_on_submit():
        name = request.form.get("name", "")
        attempt(lambda: saved_filters.save_filter(s, membership, utcnow(), name, query),
              _("已保存筛选“%(name)s”", name=" ".join(name.split())))
    return redirect(list_url(query))


@bp.route("/filters")
@login_required
def filters():
    s, membership = db.session(), current_membership()
    return render_template("tasks/filters.html", saved=saved_filters.filters_of(s, membership.user_id),
                           form=CsrfOnlyForm())


@bp.post("/filters/<int:filter_id>/rename")
@login_required
def rename_filter(filter_id: int):
    s, membership = db.session(), current_membership()
    if saved_filters.filter_of(s, membership.user_id, filter_id) is None:
        abort(404)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: saved_filters.rename_filter(s, membership, utcnow(), filter_id, request.form.get("name", "")),
              _("已重命名"))
    return redirect(_url_for("lists.filters"))


@bp.post("/filters/<int:filter_id>/delete")
@login_required
def delete_filter(filter_id: int):
    s, membership = db.session(), current_membership()
    if saved_filters.filter_of(s, membership.user_id, filter_id) is None:
        abort(404)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: saved_filters.delete_filter(s, membership, utcnow(), filter_id), _("已删除筛选"))
    back = request.form.get("next")
    return redirect(_url_for("lists.filters") if back == "filters" else list_url(remembered_query(membership)))


__all__ = ["bp", "list_extras", "list_url", "remember_query", "remembered_query"]
