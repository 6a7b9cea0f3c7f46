"""Task pages: 待办, the list, the ledger record with its timeline and action forms, registering,
editing, splitting, linking and evidence downloads. Out-of-scope tasks answer 404."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from tracker import calendars, closure, db, schedule, storage
from tracker.audit import CONFLICT_MESSAGE
from tracker.auth import current_membership
from tracker.babel import translate
from tracker.forms import (
    ACTION_FORMS,
    EmptyForm,
    LinkForm,
    RegisterForm,
    SplitChildForm,
    TaskFieldsForm,
    options,
    posted_version,
)
from tracker.models import Complainant, EscalationRecord, Evidence, Task
from tracker.operations import (
    EDITABLE_FIELDS,
    ActionError,
    ConflictError,
    TaskFields,
    edit_task,
    link_tasks,
    perform,
    register_task,
)
from tracker.permissions import available_actions, blocked_actions, can_edit, can_see_complainant, visible_tasks
from tracker.queries import (
    DEADLINE_EVENTS,
    SCHEDULE_FILTERS,
    SORTS,
    TaskFilter,
    channel_choices,
    deadline_facts,
    linked_tasks,
    region_choices,
    round_choices,
    task_page,
    timeline,
    unit_choices,
    visible_task,
)
from tracker.queries import todo as todo_items
from tracker.saved_filters import list_query
from tracker.securitylog import WHAT_EVIDENCE
from tracker.timeutil import local_date, utcnow
from tracker.views import lists
from tracker.views.closure import task_panels
from tracker.views.common import unit_picker
from tracker.views.dashboard import landing_url
from tracker.views.security_log import record_request
from tracker.workflow import STATE_LABELS, TRANSITIONS

bp = Blueprint("tasks", __name__)

# Types a browser may show inline; everything else is sent as a plain download.


def _task_or_404(task_id: int) -> Task:
    task = visible_task(db.session(), current_membership(), task_id)
    if task is None:
        abort(404)
    return task


@bp.route("/")
@login_required
def index():
    return redirect(landing_url(current_membership()))


@bp.route("/todo")
@login_required
def todo():
    """待办: what waits for my unit or me."""
    return render_template("todo.html", items=todo_items(db.session(), current_membership()))


@bp.route("/tasks")
@login_required
def task_list():
    """The list; opened without arguments it restores the membership's last filters (清除筛选 forgets them)."""
    s, membership = db.session(), current_membership()
    if request.args.get("clear"):
        lists.remember_query(membership, "")
        return redirect(url_for("tasks.task_list"))
    if not request.args and lists.remembered_query(membership):
        return redirect(lists.list_url(lists.remembered_query(membership)))
    query = list_query(request.args)
    lists.remember_query(membership, query)
    f = TaskFilter.from_args(request.args)
    page = task_page(s, membership, f, request.args.get("after"), current_app.config["PAGE_SIZE"])
    args = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "after"}
    next_url = url_for("tasks.task_list", **args, after=page.next_cursor) if page.next_cursor else None
    return render_template(
        "tasks/list.html", page=page, f=f, sorts=SORTS, states=STATE_LABELS, next_url=next_url,
        schedules=SCHEDULE_FILTERS,
        first_url=url_for("tasks.task_list", **args),
        channels=channel_choices(s), rounds=round_choices(s), regions=region_choices(s, membership),
        units=unit_choices(s, membership, anywhere=membership.role == "unit", ids=[f.unit_id, f.lead_unit_id]),
        units_url=url_for("lists.unit_search"),
        **lists.list_extras(s, membership, query),
    )


@bp.route("/tasks/<int:task_id>")
@login_required
def detail(task_id: int):
    return _render_detail(_task_or_404(task_id))


def _action_form(action: str, task: Task, *, submitted: bool = False):
    """The form of one action; ``submitted`` reads the posted data, otherwise a blank form."""
    form_class = ACTION_FORMS[action]
    form = form_class(prefix=action) if submitted else form_class(prefix=action, formdata=None)
    if not form.version.data:
        form.version.data = str(task.version)
    _fill_choices(form, task)
    return form


