"""我的后台任务: the user's background jobs — list, page with live progress (``static/js/jobs.js`` polls the
status), and the download of the result, only by its owner while it is still within their scope."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, render_template, send_file
from flask_login import current_user, login_required

from tracker import db, jobs
from tracker.babel import translate
from tracker.models import BackgroundJob
from tracker.securitylog import WHAT_JOB_FILE
from tracker.timeutil import utcnow
from tracker.views.security_log import record_request

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


def _own(job_id: int) -> BackgroundJob:
    """The job, when it is the logged-in user's; anyone else's answers 404."""
    job = db.session().get(BackgroundJob, job_id)
    if job is None or job.user_id != current_user.user.id:
        abort(404)
    return job


@bp.route("")
@login_required
def index():
    listed = jobs.user_jobs(db.session(), current_user.user.id)
    return render_template("jobs/list.html", jobs=listed, kinds=jobs.KIND_LABELS, states=jobs.STATE_LABELS,
                           messages={job.id: jobs.message_of(job) for job in listed},
                           keep_days=current_app.config["JOBS_KEEP_DAYS"])


@bp.route("/<int:job_id>")
@login_required
def detail(job_id: int):
    job = _own(job_id)
    return render_template("jobs/detail.html", job=job, kinds=jobs.KIND_LABELS, states=jobs.STATE_LABELS,
                           message=jobs.message_of(job),
                           can_download=jobs.may_download(db.session(), job, current_user.user.id))


@bp.route("/<int:job_id>/status")
@login_required
def status(job_id: int):
    """The job's state and progress, for the page's script."""
    job = _own(job_id)
    return jsonify(state=job.state, label=translate(jobs.STATE_LABELS[job.state]), progress=job.progress,
                   total=job.total, message=translate(jobs.message_of(job)),
                   finished=job.state not in jobs.OPEN_STATES)


@bp.route("/<int:job_id>/download")
@login_required
def download(job_id: int):
    job = _own(job_id)
    s = db.session()
    if not jobs.may_download(s, job, current_user.user.id):
        abort(404)
    path = jobs.result_path(Path(current_app.config["JOBS_FOLDER"]), job)
    if not path.is_file():
        abort(404)
    now = utcnow()
    jobs.record_download(s, now, job)
    record_request("download", now, what=WHAT_JOB_FILE, file=job.download_name)
    s.commit()
    return send_file(path, as_attachment=True, download_name=job.download_name, mimetype=jobs.mimetype(job))
