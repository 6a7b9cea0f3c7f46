"""消息 (in-app notifications) and the measures recorded against a region (区域限批)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from tracker import db, escalation
from tracker.audit import ActionError
from tracker.auth import current_membership
from tracker.babel import translate
from tracker.forms import CsrfOnlyForm, RegionRestrictionForm, options
from tracker.models import EscalationRecord, Notification, Region
from tracker.permissions import concerning_regions
from tracker.queries import region_choices
from tracker.timeutil import utcnow

bp = Blueprint("messages", __name__)


@bp.route("/messages")
@login_required
def index():
    s = db.session()
    notes = s.scalars(select(Notification).where(Notification.user_id == current_user.user.id)
                      .order_by(Notification.read_at.is_not(None), Notification.id.desc()).limit(200)
                      .options(selectinload(Notification.task))).all()
    return render_template("messages.html", notes=notes, button=CsrfOnlyForm())


@bp.post("/messages/read")
@login_required
def mark_read():
    if CsrfOnlyForm().validate_on_submit():
        s = db.session()
        s.execute(update(Notification).where(Notification.user_id == current_user.user.id,
                                             Notification.read_at.is_(None)).values(read_at=utcnow()))
        s.commit()
    return redirect(url_for("messages.index"))


@bp.route("/restrictions", methods=["GET", "POST"])
@login_required
def restrictions():
    """区域限批: province supervisors record it against a region; everyone it concerns may read it (their
    region, a region above it or one below — not a neighbour's: ``permissions.concerning_regions``)."""
    s, membership = db.session(), current_membership()
    if membership.role == "unit":
        abort(403)
    form = RegionRestrictionForm()
    form.region_id.choices = options(region_choices(s, membership))
    may_decide = membership.role == "supervisor" and membership.unit.region.level == 0
    if request.method == "POST" and not may_decide:
        abort(403)
    if may_decide and form.validate_on_submit():
        try:
            escalation.restrict_region(s, membership, utcnow(), s.get(Region, form.region_id.data),
                                       form.doc_no.data or "", form.note.data or "")
            s.commit()
            flash(_("已记录区域限批"), "success")
            return redirect(url_for("messages.restrictions"))
        except ActionError as exc:
            s.rollback()
            flash(translate(exc), "error")
    records = s.scalars(select(EscalationRecord).where(EscalationRecord.task_id.is_(None),
                                                       EscalationRecord.region_id.in_(concerning_regions(membership)))
                        .order_by(EscalationRecord.id.desc()).options(selectinload(EscalationRecord.region))).all()
    return render_template("restrictions.html", form=form, records=records, may_decide=may_decide), (
        400 if form.errors else 200)