def _fill_choices(form, task: Task) -> None:
    s, membership = db.session(), current_membership()
    if hasattr(form, "leads"):
        if form.participants.data is None:  # 改派 keeps the participants unless changed
            form.participants.data = [u.id for u in task.participant_units]
        unit_picker(form.leads, s, membership)
        unit_picker(form.participants, s, membership)
    if hasattr(form, "milestones_met"):
        open_milestones = [m for m in task.milestones if m.met_on is None]
        form.milestones_met.choices = options((m.id, f"{m.due_on} {m.description}") for m in open_milestones)
    if hasattr(form, "closed_on") and form.closed_on.data is None:
        form.closed_on.data = local_date(utcnow())
    if hasattr(form, "level"):
        form.level.choices = options((r.level, r.name) for r in _rules(s).values()
                                     if r.level > 1 and not r.against_region)
    if hasattr(form, "verifier_unit_id"):
        unit_picker(form.verifier_unit_id, s, membership, anywhere=True, first=[(0, _("本单位"))])
    if hasattr(form, "checklist"):
        form.checklist.choices = options((c.id, c.text) for c in closure.checklist_for(s, task))


def _rules(s) -> dict:
    """The escalation ladder, read once per request (the page and its 督办措施 form both name its levels)."""
    if "ladder" not in g:
        g.ladder = schedule.load_rules(s)
    return g.ladder


def _render_detail(task: Task, failed: dict | None = None, status: int = 200):
    s, membership = db.session(), current_membership()
    available = available_actions(membership, task)
    forms = {a: _action_form(a, task) for a in available if a in ACTION_FORMS}  # 分解交办 has its own page
    forms.update(failed or {})
    events = timeline(s, task)
    complainant = s.get(Complainant, task.id) if can_see_complainant(membership, task) else None
    timing = deadline_facts(calendars.load(s), task, local_date(utcnow()))
    records = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id == task.id)
                        .order_by(EscalationRecord.id)).all()
    return render_template(
        "tasks/detail.html", task=task, forms=forms, transitions=TRANSITIONS, events=events,
        complainant=complainant, can_edit=bool(can_edit(membership, task)), link_form=LinkForm(),
        links=linked_tasks(s, membership, task), blocked=blocked_actions(membership, task), timing=timing,
        can_split="split" in available, records=records,
        level_names={r.level: r.name for r in _rules(s).values()},
        deadline_history=[e for e in events if e.action in DEADLINE_EVENTS],
        **task_panels(s, membership, task, forms),
    ), status


@bp.post("/tasks/<int:task_id>/act/<action>")
@login_required
def act(task_id: int, action: str):
    if action not in ACTION_FORMS:
        abort(404)
    task = _task_or_404(task_id)
    form = _action_form(action, task, submitted=True)
    if not form.validate_on_submit():
        return _render_detail(task, {action: form}, 400)
    return _apply(task, action, form)


def _apply(task: Task, action: str, form):
    s, membership = db.session(), current_membership()
    folder = current_app.config["UPLOAD_FOLDER"]
    try:
        stored = _store_uploads(form, folder)
    except storage.StorageError as exc:  # the disk full: no file kept, nothing done, the form shown again
        flash(translate(exc), "error")
        return _render_detail(task, {action: form}, exc.status)
    params = form.params()
    params.pop("evidence_kind", None)
    params["files"] = stored
    if params.get("verifier_unit_id") == 0:
        params["verifier_unit_id"] = None
    failure: list[Exception] = []

    def change() -> None:
        try:
            perform(s, task, action, membership, utcnow(), expected_version=posted_version(form.version), **params)
        except BaseException:  # refused, or the database gone mid-request: nothing refers to the files
            storage.discard(folder, stored)
            raise

    # A commit that fails for want of the database keeps the files: it may have committed after all, and a row
    # without its file is worse than a spare file.
    if not _committed(change, failure):
        storage.discard(folder, stored)
        return _render_detail(task, {action: form}, 409 if isinstance(failure[0], StaleDataError | ConflictError)
                              else 400)
    flash(_("已办理：%(label)s", label=_(TRANSITIONS[action].label)), "success")
    return redirect(url_for("tasks.detail", task_id=task.id))


def _committed(change, failure: list[Exception] | None = None) -> bool:
    """Run one operation and commit; on a refusal or a conflict roll back, flash why, and say False."""
    s = db.session()
    try:
        change()
        s.commit()
    except (ActionError, StaleDataError) as exc:
        s.rollback()
        flash(translate(exc) if isinstance(exc, ActionError) else translate(CONFLICT_MESSAGE), "error")
        if failure is not None:
            failure.append(exc)
        return False
    return True


def _store_uploads(form, folder) -> list[storage.StoredFile]:
    files = getattr(form, "files", None)
    if files is None:
        return []
    return storage.store_uploads(folder, files.data or [], form.evidence_kind.data)


