"""Closure integrity pages: the closure checklists (销号标准) administrators keep, 回头看 samples and
their results, reopen rates per lead unit, and the 举一反三 form that creates linked tasks."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, select

from tracker import closure, db, family, recheck
from tracker.auth import current_membership
from tracker.forms import (
    CriterionForm,
    CsrfOnlyForm,
    RecheckDrawForm,
    RecheckResultForm,
    SimilarForm,
    SimilarRowForm,
    options,
)
from tracker.inputs import small_int
from tracker.models import Channel, ClosureCriterion, RecheckItem, Task
from tracker.permissions import SUBTREE_ROLES, can_edit, visible_tasks
from tracker.queries import channel_choices, region_choices, round_choices
from tracker.timeutil import utcnow
from tracker.views.common import attempt, unit_picker

bp = Blueprint("closure", __name__)


def _role_or_403(*roles: str) -> None:
    if current_membership().role not in roles:
        abort(403)


def task_panels(s, membership, task: Task, forms: dict) -> dict:
    """What the task page shows of this area: the flags on the evidence for a supervisor while the task
    waits for 验收, the checklist inside the 验收销号 form, and the family of similar problems."""
    verifying = task.state == "verifying" and membership.role == "supervisor"
    return {
        "flags": closure.evidence_flags(s, membership, task) if verifying else [],
        "checklist": closure.checklist_for(s, task) if "close" in forms else [],
        "family": family.family_of(s, membership, task),
        "can_similar": bool(can_edit(membership, task)),
    }


# --- 销号标准 (administrators) --------------------------------------------------------------------------


@bp.route("/admin/closure")
@login_required
def checklists():
    _role_or_403("admin")
    s = db.session()
    channels = s.scalars(select(Channel).order_by(Channel.position, Channel.id)).all()
    channel = s.get(Channel, request.args.get("channel", type=small_int) or 0) or (channels[0] if channels else None)
    items = closure.criteria(s, channel.id, include_inactive=True) if channel else []
    counts = dict(s.execute(select(ClosureCriterion.channel_id, func.count()).where(ClosureCriterion.active)
                            .group_by(ClosureCriterion.channel_id)).all())
    return render_template("admin/closure.html", channels=channels, channel=channel, items=items, counts=counts,
                           editable=closure.can_manage(current_membership()), add_form=CriterionForm(prefix="new"),
                           edit_forms={c.id: CriterionForm(prefix=f"c{c.id}", obj=c) for c in items},
                           button=CsrfOnlyForm())


def _manager_or_403() -> None:
    """Changing a checklist: province admins only (other admins read it; their POST is refused)."""
    _role_or_403("admin")
    if not closure.can_manage(current_membership()):
        abort(403)


def _criterion_or_404(criterion_id: int) -> ClosureCriterion:
    _manager_or_403()
    criterion = db.session().get(ClosureCriterion, criterion_id)
    if criterion is None:
        abort(404)
    return criterion


def _back(channel_id: int):
    return redirect(url_for("closure.checklists", channel=channel_id))


@bp.post("/admin/closure/<int:channel_id>")
@login_required
def add_criterion(channel_id: int):
    _manager_or_403()
    s = db.session()
    channel = s.get(Channel, channel_id) or abort(404)
    form = CriterionForm(prefix="new")
    if form.validate_on_submit():
        attempt(lambda: closure.add_criterion(s, current_membership(), utcnow(), channel, form.text.data,
                                               form.required_kinds.data or []), _("已添加销号标准"))
    else:
        flash(_("请填写销号标准的内容"), "error")
    return _back(channel_id)


@bp.post("/admin/closure/criteria/<int:criterion_id>")
@login_required
def edit_criterion(criterion_id: int):
    criterion = _criterion_or_404(criterion_id)
    form = CriterionForm(prefix=f"c{criterion.id}")
    if form.validate_on_submit():
        attempt(lambda: closure.edit_criterion(db.session(), current_membership(), utcnow(), criterion,
                                                form.text.data, form.required_kinds.data or []), _("已保存"))
    else:
        flash(_("请填写销号标准的内容"), "error")
    return _back(criterion.channel_id)


@bp.post("/admin/closure/criteria/<int:criterion_id>/active/<int:active>")
@login_required
def set_active(criterion_id: int, active: int):
    criterion = _criterion_or_404(criterion_id)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: closure.set_criterion_active(db.session(), current_membership(), utcnow(), criterion,
                                                      bool(active)), _("已启用") if active else _("已停用"))
    return _back(criterion.channel_id)


@bp.post("/admin/closure/criteria/<int:criterion_id>/move/<direction>")
@login_required
def move(criterion_id: int, direction: str):
    criterion = _criterion_or_404(criterion_id)
    if direction not in ("up", "down"):
        abort(404)
    if CsrfOnlyForm().validate_on_submit():
        attempt(lambda: closure.move_criterion(db.session(), current_membership(), utcnow(), criterion,
                                                -1 if direction == "up" else 1), _("已调整顺序"))
    return _back(criterion.channel_id)


# --- 回头看 ---------------------------------------------------------------------------------------------


def _draw_form() -> RecheckDrawForm:
    s, membership = db.session(), current_membership()
    form = RecheckDrawForm()
    everything = [(0, _("全部"))]
    form.channel_id.choices = options(everything + channel_choices(s))
    form.round_id.choices = options(everything + round_choices(s))
    form.region_id.choices = options(everything + region_choices(s, membership))
    unit_picker(form.unit_id, s, membership, first=everything)
    return form


@bp.route("/recheck", methods=["GET", "POST"])
@login_required
def samples():
    _role_or_403(*SUBTREE_ROLES)
    s, membership = db.session(), current_membership()
    if request.method == "POST" and membership.role != "supervisor":
        abort(403)  # viewers and admins read the samples; only supervisors draw them
    form = _draw_form()
    if membership.role == "supervisor" and form.validate_on_submit():
        criteria = recheck.SampleCriteria(
            channel_id=form.channel_id.data or None, round_id=form.round_id.data or None,
            region_id=form.region_id.data or None, unit_id=form.unit_id.data or None,
            closed_from=form.closed_from.data, closed_to=form.closed_to.data)
        drawn: list = []
        if attempt(lambda: drawn.append(recheck.draw_sample(s, membership, utcnow(), form.size.data, criteria,
                                                              seed=form.seed.data or "", note=form.note.data or "")),
                    _("已抽取回头看样本")):
            return redirect(url_for("closure.sample", sample_id=drawn[0].id))
    return render_template("recheck/index.html", form=form, samples=recheck.samples_for(s, membership),
                           can_draw=membership.role == "supervisor"), 400 if form.errors else 200


@bp.route("/recheck/<int:sample_id>")
@login_required
def sample(sample_id: int):
    _role_or_403(*SUBTREE_ROLES)
    s, membership = db.session(), current_membership()
    found = recheck.sample_in_scope(s, membership, sample_id) or abort(404)
    items = recheck.visible_items(s, membership, found)
    forms = {i.id: RecheckResultForm(prefix=f"i{i.id}", formdata=None) for i in items if i.result == "pending"}
    return render_template("recheck/sample.html", sample=found, items=items, forms=forms, results=recheck.RESULTS,
                           can_record=membership.role == "supervisor")


@bp.post("/recheck/items/<int:item_id>")
@login_required
def record(item_id: int):
    _role_or_403("supervisor")
    s, membership = db.session(), current_membership()
    item = s.get(RecheckItem, item_id)
    if item is None or s.scalar(visible_tasks(membership).where(Task.id == item.task_id)) is None:
        abort(404)
    form = RecheckResultForm(prefix=f"i{item.id}")
    if form.validate_on_submit():
        found = recheck.RecheckResult(form.result.data, form.note.data or "", form.deadline.data,
                                      form.deadline_text.data or "", form.deadline_kind.data or "date")
        attempt(lambda: recheck.record_result(s, membership, utcnow(), item, found),
                 _("已记录复查结果") if found.result == "passed" else _("已记录返黑返臭，任务已重新整改"))
    else:
        flash(_("请检查复查结果的填写"), "error")
    return redirect(url_for("closure.sample", sample_id=item.sample_id, _anchor=f"item-{item.id}"))


@bp.route("/recheck/reopen-rates")
@login_required
def reopen_rates():
    _role_or_403(*SUBTREE_ROLES)
    s, membership = db.session(), current_membership()
    channel_id, round_id = request.args.get("channel", type=small_int), request.args.get("round", type=small_int)
    rows, total = recheck.reopen_rates(s, membership, channel_id=channel_id, round_id=round_id)
    return render_template("recheck/rates.html", rows=rows, total=total, channel_id=channel_id, round_id=round_id,
                           channels=channel_choices(s), rounds=round_choices(s))


# --- 举一反三 -------------------------------------------------------------------------------------------


def _similar_row(index: int, source: Task) -> SimilarRowForm:
    s, membership = db.session(), current_membership()
    row = SimilarRowForm(prefix=f"r{index}")
    row.region_id.choices = options([(0, "—")] + region_choices(s, membership))
    unit_picker(row.leads, s, membership)
    if row.deadline_text.data is None and not row.is_submitted():
        row.deadline_text.data = source.deadline_text
    return row


@bp.route("/tasks/<int:task_id>/similar", methods=["GET", "POST"])
@login_required
def similar(task_id: int):
    s, membership = db.session(), current_membership()
    source = s.scalar(visible_tasks(membership).where(Task.id == task_id)) or abort(404)
    if not can_edit(membership, source):
        abort(403)
    rows = min(max(request.args.get("rows", 3, type=int), 1), family.MAX_NEW)
    children = [_similar_row(i, source) for i in range(rows)]
    outer = SimilarForm()
    if outer.validate_on_submit() and all(c.validate() for c in children):
        specs = [family.SimilarSpec(c.region_id.data, c.title.data or "", c.leads.data or [], [], c.deadline.data,
                                    c.deadline_text.data or "") for c in children if c.region_id.data]
        if attempt(lambda: family.create_similar(s, membership, utcnow(), source, specs, outer.note.data or ""),
                    _("已派生 %(n)s 个同类问题任务", n=len(specs))):
            return redirect(url_for("tasks.detail", task_id=source.id, _anchor="family"))
    return render_template("closure/similar.html", task=source, outer=outer, children=children, rows=rows,
                           family=family.family_of(s, membership, source))
