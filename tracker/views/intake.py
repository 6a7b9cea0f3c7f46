"""导入整改台账: the upload page for supervisors and admins. The workbook is stored under the jobs folder
and imported by a background job (后台任务): validation and writing are ``intake``'s, and the job's page
shows its report (row, column, problem). Nothing is written unless the whole file is valid."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from tracker import db, intake, jobs, storage
from tracker.audit import ActionError
from tracker.auth import current_membership
from tracker.babel import translate
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
    if form.validate_on_submit():
        s, folder, upload_file = db.session(), Path(current_app.config["JOBS_FOLDER"]), form.file.data
        try:
            stored = storage.store(folder, upload_file.stream, kind="intake", filename=upload_file.filename or "",
                                   content_type=upload_file.mimetype or "")
        except storage.StorageError as exc:  # the disk full: no file kept, no job queued
            flash(translate(exc), "error")
            return render_template("import.html", form=form), exc.status
        options = {"dry_run": form.dry_run.data, "update": form.update.data,
                   "create_missing": form.create_missing.data,
                   "max_bytes": current_app.config["MAX_CONTENT_LENGTH"] or intake.MAX_FILE_BYTES}
        try:
            job = jobs.submit(s, membership, utcnow(), jobs.INTAKE, options, upload=stored)
        except ActionError as exc:
            s.rollback()
            storage.discard(folder, [stored])
            flash(translate(exc), "error")
            return render_template("import.html", form=form)
        s.commit()
        flash(_("文件已上传，正在后台校验和导入"), "success")
        return redirect(url_for("jobs.detail", job_id=job.id))
    return render_template("import.html", form=form)