@bp.route("/tasks/new", methods=["GET", "POST"])
@login_required
def register():
    s, membership = db.session(), current_membership()
    if membership.role != "supervisor":
        abort(403)
    form = RegisterForm()
    form.channel_id.choices = options(channel_choices(s))
    form.round_id.choices = options(round_choices(s))
    form.region_id.choices = options(region_choices(s, membership))
    if form.validate_on_submit():
        try:
            task = register_task(s, membership, utcnow(), _task_fields(form))
            s.commit()
        except ActionError as exc:
            s.rollback()
            flash(translate(exc), "error")
        else:
            flash(_("已登记问题 %(code)s", code=task.code), "success")
            return redirect(url_for("tasks.detail", task_id=task.id))
    return render_template("tasks/register.html", form=form), 400 if form.errors else 200


def _task_fields(form: RegisterForm) -> TaskFields:
    names = ["title", "code", "kind", "category", "description", "responsible_leader", "contact", "target",
             "measures", "remarks", "problem_title", "channel_id", "round_id", "region_id"]
    complainant = {k: getattr(form, f"complainant_{k}").data or "" for k in ("name", "phone", "address", "content")}
    return TaskFields(**{n: getattr(form, n).data or "" for n in names}, complainant=complainant)


@bp.route("/tasks/<int:task_id>/edit", methods=["GET", "POST"])
@login_required
def edit(task_id: int):
    s, membership = db.session(), current_membership()
    task = _task_or_404(task_id)
    if not can_edit(membership, task):
        abort(403)
    form = TaskFieldsForm(obj=task if request.method == "GET" else None)
    if request.method == "GET":
        form.version.data = task.version
    if form.validate_on_submit():
        changes = {name: getattr(form, name).data for name in EDITABLE_FIELDS}
        if _committed(lambda: edit_task(s, task, membership, utcnow(), posted_version(form.version), changes)):
            flash(_("台账已保存"), "success")
            return redirect(url_for("tasks.detail", task_id=task.id))
    return render_template("tasks/edit.html", form=form, task=task), 400 if form.errors else 200


@bp.route("/tasks/<int:task_id>/split", methods=["GET", "POST"])
@login_required
def split(task_id: int):
    s, membership = db.session(), current_membership()
    task = _task_or_404(task_id)
    if "split" not in available_actions(membership, task):
        abort(403)
    rows = min(max(request.args.get("rows", 3, type=int), 2), 20)
    children = [_split_row(i, s, membership) for i in range(rows)]
    outer = EmptyForm(prefix="split")
    if outer.validate_on_submit() and all(c.validate() for c in children):
        specs = [{"region_id": c.region_id.data, "title": c.title.data, "leads": c.leads.data,
                  "deadline": c.deadline.data} for c in children if c.region_id.data]
        if _committed(lambda: perform(s, task, "split", membership, utcnow(),
                                      expected_version=posted_version(outer.version), children=specs)):
            flash(_("已分解交办"), "success")
            return redirect(url_for("tasks.detail", task_id=task.id))
    if not outer.version.data:
        outer.version.data = task.version
    return render_template("tasks/split.html", task=task, outer=outer, children=children, rows=rows)


def _split_row(index: int, s, membership) -> SplitChildForm:
    row = SplitChildForm(prefix=f"c{index}")
    row.region_id.choices = options([(0, "—")] + region_choices(s, membership))
    unit_picker(row.leads, s, membership)
    return row


@bp.post("/tasks/<int:task_id>/link")
@login_required
def link(task_id: int):
    s, membership = db.session(), current_membership()
    task = _task_or_404(task_id)
    form = LinkForm()
    if form.validate_on_submit():
        other = s.scalar(visible_tasks(membership).where(Task.id == form.other_id.data))
        try:
            if other is None:
                raise ActionError(_("要关联的任务不存在"))
            link_tasks(s, task, other, membership, utcnow(), form.note.data or "")
            s.commit()
            flash(_("已关联"), "success")
        except ActionError as exc:
            s.rollback()
            flash(translate(exc), "error")
    return redirect(url_for("tasks.detail", task_id=task.id))


@bp.route("/evidence/<int:evidence_id>")
@login_required
def download(evidence_id: int):
    s = db.session()
    evidence = s.get(Evidence, evidence_id)
    if evidence is None:
        abort(404)
    _task_or_404(evidence.task_id)
    path = storage.path_of(current_app.config["UPLOAD_FOLDER"], evidence.stored_name)
    if not path.is_file():
        abort(404)
    mimetype = storage.served_type(evidence.content_type, path)
    record_request("download", utcnow(), what=WHAT_EVIDENCE, task=evidence.task_id, file=evidence.original_name)
    s.commit()
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=evidence.original_name)

