"""Archived monthly ledgers (月度台账归档): listed and served within the membership's subtree."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_file
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tracker import db
from tracker.audit import record_event
from tracker.auth import current_membership
from tracker.models import LedgerArchive, Region
from tracker.permissions import SUBTREE_ROLES, in_subtree, visible_regions
from tracker.securitylog import WHAT_ARCHIVE
from tracker.timeutil import utcnow
from tracker.views.security_log import record_request

bp = Blueprint("archives", __name__, url_prefix="/archives")


def _subtree_member():
    membership = current_membership()
    if membership.role not in SUBTREE_ROLES:
        abort(403)
    return membership


@bp.route("")
@login_required
def index():
    membership = _subtree_member()
    s = db.session()
    regions = visible_regions(membership).with_only_columns(Region.id)
    archives = s.scalars(select(LedgerArchive).where(LedgerArchive.region_id.in_(regions))
                         .order_by(LedgerArchive.month.desc(), LedgerArchive.region_id)
                         .options(selectinload(LedgerArchive.region)).limit(500)).all()
    return render_template("archives.html", archives=archives)


@bp.route("/<int:archive_id>")
@login_required
def download(archive_id: int):
    membership = _subtree_member()
    s = db.session()
    archive = s.get(LedgerArchive, archive_id)
    if archive is None or not in_subtree(membership, archive.region):
        abort(404)
    path = Path(current_app.config["LEDGER_FOLDER"]) / archive.stored_name
    if not path.is_file():
        abort(404)
    now = utcnow()
    record_event(s, membership, now, "download", entity="ledger_archive", entity_id=archive.id,
                 data={"region": archive.region.name, "month": archive.month})
    record_request("download", now, what=WHAT_ARCHIVE, region=archive.region.name, month=archive.month)
    s.commit()
    year, month = archive.month.split("-")
    name = f"{archive.region.name}整改销号台账{year}年{int(month)}月（归档）.xlsx"
    return send_file(path, as_attachment=True, download_name=name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
