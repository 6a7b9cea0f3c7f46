"""导入整改台账: the upload page for supervisors and admins. Validation and writing are ``intake``'s;
the page shows its report (row, column, problem) and commits only a valid, non-dry-run import."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import login_required

from tracker import db, intake
from tracker.auth import current_membership
from tracker.forms import LedgerImportForm
from tracker.models import Role
from tracker.timeutil import utcnow

bp = Blueprint("intake", __name__)

IMPORT_ROLES = (Role.supervisor.value, Role.admin.value)


@bp.route("/import", methods=["GET", "POST"])
@login_required
def upload():
    membership = current_membership()
    if membership.role not in IMPORT_ROLES:
        abort(403)
    form = LedgerImportForm()
    report = None
    if form.validate_on_submit():
        s = db.session()
        upload_file = form.file.data
        name = (upload_file.filename or "").replace("\\", "/").rsplit("/", 1)[-1] or None
        report = intake.import_ledger(s, upload_file.stream, membership, utcnow(), name=name,
                                      dry_run=form.dry_run.data, update=form.update.data,
                                      create_missing=form.create_missing.data,
                                      max_bytes=current_app.config["MAX_CONTENT_LENGTH"] or intake.MAX_FILE_BYTES)
        if report.ok and not report.dry_run:
            s.commit()
        else:
            s.rollback()
    return render_template("import.html", form=form, report=report)
